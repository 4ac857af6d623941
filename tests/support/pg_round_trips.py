"""Counting PostgreSQL round trips: a proxy that reads the client's side of the wire
protocol (PostgreSQL docs, "Frontend/Backend Protocol", 55.2 and 55.7) and counts the
messages that end one: a simple Query ('Q'), or the Sync ('S') that closes an extended
query (Parse/Bind/Execute...). The server answers each with ReadyForQuery."""

from __future__ import annotations

import socket
import struct
import threading

from sqlalchemy.engine import make_url

from tests.support.tcp_proxy import pipe

_SSL_REQUEST, _GSSENC_REQUEST = 80877103, 80877104


class RoundTripCounter:
    """Forwards 127.0.0.1:`port` to the PostgreSQL server of `url`; `count` is the round
    trips its clients have made so far, `statements` what each simple Query sent."""

    def __init__(self, url: str) -> None:
        parsed = make_url(url)
        self._target = (parsed.host or "127.0.0.1", parsed.port or 5432)
        self._lock = threading.Lock()
        self.count = 0
        self.queries: list[str] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.url = parsed.set(host="127.0.0.1", port=self.port).render_as_string(hide_password=False)
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self._target)
            for sock in (client, upstream):
                # As libpq and the server do: a pipeline's writes (common.db) would
                # otherwise wait behind Nagle's algorithm for delayed ACKs (40 ms each).
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._client_side, args=(client, upstream), daemon=True).start()
            threading.Thread(target=pipe, args=(upstream, client), daemon=True).start()

    def _client_side(self, client: socket.socket, upstream: socket.socket) -> None:
        buffer, starting = b"", True
        try:
            while data := client.recv(65536):
                buffer += data
                while True:
                    if starting:  # untyped: int32 length, int32 code
                        if len(buffer) < 8:
                            break
                        length, code = struct.unpack("!ii", buffer[:8])
                        if len(buffer) < length:
                            break
                        buffer = buffer[length:]
                        starting = code in (_SSL_REQUEST, _GSSENC_REQUEST)
                        continue
                    if len(buffer) < 5:
                        break
                    kind, length = buffer[:1], struct.unpack("!i", buffer[1:5])[0]
                    if len(buffer) < 1 + length:
                        break
                    body, buffer = buffer[5 : 1 + length], buffer[1 + length :]
                    if kind in (b"Q", b"S"):
                        with self._lock:
                            self.count += 1
                            if kind == b"Q":
                                self.queries.append(body.rstrip(b"\0").decode(errors="replace"))
                # Counted before it is sent on: the server's answer, and the caller's
                # look at `count` after it, come after the count.
                upstream.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (client, upstream):
                sock.close()
