"""Speaker labels asked for at upload: the form's fields, checked; known speakers' clips, decoded
from their data URLs and converted to 16 kHz mono PCM as the transcoder would; and whether any
recognizer can label for the engine at all. Anything wrong is refused here, never a job that
fails later."""

import asyncio
import base64
import binascii
import re
from dataclasses import dataclass

from fastapi import HTTPException
from pydub.utils import get_encoder_name

from gateway.upload import CLIP_FIELDS, Upload
from shared.ffmpeg import input_options, refused_format
from shared.fleet import Fleet
from shared.jobs.models import SpeakerReference
from shared.jobs.options import MAX_SPEAKERS, SpeakerLabels

DIARIZE_FIELD = "diarize"
COUNT_FIELDS = ("speakers", "min_speakers", "max_speakers")
NAME_FIELDS = ("speaker_names[]", "speaker_names", "known_speaker_names[]")
MAX_NAME_LENGTH = 64
MIN_REFERENCE_SECONDS = 2.0
MAX_REFERENCE_SECONDS = 10.0
# A clip cut at a frame boundary may come out a little longer or shorter than the user's 2 or 10 s.
_SLACK_SECONDS = 0.2
CONVERT_TIMEOUT_SECONDS = 30
SAMPLE_RATE = 16_000
_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off", "")
# The labels the clustering gives unknown voices; a known speaker may not be called like one.
_AUTOMATIC_LABEL = re.compile(r"S\d+")
_DATA_URL = re.compile(r"data:(?P<type>[\w.+-]+/[\w.+-]+)?(;[^,;]*)*;base64,(?P<data>.*)", re.S)


class SpeakerLabelsRefused(HTTPException):
    """A speaker field the job cannot honour: 422 (400 in OpenAI's shape on its route, naming
    the form field `param`)."""

    def __init__(self, message: str, param: str = DIARIZE_FIELD) -> None:
        super().__init__(422, message)
        self.message = message
        self.param = param


@dataclass(frozen=True)
class SpeakerLabelsAsked:
    """Speaker labels as the form asks for them (None: it asks for none): counts and names, and
    each known speaker's clip as sent (any media ffmpeg reads). Whether the engine can give
    labels is a choice rule (gateway/choices.py)."""

    speaker_labels: SpeakerLabels | None = None
    reference_clips: tuple[bytes, ...] = ()


def speaker_labels_asked(upload: Upload, asked: bool = False) -> SpeakerLabelsAsked:
    """What the form asks of speaker labelling, checked. `asked` is true where the route itself
    asks for labels (OpenAI's `diarized_json`); elsewhere `diarize=true`, or any count or name,
    asks for them."""
    diarize_flag = _flag(upload.field(DIARIZE_FIELD))
    counts = {name: _count(upload.field(name), name) for name in COUNT_FIELDS}
    names = [name for field in NAME_FIELDS for name in upload.fields.get(field, [])]
    clips = [clip for field in CLIP_FIELDS for clip in upload.fields.get(field, [])]
    detailed = any(value is not None for value in counts.values()) or bool(names or clips)
    if diarize_flag is False and (asked or detailed):
        raise SpeakerLabelsRefused(
            "diarize=false contradicts the speaker fields sent with it; drop one or the other."
        )
    if not (diarize_flag or asked or detailed):
        return SpeakerLabelsAsked()
    speaker_labels = SpeakerLabels(**counts, names=_names(names, len(clips)))
    _check_counts(speaker_labels)
    return SpeakerLabelsAsked(speaker_labels, tuple(_decoded(clip) for clip in clips))


def _flag(value: str | None) -> bool | None:
    if value is None:
        return None
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise SpeakerLabelsRefused(f"diarize must be true or false, not {value!r}.")


def _count(value: str | None, name: str) -> int | None:
    if value is None or value == "":
        return None
    if not value.isdigit() or not 1 <= int(value) <= MAX_SPEAKERS:
        raise SpeakerLabelsRefused(f"{name} must be a whole number from 1 to {MAX_SPEAKERS}.", name)
    return int(value)


def _check_counts(speaker_labels: SpeakerLabels) -> None:
    if speaker_labels.speakers is not None and (
        speaker_labels.min_speakers or speaker_labels.max_speakers
    ):
        raise SpeakerLabelsRefused(
            "Send either speakers (an exact count) or min_speakers/max_speakers, not both.",
            "speakers",
        )
    lowest = speaker_labels.speakers or speaker_labels.min_speakers or 1
    highest = speaker_labels.speakers or speaker_labels.max_speakers or MAX_SPEAKERS
    if lowest > highest:
        raise SpeakerLabelsRefused("min_speakers is more than max_speakers.", "min_speakers")
    if len(speaker_labels.names) > highest:
        raise SpeakerLabelsRefused(
            f"{len(speaker_labels.names)} known speakers were named, more than the {highest}"
            " at most asked for.",
            "speaker_names",
        )


