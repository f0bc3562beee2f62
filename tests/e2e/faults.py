"""Faults a fleet meets, made on loopback: a TCP proxy in front of one port that passes
bytes, or black-holes them, or lets requests through and drops the answers (a write that
is applied but never answered: over HTTP/2 only the response frames are dropped, so the
connection itself stays up), or, in front of an etcd member's peer port, cuts the
connections of chosen members (each rafthttp request names its sender in X-Server-From).
Runs in the test process, a thread per direction of each connection."""
import socket
import threading

PASS, BLACKHOLE, DROP_ANSWERS = "pass", "blackhole", "drop_answers"


class FaultProxy:
    def __init__(self, target_port, port=0, name="proxy"):
        self.target_port = target_port
        self.name = name
        self.mode = PASS
        # Members (hex ids) whose connections are cut, and whether this port's own member is.
        self.cut_senders = set()
        self.cut_all = False
        self.lock = threading.Lock()
        self.connections = []
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", port))
        self.listener.listen(128)
        self.port = self.listener.getsockname()[1]
        self.closed = False
        threading.Thread(target=self._accept, daemon=True, name=f"{name}-accept").start()

    def set_mode(self, mode):
        """`blackhole` or `drop_answers` from now on; `pass` also closes every connection
        opened under a fault, so both ends start clean."""
        with self.lock:
            self.mode = mode
        if mode == PASS:
            self._close_all()

    def cut(self, senders=(), everything=False):
        with self.lock:
            self.cut_senders = set(senders)
            self.cut_all = everything
        self._close_all(lambda conn: everything or conn.sender in self.cut_senders)

    def heal(self):
        with self.lock:
            self.cut_senders, self.cut_all = set(), False

    def close(self):
        self.closed = True
        self.listener.close()
        self._close_all()

    def _close_all(self, which=lambda conn: True):
        with self.lock:
            doomed = [conn for conn in self.connections if which(conn)]
        for conn in doomed:
            conn.close()

    def _accept(self):
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.cut_all:
                client.close()
                continue
            try:
                server = socket.create_connection(("127.0.0.1", self.target_port), timeout=2)
                server.settimeout(None)
            except OSError:
                client.close()
                continue
            # A relay adds no delay of its own: Nagle would hold each small gRPC frame for
            # the far end's delayed ACK.
            for sock in (client, server):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = _Connection(self, client, server)
            with self.lock:
                self.connections.append(conn)
            conn.start()

    def _forget(self, conn):
        with self.lock:
            if conn in self.connections:
                self.connections.remove(conn)


class _Connection:
    def __init__(self, proxy, client, server):
        self.proxy, self.client, self.server = proxy, client, server
        self.sender = None
        self.head = b""
        self.http2 = False
        self.frames = b""  # an HTTP/2 server's bytes not yet a whole frame
        self.done = False

    def start(self):
        for upstream in (True, False):
            threading.Thread(target=self._pump, args=(upstream,), daemon=True,
                             name=f"{self.proxy.name}-{'up' if upstream else 'down'}").start()

    def close(self):
        if self.done:
            return
        self.done = True
        for sock in (self.client, self.server):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        self.proxy._forget(self)

    def _pump(self, upstream):
        source, sink = (self.client, self.server) if upstream else (self.server, self.client)
        while not self.done:
            try:
                data = source.recv(65536)
            except OSError:
                break
            if not data:
                break
            if upstream and self.sender is None and len(self.head) < 8192:
                self.head += data
                self.http2 = self.head.startswith(b"PRI * HTTP/2.0")
                self.sender = _sender(self.head)
                if self.sender in self.proxy.cut_senders:
                    break
            mode = self.proxy.mode
            if mode == BLACKHOLE:
                continue
            if not upstream and self.http2:
                data = self._frames(data, drop_answers=mode == DROP_ANSWERS)
            elif mode == DROP_ANSWERS and not upstream:
                continue
            try:
                sink.sendall(data)
            except OSError:
                break
        self.close()


    def _frames(self, data, drop_answers):
        """The whole HTTP/2 frames in what the server sent so far, without the ones that
        answer a request (HEADERS 1, CONTINUATION 9, DATA 0) when answers are dropped."""
        self.frames += data
        out = b""
        while len(self.frames) >= 9:
            length = int.from_bytes(self.frames[:3], "big")
            if len(self.frames) < 9 + length:
                break
            frame, self.frames = self.frames[:9 + length], self.frames[9 + length:]
            if not (drop_answers and frame[3] in (0, 1, 9)):
                out += frame
        return out


def _sender(head):
    """The X-Server-From of the first request on a peer connection, once its headers are in."""
    if b"\r\n\r\n" not in head:
        return None
    for line in head.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"x-server-from":
            return value.strip().decode()
    return ""
