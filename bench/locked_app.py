"""whisper-asr-webservice's design, rebuilt as a second baseline: one model per process, loaded
at start, behind a lock, and a synchronous `def` handler that does the work inside the request.

FastAPI runs a `def` handler in its thread pool, so the event loop stays free and requests
are accepted while one is transcribed; the lock lets one transcription run at a time, and the
others wait for it inside their requests. Each request converts its upload with ffmpeg as that
service does, then transcribes it. Not a product route: only `bench/run.py` starts it.

    BENCH_ENGINE=whisper-base uvicorn bench.locked_app:app --workers 1
"""

import os
import subprocess
import tempfile
import threading
import uuid
from pathlib import Path

from fastapi import FastAPI, UploadFile

from bench.engines import load_bench_engine
from recognizer.engines import read_audio
from shared.jobs.options import JobOptions

ENGINE = os.environ.get("BENCH_ENGINE", "faster-whisper")
engine = load_bench_engine(ENGINE)
model_lock = threading.Lock()
folder = Path(tempfile.mkdtemp(prefix="locked-"))
app = FastAPI()


@app.post("/asr")
def transcribe(audio_file: UploadFile) -> dict[str, str]:
    job_id = uuid.uuid4().hex
    upload = folder / job_id
    wav = folder / f"{job_id}.wav"
    upload.write_bytes(audio_file.file.read())
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(upload),
         "-ac", "1", "-ar", "16000", "-f", "wav", str(wav)],
        check=True,
    )  # fmt: skip
    try:
        with model_lock:
            text = engine.transcribe(read_audio(wav), JobOptions(engine=ENGINE, language="en")).text
    finally:
        upload.unlink()
        wav.unlink()
    return {"text": text}
