"""What a live session takes in: its audio paced against the wall clock, each message decoded
only as far as that pace allows, and the key a browser offers as a subprotocol."""

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from fastapi import WebSocket

from gateway.__main__ import server_config
from gateway.app import create_app
from gateway.live.admission import presented_key
from gateway.live.events import SessionError, client_event
from gateway.live.pace import AudioPace
from gateway.settings import GatewaySettings


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_audio_may_run_a_burst_ahead_of_its_pace_and_no_further() -> None:
    clock = Clock()
    pace = AudioPace(burst=10, pace=4, clock=clock)
    assert pace.allowance() == 10
    pace.take(10)
    assert pace.allowance() == 0
    clock.now += 1
    assert pace.allowance() == 4  # four times real time
    clock.now += 60  # a quiet minute does not save up more than the burst
    assert pace.allowance() == 10
    pace.take(10)
    pace.held_back(5)  # the gateway read nothing for 5 s: the client may catch up on 20 s
    assert pace.allowance() == 20
    clock.now += 1
    assert pace.allowance() == 20  # beyond the burst, the clock adds nothing
    pace.held_back(60)  # however long it was held, it catches up on twice the burst at most
    assert pace.allowance() == 20
    pace.take(19)
    assert pace.until_whole() == 9 / 4


def appended(pcm: bytes, **fields: Any) -> str:
    event = {"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm).decode()}
    return json.dumps({**event, **fields})


def test_an_append_is_decoded_only_as_far_as_it_is_allowed() -> None:
    pcm = bytes(range(256)) * 100  # 25,600 bytes
    whole = client_event(appended(pcm, event_id="e1"), 1_000_000)
    assert (whole.pcm, whole.dropped_bytes, whole.event_id) == (pcm, 0, "e1")
    assert "audio" not in whole.event
    cut = client_event(appended(pcm), 1001)
    assert cut.pcm == pcm[:996]  # whole samples that base64 can end on
    assert cut.dropped_bytes == len(pcm) - 996
    nothing = client_event(appended(pcm), 0)
    assert (nothing.pcm, nothing.dropped_bytes) == (b"", len(pcm))


@pytest.mark.parametrize(
    ("text", "code", "param"),
    [
        ("not json", "invalid_json", None),
        ("[" * 60_000, "invalid_json", None),  # nested past Python's recursion limit
        ('{"no": "type"}', "invalid_event", None),
        ('{"type": "input_audio_buffer.append", "audio": "not base64!"}', "invalid_value", "audio"),
        ('{"type": "input_audio_buffer.append", "audio": "AA=="}', "invalid_value", "audio"),
        ('{"type": "input_audio_buffer.append", "audio": 3}', "invalid_value", "audio"),
    ],
)
def test_events_that_cannot_be_read_are_refused(text: str, code: str, param: str | None) -> None:
    with pytest.raises(SessionError) as refused:
        client_event(text, 0)
    assert (refused.value.code, refused.value.param) == (code, param)


def test_a_refused_append_names_the_clients_event_id() -> None:
    with pytest.raises(SessionError) as refused:
        client_event(appended(b"\x01\x02\x03", event_id="mine"), 0)  # half a sample
    assert refused.value.event_id == "mine"


class Handshake:
    def __init__(self, headers: dict[str, str]) -> None:
        self.headers = headers


def key_and_answer(headers: dict[str, str]) -> tuple[str, str | None]:
    websocket: Any = Handshake(headers)
    socket: WebSocket = websocket
    return presented_key(socket)


def test_the_key_offered_as_a_subprotocol_is_never_answered() -> None:
    key_protocol = "openai-insecure-api-key.secret-one"
    assert key_and_answer({"sec-websocket-protocol": f"realtime, {key_protocol}"}) == (
        "secret-one",
        "realtime",
    )
    assert key_and_answer({"sec-websocket-protocol": key_protocol}) == ("secret-one", None)
    assert key_and_answer({"authorization": "Bearer secret-two"}) == ("secret-two", None)


def test_the_server_queues_one_message_per_session_and_never_inflates(tmp_path: Path) -> None:
    """While a session is held back (paced, waiting for its share) its socket is not read: the
    WebSocket library must hold one message meanwhile, not its default 32 of up to 15 MiB."""
    settings = GatewaySettings(media_dir=tmp_path, shutdown_grace_seconds=30)
    config = server_config(create_app(settings), settings)
    assert config.ws_max_queue == 1
    assert config.ws_max_size == settings.live_max_message_bytes
    assert config.ws_per_message_deflate is False
    # The live sessions take the first half of the grace, uvicorn the second.
    assert config.timeout_graceful_shutdown == 15
