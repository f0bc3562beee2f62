"""Vobiz voice callbacks through a real Envoy: what verifies reaches the upstream unchanged,
everything else is answered locally and never reaches it."""
import socket
import ssl

import pytest

from harness import PARENT_TOKEN, TOKEN, new_nonce, plugin_config, sign, vobiz_headers

FORM = "CallUUID=12d86ccd&Event=StartApp&From=917900000000&To=07970000000"
FORM_TYPE = {"content-type": "application/x-www-form-urlencoded"}


def post(client, path, headers, body=FORM):
    """POSTs a form callback tagged with a unique x-test-id; returns (response, test id)."""
    test_id = new_nonce()
    response = client.post(path, headers={**FORM_TYPE, **headers, "x-test-id": test_id}, content=body)
    return response, test_id


def delivered(upstream, test_id):
    """What the upstream received of the request tagged `test_id`."""
    return [r for r in upstream.records() if ["x-test-id", test_id] in r["headers"]]


def assert_delivered_unchanged(upstream, sent, path, headers, body=FORM):
    response, test_id = sent
    assert response.status_code == 200, response.text
    [seen] = delivered(upstream, test_id)
    assert seen["method"] == "POST"
    assert seen["path"] == path
    assert seen["body"] == body
    received = {k: v for k, v in seen["headers"]}
    for name, value in headers.items():
        assert received[name.lower()] == value


def assert_rejected(upstream, sent, status, reason):
    response, test_id = sent
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json()["reason"] == reason
    assert delivered(upstream, test_id) == [], "a rejected callback reached the upstream"


@pytest.mark.parametrize("family", ["v3", "v2", "ma_v3", "ma_v2"])
@pytest.mark.parametrize("http2", [False, True], ids=["http1", "http2"])
def test_each_family_verifies_and_arrives_unchanged(envoy, upstream, family, http2):
    prefix = "/vobiz-v2/" if family.endswith("v2") else "/vobiz/"
    path = prefix + "answer?CallUUID=12d86ccd"
    headers = vobiz_headers(path, families=(family,))
    with envoy.https_client(http2=http2) as client:
        sent = post(client, path, headers)
    assert_delivered_unchanged(upstream, sent, path, headers)


@pytest.mark.parametrize("prefix", ["/vobiz/", "/vobiz-v2/"])
def test_all_seven_headers_as_vobiz_sends_them(envoy, upstream, prefix):
    path = prefix + "hangup"
    headers = vobiz_headers(path, families=("v3", "v2", "ma_v3", "ma_v2"))
    headers["X-Vobiz-Signature"] = "c2hhMS1sZWdhY3ktbm90LWNoZWNrZWQ="  # V1 is ignored
    with envoy.https_client() as client:
        sent = post(client, path, {**headers, "User-Agent": "Vobiz"})
    assert_delivered_unchanged(upstream, sent, path, headers)


def test_several_signatures_in_one_header_any_may_verify(envoy, upstream):
    path = "/vobiz/answer"
    nonce = new_nonce()
    old = sign("v3", "https://127.0.0.1:8443", path, nonce, "rotated-out-token")
    good = sign("v3", "https://127.0.0.1:8443", path, nonce, TOKEN)
    headers = {"X-Vobiz-Signature-V3": f"{old},{good}", "X-Vobiz-Signature-V3-Nonce": nonce}
    with envoy.https_client() as client:
        sent = post(client, path, headers)
    assert_delivered_unchanged(upstream, sent, path, headers)


def test_unprotected_paths_pass_untouched_over_http_and_https(envoy, upstream):
    marker = new_nonce()
    with envoy.http_client() as client:
        assert client.get(f"/health?m={marker}").status_code == 200
    with envoy.https_client() as client:
        assert client.get(f"/other/vobiz/?m={marker}").status_code == 200
    assert len([r for r in upstream.records() if marker in r["path"]]) == 2


def wrong(path, **kwargs):
    return vobiz_headers(path, **kwargs)


