"""The tutorial's queued design, rebuilt as a baseline: rq jobs on Redis, polled by the client.

Like the tutorial's `POST /stt/task`, the endpoint saves the upload to a folder the workers share
and enqueues an rq job that names it; rq workers convert it with pydub to 16 kHz mono WAV and run
the engine; the client polls `GET /stt/task/{job_id}` until the text is there. Departures, each
for measuring: the engine is loaded once per worker process (as in `bench/naive_app.py`); a
finished job's answer also carries `finished_at`, rq's `ended_at`, so that the benchmark reads
when a job finished from the server as it does for the pipeline; and a failed job answers
`failed` where the tutorial's answered `processing` until it gave a 500. The handlers are `def`,
so FastAPI runs them in its thread pool and a Redis call never holds up other requests.
Not a product route: only `bench/run.py` starts it.

    export BENCH_ENGINE=sphinx BENCH_REDIS_URL=redis://127.0.0.1:6379/15 BENCH_RQ_QUEUE=stt \
        BENCH_RQ_FOLDER=/tmp/stt-rq
    uvicorn bench.rq_app:app          # the app
    python -m bench.rq_app            # one worker (start as many as wanted)
"""

import functools
import os
import shutil
import uuid
from datetime import UTC
from pathlib import Path

from fastapi import FastAPI, HTTPException, UploadFile
from pydub import AudioSegment
from redis import Redis
from rq import Queue, SimpleWorker
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from bench.engines import load_bench_engine
from recognizer.engines import Engine, read_audio
from shared.jobs.options import JobOptions

ENGINE = os.environ.get("BENCH_ENGINE", "faster-whisper")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")
QUEUE = os.environ.get("BENCH_RQ_QUEUE", "stt")
FOLDER = Path(os.environ.get("BENCH_RQ_FOLDER", "/tmp/stt-rq"))
JOB_TIMEOUT_SECONDS = 600

redis = Redis.from_url(REDIS_URL)
queue = Queue(QUEUE, connection=redis)
app = FastAPI()


@functools.cache
def engine() -> Engine:
    """The engine of this worker process, loaded on first use (the app never uses it)."""
    return load_bench_engine(ENGINE)


def transcribe(upload: str) -> str:
    """The rq job: convert the upload with pydub to 16 kHz mono WAV, then recognize it."""
    source = Path(upload)
    wav = source.with_suffix(".wav")
    try:
        audio = AudioSegment.from_file(source).set_frame_rate(16000).set_channels(1)
        audio.export(wav, format="wav")
        return engine().transcribe(read_audio(wav), JobOptions(engine=ENGINE, language="en")).text
    finally:
        source.unlink(missing_ok=True)
        wav.unlink(missing_ok=True)


@app.post("/stt/task")
def enqueue(file: UploadFile) -> dict[str, str]:
    FOLDER.mkdir(parents=True, exist_ok=True)
    file_id = uuid.uuid4().hex
    upload = FOLDER / file_id
    with upload.open("wb") as saved:
        shutil.copyfileobj(file.file, saved)
    job = queue.enqueue(
        transcribe, str(upload), job_timeout=JOB_TIMEOUT_SECONDS, result_ttl=3600, failure_ttl=3600
    )
    return {"job_id": job.id, "file_id": file_id}


# A stopped or cancelled job has ended too: the benchmark counts it failed rather than waiting.
ENDED = (JobStatus.FINISHED, JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED)


@app.get("/stt/task/{job_id}")
def status(job_id: str) -> dict[str, str]:
    try:
        job = Job.fetch(job_id, connection=redis)
    except NoSuchJobError as missing:
        raise HTTPException(404, "no such job") from missing
    state = job.get_status()
    if state not in ENDED or job.ended_at is None:
        return {"job_id": job_id, "status": "processing"}
    # rq keeps its times in UTC and reads them back without a zone.
    finished_at = job.ended_at.replace(tzinfo=UTC).isoformat()
    if state != JobStatus.FINISHED:
        return {"job_id": job_id, "status": "failed", "finished_at": finished_at}
    return {"job_id": job_id, "text": str(job.return_value()), "finished_at": finished_at}


def work() -> None:
    """One rq worker: loads the engine, registers with Redis, then takes jobs until SIGTERM.

    rq's default `Worker` forks a child for every job: an engine loaded in a job dies with its
    child, so each job would load the model again, and forking a process that holds a loaded
    model (and its native threads) per job is neither cheap nor safe. `SimpleWorker` runs each
    job in this process, so the model loaded here once serves every job, as a recognizer slot's
    does. It registers only once the model is loaded, so a registered worker is a ready one."""
    engine()
    SimpleWorker([queue], connection=redis).work(logging_level="WARNING")


if __name__ == "__main__":
    # Run as `python -m bench.rq_app`, this file is `__main__`, but rq calls the job by its name,
    # `bench.rq_app.transcribe`: load the engine into that module, the one the jobs will use.
    from bench.rq_app import work as work_in_named_module

    work_in_named_module()
