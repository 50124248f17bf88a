"""What speaker labels cost a recognizer, on one WAV (16 kHz mono): the speaker process started
as a recognizer starts it, its memory, and the time of a piece's voices and of labelling
against the time of recognizing it with the default engine.

    python -m scripts.speaker_cost RECORDING.wav [SPEAKERS]
"""

import asyncio
import sys
import time
from pathlib import Path

import psutil

from recognizer.engines import EngineConfig
from recognizer.pool import Request, SlotPool
from recognizer.speaker_processes import LabelSpeakers, speaker_process_pool, start_speaker_labeller
from shared.jobs.options import JobOptions, SpeakerLabels

CONFIG = EngineConfig(whisper_model="tiny.en", cpu_threads=1, beam_size=5)
TIMEOUT_SECONDS = 600


def resident_mb(pool: SlotPool) -> float:
    return sum(psutil.Process(slot._process.pid).memory_info().rss for slot in pool._all) / 2**20


async def measure(audio: Path, speakers: int | None) -> None:
    engines = SlotPool(1, ("faster-whisper",), CONFIG)
    await engines.start()
    process = speaker_process_pool(1, CONFIG, 0, print)
    started = time.perf_counter()
    labeller = await start_speaker_labeller(process, TIMEOUT_SECONDS)
    if labeller is None:
        raise SystemExit("the speaker model did not load")
    print(
        f"speaker process ready in {time.perf_counter() - started:.1f} s,"
        f" {resident_mb(process):.0f} MB (an engine slot: {resident_mb(engines):.0f} MB)"
    )
    try:
        started = time.perf_counter()
        english = JobOptions(engine="faster-whisper", language="en")
        transcript = await engines.transcribe(Request(audio, english), 600)
        recognized = time.perf_counter() - started
        started = time.perf_counter()
        voices = await labeller.voices(audio, transcript, 0.0)
        heard = time.perf_counter() - started
        started = time.perf_counter()
        async with process.reserve() as slot:
            speaker_labels = SpeakerLabels(speakers=speakers)
            await slot.ask(
                LabelSpeakers(transcript, tuple(voices), speaker_labels), TIMEOUT_SECONDS
            )
        labelled = time.perf_counter() - started
        print(
            f"recognition {recognized:.2f} s; voices {heard:.2f} s ({len(voices)});"
            f" labelling {labelled:.2f} s; labels add {(heard + labelled) / recognized:.0%};"
            f" speaker process now {resident_mb(process):.0f} MB"
        )
    finally:
        engines.close()
        labeller.close()


if __name__ == "__main__":
    asyncio.run(measure(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else None))
