"""A storage endpoint that accepts connections and never answers: what a hung or overloaded
storage looks like to a client (standard library only).

    with silent.listening() as endpoint:
        endpoint.url           # http://127.0.0.1:<port>
        endpoint.accepted      # connections accepted so far (each left open, unanswered)
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field


@dataclass
class Silent:
    server: socket.socket
    held: list[socket.socket] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        host, port = self.server.getsockname()[:2]
        return f"http://{host}:{port}"

    @property
    def accepted(self) -> int:
        with self.lock:
            return len(self.held)

    def serve(self) -> None:
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:  # closed: the context ended
                return
            with self.lock:
                self.held.append(connection)


@contextlib.contextmanager
def listening() -> Iterator[Silent]:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    silent = Silent(server)
    thread = threading.Thread(target=silent.serve, name="silent-storage", daemon=True)
    thread.start()
    try:
        yield silent
    finally:
        with contextlib.suppress(OSError):
            server.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept (close alone may not)
        server.close()
        thread.join(5)
        with silent.lock:
            for connection in silent.held:
                connection.close()
