"""A web server on loopback that hands out media, for fetching by URL: a file, redirects, a 404,
a body larger than the limit, one that stalls, a page that is not media. It counts the
connections it accepts and the paths it was asked for."""

import contextlib
import http.server
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.stand_in import serving

MEDIA_HEAD = b"ID3\x04\x00\x00\x00\x00\x00\x00"
PAGE = b"<!doctype html><html><body><p>Not the media you are looking for.</p></body></html>\n"


@dataclass
class MediaServer:
    url: str
    media: bytes
    connections: int = 0
    paths: list[str] = field(default_factory=list)
    stop_stalling: threading.Event = field(default_factory=threading.Event)

    def at(self, path: str, host: str = "127.0.0.1") -> str:
        return self.url.replace("127.0.0.1", host) + path


@contextlib.contextmanager
def media_server(media: bytes, big_bytes: int = 0) -> Iterator[MediaServer]:
    """`/media` (and `/media/<any name>`) answers `media`; `/redirect?to=URL` redirects there; `/missing` is 404;
        `/big` sends `big_bytes` of media-looking bytes without declaring a length, `/big-declared`
        declares that length; `/stall` sends a little and then nothing, `/silent` not even an
    answer, `/trickle` all of `media` but slowly (100 bytes each 0.2 s); `/page` is HTML."""
    state = MediaServer(url="", media=media)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            state.paths.append(self.path)
            address = urlsplit(self.path)
            if address.path == "/media" or address.path.startswith("/media/"):
                self.answer(200, state.media, "audio/mpeg")
            elif address.path == "/redirect":
                self.send_response(302)
                self.send_header("Location", parse_qs(address.query)["to"][0])
                self.send_header("Content-Length", "0")
                self.end_headers()
            elif address.path == "/big":
                self.send_response(200)
                self.send_header("Content-Type", "audio/mpeg")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                self.chunked(MEDIA_HEAD + bytes(big_bytes - len(MEDIA_HEAD)))
            elif address.path == "/big-declared":
                self.send_response(200)
                self.send_header("Content-Length", str(big_bytes))
                self.end_headers()
                with contextlib.suppress(OSError):
                    self.wfile.write(MEDIA_HEAD)
            elif address.path == "/stall":
                self.send_response(200)
                self.send_header("Content-Length", str(len(state.media)))
                self.end_headers()
                self.wfile.write(state.media[:1000])
                self.wfile.flush()
                state.stop_stalling.wait(60)
            elif address.path == "/silent":
                state.stop_stalling.wait(60)
            elif address.path == "/trickle":
                self.send_response(200)
                self.send_header("Content-Length", str(len(state.media)))
                self.end_headers()
                with contextlib.suppress(OSError):
                    for start in range(0, len(state.media), 100):
                        self.wfile.write(state.media[start : start + 100])
                        self.wfile.flush()
                        if state.stop_stalling.wait(0.2):
                            break
            elif address.path == "/page":
                self.answer(200, PAGE, "text/html")
            else:
                self.answer(404, b"no such media\n", "text/plain")

        def answer(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            with contextlib.suppress(OSError):  # the client may stop reading early
                self.wfile.write(body)

        def chunked(self, body: bytes, size: int = 64 * 1024) -> None:
            with contextlib.suppress(OSError):
                for start in range(0, len(body), size):
                    chunk = body[start : start + size]
                    self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                self.wfile.write(b"0\r\n\r\n")

        def log_message(self, *_args: Any) -> None:
            pass

    try:
        with serving(Handler, state):
            yield state
    finally:
        state.stop_stalling.set()
