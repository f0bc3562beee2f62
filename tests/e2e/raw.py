"""Requests as bytes on the wire, and what the recording upstream saw of them: raw HTTP/1.1
over TLS and hand-driven HTTP/2 (the h2 library), for request lines and header blocks no
client library would send. Shared by the end-to-end modules."""
import base64
import collections
import json
import select
import socket
import ssl
import time

import h2.config
import h2.connection
import h2.events
import h2.exceptions

from harness import wait_for


def as_bytes(value):
    return value if isinstance(value, bytes) else str(value).encode()


# ----------------------------------------------------------------------------------------
# What the upstream saw.

def seen_by_upstream(upstream):
    """Every request the recording upstream received, by x-test-id (complete or not)."""
    seen = collections.defaultdict(list)
    for record in upstream.records():
        for name, value in record["headers"]:
            if name == "x-test-id":
                seen[value].append(record)
    return seen


def assert_never_delivered(upstream, *test_ids, envoy=None):
    """None of these requests reached the upstream, not even in part. With `envoy`, first
    waits until nothing is open in Envoy or the upstream (requests that were reset or hung
    up may still be on their way when their sender moved on)."""
    if envoy is not None:
        wait_for(lambda: envoy.quiet() and upstream.idle(), timeout=30,
                 what="Envoy and the upstream to finish every open request")
    seen = seen_by_upstream(upstream)
    leaked = {t: seen[t] for t in test_ids if seen.get(t)}
    assert not leaked, f"refused requests reached the upstream: {leaked}"


def assert_delivered_once(upstream, test_id, body=None, path=None):
    records = seen_by_upstream(upstream).get(test_id, [])
    assert len(records) == 1, f"{test_id} delivered {len(records)} times"
    [record] = records
    assert not record["truncated"]
    if body is not None:
        assert base64.b64decode(record["body_b64"]) == body
    if path is not None:
        assert record["path"] == path
    return record


# ----------------------------------------------------------------------------------------
# Raw HTTP/1.1 over TLS: bytes no HTTP library would send.

def tls_connection(envoy, alpn=None, timeout=20):
    context = ssl.create_default_context(cafile=str(envoy.cert[0]))
    if alpn:
        context.set_alpn_protocols(alpn)
    sock = socket.create_connection(("127.0.0.1", envoy.https_port), timeout=timeout)
    # A head and its body are separate writes: without this, Nagle holds the body until
    # Envoy's delayed ACK of the head, 40 ms a request (as urllib3 and curl do).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return context.wrap_socket(sock, server_hostname="127.0.0.1")


def http1_head(path, headers, *, method=b"POST", length=None, chunked=False, host=b"127.0.0.1"):
    lines = [b"%s %s HTTP/1.1" % (as_bytes(method), as_bytes(path)), b"Host: " + as_bytes(host)]
    if chunked:
        lines.append(b"Transfer-Encoding: chunked")
    elif length is not None:
        lines.append(b"Content-Length: %d" % length)
    lines += [as_bytes(name) + b": " + as_bytes(value) for name, value in headers]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def chunked(body, size=65536):
    parts = [b"%x\r\n%s\r\n" % (len(body[i:i + size]), body[i:i + size])
             for i in range(0, len(body), size)]
    return parts + [b"0\r\n\r\n"]


class Answer:
    def __init__(self, status, body=b"", headers=None, reset=None):
        self.status, self.body, self.headers, self.reset = status, body, headers or {}, reset

    @property
    def reason(self):
        try:
            return json.loads(self.body).get("reason")
        except (ValueError, AttributeError):
            return None

    @property
    def from_filter(self):
        return "application/json" in self.headers.get("content-type", "") and self.reason

    def __repr__(self):
        return f"Answer({self.status}, {self.body[:120]!r}, reset={self.reset})"


def read_http1_answer(tls):
    """Reads one response: up to its content-length, or until Envoy closes."""
    data = b""
    try:
        while True:
            head, sep, body = data.partition(b"\r\n\r\n")
            if sep:
                fields = dict(line.split(b": ", 1) for line in head.split(b"\r\n")[1:]
                              if b": " in line)
                length = fields.get(b"content-length")
                if length is not None and len(body) >= int(length):
                    break
            chunk = tls.recv(65536)
            if not chunk:
                break
            data += chunk
    except TimeoutError:
        raise AssertionError(f"HTTP/1.1: no complete answer, got {data[:200]!r}") from None
    except OSError:
        pass  # a reset after the reply: Envoy's delayed close of a refused request
    head, _, body = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 "):
        return Answer(None, data, reset="closed")
    headers = {k.decode().lower(): v.decode("latin-1") for k, v in
               (line.split(b": ", 1) for line in head.split(b"\r\n")[1:] if b": " in line)}
    return Answer(int(head.split(b" ", 2)[1]), body, headers)


def http1_exchange(envoy, head, parts=(), *, pause=0.0, hang_up=False):
    """Sends a head and body parts (optionally `pause` seconds apart); returns the answer,
    or None after hanging up without reading (`hang_up`)."""
    with tls_connection(envoy) as tls:
        try:
            tls.sendall(head)
            for part in parts:
                if pause:
                    time.sleep(pause)
                for i in range(0, len(part), 65536):
                    if select.select([tls], [], [], 0)[0]:
                        break  # answered early (413 at the headers): stop like a real client
                    tls.sendall(part[i:i + 65536])
        except OSError:
            pass  # Envoy answered and stopped reading before the whole request was sent
        if hang_up:
            return None
        return read_http1_answer(tls)


