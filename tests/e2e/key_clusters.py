"""The shipped clusters that fetch a provider's keys in production (SNS's and PayPal's
certificates, Google's JWKS), each run exactly as shipped but for its address and CA file,
against a local HTTPS server holding a certificate for `name`: the key is taken only from a
server of the cluster's name, and a refused handshake reaches neither that server nor the
application."""
from harness import Envoy, Upstream, make_certificate, production_cluster
from raw import assert_delivered_once, assert_never_delivered
from test_providers import reason, send


def only_from_a_server_of_that_name(tmp_path, cert, *, cluster, name, plugin, deliver, fetched, expected,
                                    serve=lambda upstream: None):
    """`deliver()` through the shipped `cluster` (a file in envoy/) to a key server holding a
    certificate for `name`: answered `expected` (status, reason); once delivered, the server
    saw exactly the `fetched` requests."""
    server_cert = make_certificate(tmp_path / "server", name=name)
    upstream = Upstream(tmp_path, certificates_tls=server_cert)
    serve(upstream)
    envoy = Envoy(tmp_path, upstream, cert, plugin,
                  clusters=[production_cluster(cluster, upstream.certificates_port, server_cert[0])])
    try:
        delivery = deliver()
        test_id, response = send(envoy, delivery)
        assert (response.status_code, reason(response)) == expected, response.text
        if expected[0] == 200:
            assert_delivered_once(upstream, test_id, body=delivery.body)
            assert upstream.fetches() == fetched
        else:
            # The handshake failed: no request reached the server, nothing the application.
            assert_never_delivered(upstream, test_id, envoy=envoy)
            assert upstream.fetches() == []
    finally:
        envoy.stop()
        upstream.stop()
