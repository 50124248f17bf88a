"""An HTTP server on loopback standing in for another party: an online engine's provider, or the
receiver of callbacks. It keeps what it was sent and answers the error statuses it was given
before it answers 200 with its JSON."""

import contextlib
import http.server
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class StandIn:
    url: str
    failures: list[int] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    connections: int = 0
    """Connections accepted, whether or not a request followed."""


@contextlib.contextmanager
def http_stand_in(answer: dict[str, Any], failures: tuple[int, ...] = ()) -> Iterator[StandIn]:
    state = StandIn(url="", failures=list(failures))

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.received.append(Received(self.path, dict(self.headers.items()), body))
            reply: dict[str, Any]
            if state.failures:
                status = state.failures.pop(0)
                reply = {"error": {"message": f"stand-in answers {status}", "type": "test"}}
            else:
                status, reply = 200, answer
            encoded = json.dumps(reply).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(encoded)))
            # The provider SDKs' own retries wait this long instead of backing off for seconds.
            self.send_header("retry-after-ms", "10")
            self.end_headers()
            self.wfile.write(encoded)

        def log_message(self, *_args: Any) -> None:
            pass

    with serving(Handler, state):
        yield state


class Counted(Protocol):
    url: str
    connections: int


@contextlib.contextmanager
def serving(handler: type[http.server.BaseHTTPRequestHandler], state: Counted) -> Iterator[None]:
    """Serve `handler` on loopback in threads of its own, with `state.url` set to its address
    and `state.connections` counting every connection accepted."""

    class Server(http.server.ThreadingHTTPServer):
        def verify_request(self, request: Any, client_address: Any) -> bool:
            state.connections += 1
            return True

    server = Server(("127.0.0.1", 0), handler)
    state.url = f"http://127.0.0.1:{server.server_port}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