# ----------------------------------------------------------------------------------------
# HTTP/2 by hand (the h2 library): many streams at once, resets mid-body, header blocks no
# client library would build.

class Stream:
    def __init__(self):
        self.status, self.headers, self.body, self.done, self.reset = None, {}, b"", False, None

    def answer(self):
        return Answer(self.status, self.body, self.headers, self.reset)


class H2:
    def __init__(self, envoy, timeout=20):
        self.tls = tls_connection(envoy, alpn=["h2"], timeout=timeout)
        assert self.tls.selected_alpn_protocol() == "h2"
        config = h2.config.H2Configuration(client_side=True, header_encoding=None,
                                           validate_outbound_headers=False,
                                           normalize_outbound_headers=False,
                                           validate_inbound_headers=False)
        self.conn = h2.connection.H2Connection(config)
        # Without Huffman coding: pure-Python Huffman takes minutes for a megabyte header.
        encode = self.conn.encoder.encode
        self.conn.encoder.encode = lambda headers, huffman=True: encode(headers, huffman=False)
        self.streams = {}
        self.terminated = None
        self.conn.initiate_connection()
        self.flush()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.tls.close()

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            try:
                self.tls.sendall(data)
            except OSError:
                self.end_all("closed")

    def start(self, path, headers, body=b"", *, method=b"POST", end=True, host=b"127.0.0.1"):
        stream_id = self.conn.get_next_available_stream_id()
        self.streams[stream_id] = Stream()
        request = [(b":method", as_bytes(method)), (b":path", as_bytes(path)),
                   (b":scheme", b"https"), (b":authority", as_bytes(host))]
        request += [(as_bytes(k).lower(), as_bytes(v)) for k, v in headers]
        self.conn.send_headers(stream_id, request, end_stream=end and not body)
        self.flush()
        if body:
            self.send(stream_id, body, end=end)
        return stream_id

    def send(self, stream_id, data, end=True):
        """Sends body bytes within the flow-control windows; stops if the stream is answered
        or reset first (a 413 mid-body)."""
        view = memoryview(data)
        try:
            while view and not self.streams[stream_id].done and self.terminated is None:
                window = min(self.conn.local_flow_control_window(stream_id),
                             self.conn.max_outbound_frame_size)
                if window <= 0:
                    self.pump()
                    continue
                self.conn.send_data(stream_id, bytes(view[:window]))
                view = view[window:]
                self.flush()
            if end and not self.streams[stream_id].done and self.terminated is None:
                self.conn.end_stream(stream_id)
                self.flush()
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
            self.streams[stream_id].done = True

    def reset(self, stream_id):
        self.conn.reset_stream(stream_id, error_code=8)  # CANCEL
        self.streams[stream_id].done = True
        self.streams[stream_id].reset = "sent"
        self.flush()

    def end_all(self, why):
        self.terminated = self.terminated or why
        for stream in self.streams.values():
            if not stream.done:
                stream.done, stream.reset = True, why

    def pump(self):
        try:
            data = self.tls.recv(65536)
        except TimeoutError:
            raise AssertionError("HTTP/2: Envoy neither answered nor closed") from None
        except OSError:
            data = b""
        if not data:
            self.end_all("closed")
            return
        try:
            events = self.conn.receive_data(data)
        except h2.exceptions.ProtocolError:
            self.end_all("protocol error")
            return
        for event in events:
            stream = self.streams.get(getattr(event, "stream_id", None))
            if isinstance(event, h2.events.ResponseReceived) and stream:
                stream.headers = {k.decode(): v.decode("latin-1") for k, v in event.headers}
                stream.status = int(stream.headers[":status"])
            elif isinstance(event, h2.events.DataReceived):
                if stream:
                    stream.body += event.data
                self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded) and stream:
                stream.done = True
            elif isinstance(event, h2.events.StreamReset) and stream:
                stream.done, stream.reset = True, f"RST_STREAM {event.error_code}"
            elif isinstance(event, h2.events.ConnectionTerminated):
                self.end_all(f"GOAWAY {event.error_code}")
        self.flush()

    def wait(self, stream_ids=None, timeout=30):
        deadline = time.monotonic() + timeout
        ids = list(self.streams) if stream_ids is None else list(stream_ids)
        while not all(self.streams[i].done for i in ids):
            assert time.monotonic() < deadline, "HTTP/2 streams unanswered"
            self.pump()
        return [self.streams[i].answer() for i in ids]


def h2_exchange(envoy, path, headers, body=b"", **options):
    with H2(envoy) as connection:
        stream_id = connection.start(path, headers, body, **options)
        [answer] = connection.wait([stream_id])
    return answer


def assert_refused_cleanly(answer, *, http2):
    """A 4xx from Envoy or the filter; over HTTP/2 a reset of the stream or connection is
    how Envoy refuses header blocks it will not decode. Never 2xx, never 5xx."""
    if answer.status is None:
        assert http2 and answer.reset, answer
    else:
        assert 400 <= answer.status < 500, answer


def send(envoy, protocol, path, headers, body=b"", *, host=b"127.0.0.1"):
    """One request over raw HTTP/1.1 or hand-driven HTTP/2, the path and host exactly as
    given; returns the Answer."""
    if protocol == "http2":
        return h2_exchange(envoy, path, headers, body, host=host)
    head = http1_head(path, [*headers, ("Connection", "close")], length=len(body), host=host)
    return http1_exchange(envoy, head, [body] if body else [])


PROTOCOLS = ["http1", "http2"]