def _names(names: list[str], clips: int) -> list[str]:
    if len(names) != clips:
        raise SpeakerLabelsRefused(
            f"Send one reference clip per known speaker: {len(names)} name(s) came with"
            f" {clips} clip(s) (speaker_names[] and speaker_references[]).",
            "speaker_names",
        )
    for name in names:
        if not name or len(name) > MAX_NAME_LENGTH:
            raise SpeakerLabelsRefused(
                f"A speaker's name must have 1 to {MAX_NAME_LENGTH} characters.", "speaker_names"
            )
        if _AUTOMATIC_LABEL.fullmatch(name):
            raise SpeakerLabelsRefused(
                f"{name!r} looks like the labels given to unknown speakers; choose another name.",
                "speaker_names",
            )
    if len(set(names)) != len(names):
        raise SpeakerLabelsRefused("Each known speaker needs a name of their own.", "speaker_names")
    return names


def _decoded(clip: str) -> bytes:
    matched = _DATA_URL.fullmatch(clip)
    if matched is None:
        raise SpeakerLabelsRefused(
            "A reference clip must be a data URL of audio, such as data:audio/wav;base64,UklG...",
            "speaker_references",
        )
    try:
        return base64.b64decode(matched["data"], validate=True)
    except binascii.Error as error:
        raise SpeakerLabelsRefused(
            f"A reference clip's base64 is malformed: {error}.", "speaker_references"
        ) from error


async def check_speaker_labels_served(fleet: Fleet, engine: str) -> None:
    """Refuse labels no recognizer gives: none that serves `engine` has its speaker model
    loaded, nor had within the last hour."""
    if engine in await fleet.speaker_labels_served_recently():
        return
    raise SpeakerLabelsRefused(
        f"No recognizer labels speakers for the engine {engine!r} here (none has the speaker"
        " model loaded, see STT_SPEAKER_LABELS); send the job without diarize."
    )


async def references_of(names: list[str], clips: tuple[bytes, ...]) -> list[SpeakerReference]:
    """Each known speaker's clip as 16 kHz mono 16-bit PCM, of 2 to 10 seconds."""
    references = []
    for name, clip in zip(names, clips, strict=True):
        pcm = await _to_pcm(clip, name)
        seconds = len(pcm) / (2 * SAMPLE_RATE)
        if not (
            MIN_REFERENCE_SECONDS - _SLACK_SECONDS
            <= seconds
            <= MAX_REFERENCE_SECONDS + _SLACK_SECONDS
        ):
            raise SpeakerLabelsRefused(
                f"The clip of {name!r} lasts {seconds:.1f} s; send {MIN_REFERENCE_SECONDS:.0f}"
                f" to {MAX_REFERENCE_SECONDS:.0f} seconds of their voice.",
                "speaker_references",
            )
        references.append(SpeakerReference(name=name, pcm=pcm))
    return references


async def _to_pcm(clip: bytes, name: str) -> bytes:
    """ffmpeg from pipe to pipe, as its own process: the event loop only waits for it."""
    ffmpeg = await asyncio.create_subprocess_exec(
        get_encoder_name(), "-nostdin", "-hide_banner", "-loglevel", "error",
        *input_options(), "-i", "pipe:0", "-map", "0:a:0", "-vn", "-ac", "1", "-ar", str(SAMPLE_RATE),
        "-t", str(MAX_REFERENCE_SECONDS + 1), "-f", "s16le", "pipe:1",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        async with asyncio.timeout(CONVERT_TIMEOUT_SECONDS):
            pcm, errors = await ffmpeg.communicate(clip)
    except TimeoutError as error:
        raise SpeakerLabelsRefused(
            f"The clip of {name!r} took over {CONVERT_TIMEOUT_SECONDS} s to decode.",
            "speaker_references",
        ) from error
    finally:
        if ffmpeg.returncode is None:
            ffmpeg.kill()
            await ffmpeg.wait()
    refused = refused_format(errors)
    if refused is not None:
        raise SpeakerLabelsRefused(
            f"The clip of {name!r} is in a format this service does not read ({refused});"
            " send the recording itself.",
            "speaker_references",
        )
    if ffmpeg.returncode != 0 or not pcm:
        raise SpeakerLabelsRefused(
            f"The clip of {name!r} is not audio ffmpeg can read.", "speaker_references"
        )
    return pcm
