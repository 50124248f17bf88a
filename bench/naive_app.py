"""The tutorial's naive design, rebuilt as the baseline: all the work inside the request handler.

Like the tutorial's `POST /stt/native`, the `async def` endpoint saves the upload, converts it
with pydub and runs the engine right there, blocking the event loop while it does. It is given
one advantage the tutorial lacked: the engine is loaded once per process, not per request.
Not a product route: only `bench/run.py` starts it.

    BENCH_ENGINE=whisper-base uvicorn bench.naive_app:app --workers 2
"""

import os
import tempfile
import uuid
from pathlib import Path

from fastapi import FastAPI, UploadFile
from pydub import AudioSegment

from bench.engines import load_bench_engine
from recognizer.engines import read_audio
from shared.jobs.options import JobOptions

ENGINE = os.environ.get("BENCH_ENGINE", "faster-whisper")
engine = load_bench_engine(ENGINE)
folder = Path(tempfile.mkdtemp(prefix="naive-"))
app = FastAPI()


@app.post("/stt/native")
async def transcribe(file: UploadFile) -> dict[str, str]:
    job_id = uuid.uuid4().hex
    upload = folder / job_id
    upload.write_bytes(await file.read())
    wav = folder / f"{job_id}.wav"
    AudioSegment.from_file(upload).set_frame_rate(16000).set_channels(1).export(wav, format="wav")
    text = engine.transcribe(read_audio(wav), JobOptions(engine=ENGINE, language="en")).text
    upload.unlink()
    wav.unlink()
    return {"job_id": job_id, "text": text}
