"""Writing 16-bit mono WAV files, as the transcoder and the gateway's live sessions do: aside,
then renamed into place, so that a half-written file is never mistaken for a finished one."""

import contextlib
import uuid
import wave
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def wav_writer(target: Path, sample_rate: int) -> Iterator[wave.Wave_write]:
    """A WAV file to write 16-bit mono frames to; it appears at `target` only once the block
    ends without an error, and nothing is left behind if it raises."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{target.name}.{uuid.uuid4().hex[:8]}.part")
    try:
        with contextlib.closing(wave.open(str(partial), "wb")) as output:
            output.setparams((1, 2, sample_rate, 0, "NONE", "not compressed"))
            yield output
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(target)


def write_wav(target: Path, pcm: bytes, sample_rate: int) -> None:
    """`pcm` (16-bit mono) as the WAV file `target`."""
    with wav_writer(target, sample_rate) as output:
        output.writeframes(pcm)