REJECTIONS = {
    # name: (request path, headers builder, status, reason)
    "missing headers": ("/vobiz/answer", lambda p: {}, 401, "missing_signature"),
    "signature without nonce": ("/vobiz/answer", lambda p: {
        "X-Vobiz-Signature-V3": vobiz_headers(p)["X-Vobiz-Signature-V3"]}, 401, "missing_signature"),
    "v1 only": ("/vobiz/answer", lambda p: {"X-Vobiz-Signature": "c2hhMS1sZWdhY3ktbm90LWNoZWNrZWQ="},
                401, "missing_signature"),
    "wrong key": ("/vobiz/answer", lambda p: wrong(p, token="not-the-token"), 403, "signature_mismatch"),
    "parent signature in own header": ("/vobiz/answer", lambda p: wrong(p, token=PARENT_TOKEN), 403, "signature_mismatch"),
    "wrong path": ("/vobiz/hangup", lambda p: wrong("/vobiz/answer"), 403, "signature_mismatch"),
    "trailing slash": ("/vobiz/answer/", lambda p: wrong("/vobiz/answer"), 403, "signature_mismatch"),
    "wrong origin": ("/vobiz/answer", lambda p: wrong(p, origin="https://127.0.0.1"), 403, "signature_mismatch"),
    # Path bytes moved behind a '?' or escaped: not what was signed.
    "query tampering: path moved into query": ("/vobiz/ans?wer", lambda p: wrong("/vobiz/answer"), 403, "signature_mismatch"),
    "query tampering: escaped question mark": ("/vobiz/answer%3Fx=1", lambda p: wrong("/vobiz/answer"), 403, "signature_mismatch"),
    "query tampering: signed with the query": ("/vobiz/answer?CallUUID=1", lambda p: {
        "X-Vobiz-Signature-V3": sign("v3", "https://127.0.0.1:8443/vobiz/answer?CallUUID=1", "", n := new_nonce(), TOKEN),
        "X-Vobiz-Signature-V3-Nonce": n}, 403, "signature_mismatch"),
    "wrong nonce": ("/vobiz/answer", lambda p: {**wrong(p), "X-Vobiz-Signature-V3-Nonce": new_nonce()}, 403, "signature_mismatch"),
    "garbage base64": ("/vobiz/answer", lambda p: {**wrong(p), "X-Vobiz-Signature-V3": "%%%not-base64%%%"}, 400, "malformed_header"),
    "truncated signature": ("/vobiz/answer", lambda p: {**wrong(p), "X-Vobiz-Signature-V3": "hcnUcstlkOnYpO6mUNMB"}, 400, "malformed_header"),
    "oversized signature header": ("/vobiz/answer", lambda p: {**wrong(p), "X-Vobiz-Signature-V3": "A" * 4096}, 400, "malformed_header"),
    "nonce with spaces": ("/vobiz/answer", lambda p: {**wrong(p), "X-Vobiz-Signature-V3-Nonce": "12 34"}, 400, "malformed_header"),
}


@pytest.mark.parametrize("case", REJECTIONS.keys())
def test_rejections_never_reach_the_upstream(envoy, upstream, case):
    path, build, status, reason = REJECTIONS[case]
    with envoy.https_client() as client:
        sent = post(client, path, build(path))
    assert_rejected(upstream, sent, status, reason)
    assert f"reason={reason}" in envoy.log_text()


def test_rejection_is_logged_with_route_and_reason_but_no_secret(envoy, upstream):
    headers = vobiz_headers("/vobiz/answer", token="wrong")
    with envoy.https_client() as client:
        response, _ = post(client, "/vobiz/answer", headers)
    assert response.status_code == 403
    request_id = response.headers["x-request-id"]
    [line] = [l for l in envoy.log_text().splitlines() if f"request_id={request_id}" in l]
    assert "route=vobiz-voice status=403 reason=signature_mismatch" in line
    assert "[warning]" in line
    log = envoy.log_text()
    assert TOKEN not in log and PARENT_TOKEN not in log
    assert headers["X-Vobiz-Signature-V3"] not in log


def test_duplicate_signature_headers_are_refused(envoy, upstream):
    path = "/vobiz/answer"
    test_id = new_nonce()
    headers = [(k, v) for k, v in vobiz_headers(path).items()] + [("x-test-id", test_id)]
    for duplicate in ("X-Vobiz-Signature-V3-Nonce", "X-Vobiz-Signature-V3"):
        value = dict(headers)[duplicate]
        with envoy.https_client() as client:
            response = client.post(path, content=FORM, headers=headers + [(duplicate, value)])
        assert_rejected(upstream, (response, test_id), 400, "duplicate_header")


def raw_https(envoy, request: bytes) -> bytes:
    """Sends bytes no HTTP library would produce, over a verified TLS connection."""
    context = ssl.create_default_context(cafile=str(envoy.cert[0]))
    with socket.create_connection(("127.0.0.1", envoy.https_port), timeout=10) as sock:
        with context.wrap_socket(sock, server_hostname="127.0.0.1") as tls:
            tls.sendall(request)
            chunks = []
            while chunk := tls.recv(65536):
                chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize("header", ["X-Vobiz-Signature-V3", "X-Vobiz-Signature-V3-Nonce"])
def test_non_utf8_header_values_are_a_clean_400(envoy, upstream, header):
    path = "/vobiz/answer"
    headers = vobiz_headers(path)
    test_id = new_nonce()
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close",
             f"Content-Length: {len(FORM)}", "X-Test-Id: " + test_id]
    for name, value in headers.items():
        if name != header:
            lines.append(f"{name}: {value}")
    raw = "\r\n".join(lines).encode() + f"\r\n{header}: ".encode() + b"\xff\xfe\xc3\x28abc" + b"\r\n\r\n" + FORM.encode()
    response = raw_https(envoy, raw)
    assert response.startswith(b"HTTP/1.1 400"), response[:200]
    assert b'"reason":"malformed_header"' in response
    assert delivered(upstream, test_id) == []
    assert "panicked" not in envoy.log_text()


def test_plain_http_is_refused_on_protected_routes(envoy, upstream):
    path = "/vobiz/answer"
    headers = vobiz_headers(path)
    with envoy.http_client() as client:
        sent = post(client, path, {**headers, "X-Forwarded-Proto": "https"})
    assert_rejected(upstream, sent, 403, "tls_required")
