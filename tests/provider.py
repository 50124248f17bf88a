"""A stand-in for a hosted Whisper provider's HTTP API (OpenAI's shape) on loopback."""

import contextlib
import http.server
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

TEXT = " Please send the quarterly report. "


@dataclass
class Provider:
    """What the stand-in was sent, and the error statuses it answers before it transcribes."""

    url: str
    failures: list[int] = field(default_factory=list)
    received: list[tuple[str, bytes]] = field(default_factory=list)


@contextlib.contextmanager
def provider(failures: tuple[int, ...] = ()) -> Iterator[Provider]:
    state = Provider(url="", failures=list(failures))

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.received.append((self.path, body))
            answer: dict[str, Any]
            if state.failures:
                status = state.failures.pop(0)
                answer = {"error": {"message": f"stand-in answers {status}", "type": "test"}}
            else:
                status, answer = 200, {"text": TEXT}
            encoded = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(encoded)))
            # The SDKs' own retries wait this long instead of backing off for seconds.
            self.send_header("retry-after-ms", "10")
            self.end_headers()
            self.wfile.write(encoded)

        def log_message(self, *_args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_port}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
