"""Scale from zero, in process: an engine the gateway declares (STT_ENGINES) is accepted while no
recognizer of it runs or ever ran; its job is converted and waits in the engine's queue, the
queue whose depth the engine's KEDA ScaledObject reads; once a recognizer starts, the job is
done. The gateway, transcoder and recognizer are the real ones over one media folder and a fake
job store and broker; the recognizer's slot runs the real engine on real speech."""

import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from recognizer.engines import EngineConfig
from recognizer.handler import RecognizeHandler
from recognizer.pool import SlotPool
from shared.events import AudioReady, Event, MediaUploaded, TranscriptDone
from shared.media import MediaPaths
from shared.media_store import FolderStore
from shared.settings import CommonSettings
from shared.topology import build_topology
from tests import media
from tests.fakes import FakeBroker, FakeJobs, no_fetch
from tests.kustomize import build
from tests.unit.test_gateway import gateway
from transcoder.handler import TranscodeHandler
from transcoder.settings import TranscoderSettings

ENGINE = "faster-whisper"
DECLARED = ("whisper-base", ENGINE)
KUBERNETES = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"


class Queue(list[Event]):
    """What a handler publishes, kept as the broker would keep it: waiting to be taken."""

    async def __call__(self, event: Event) -> None:
        self.append(event)


class NoProblems:
    async def media_missing(self, why: str) -> None:
        raise AssertionError(why)

    def fine(self) -> None:
        return None


def scaled_by_keda(queue: str, engine: str) -> bool:
    """Whether the engine's ScaledObject counts the messages of `queue`."""
    scaled = next(
        resource
        for resource in build(KUBERNETES / "overlays" / "small")
        if resource["kind"] == "ScaledObject"
        and resource["metadata"]["name"] == f"recognizer-{engine}"
    )
    return any(
        re.search(trigger["metadata"]["queueName"], queue) for trigger in scaled["spec"]["triggers"]
    )


async def test_a_declared_engine_with_no_recognizer_is_held_then_done_once_one_starts(
    tmp_path: Path, clips: dict[str, Path]
) -> None:
    broker, jobs = FakeBroker(), FakeJobs()
    # No recognizer has ever reported: the fleet is empty (FakeFleet).
    async with gateway(tmp_path, broker, jobs, engines=DECLARED) as client:
        speech = {"file": ("talk.wav", clips["wav"].read_bytes())}
        refused = await client.post("/v1/jobs", files=speech, data={"engine": "sphinx"})
        accepted = await client.post("/v1/jobs", files=speech, data={"engine": ENGINE})
        assert refused.status_code == 422, refused.text
        assert accepted.status_code == 202, accepted.text
        job_id = accepted.json()["job_id"]
        assert broker.published == [MediaUploaded(job_id=job_id)]

        to_recognize = Queue()
        settings = TranscoderSettings(media_dir=tmp_path)
        store = FolderStore(MediaPaths(tmp_path))
        with ThreadPoolExecutor(1) as executor:
            transcode = TranscodeHandler(jobs, store, executor, to_recognize, settings, no_fetch)  # type: ignore[arg-type]
            await transcode(MediaUploaded(job_id=job_id))
        [ready] = to_recognize
        assert isinstance(ready, AudioReady)
        assert ready.engine == ENGINE
        # It waits in the engine's queue, which KEDA watches, with nothing to take it.
        topology = build_topology(CommonSettings(_env_file=None))
        [queue] = [q.name for q in topology.work_queues if ready.topic in q.routing_keys]
        assert queue == topology.recognizers[ENGINE].name
        assert scaled_by_keda(queue, ENGINE)
        waiting = (await client.get(f"/v1/jobs/{job_id}")).json()
        assert waiting["status"] == "transcoding", waiting

        # KEDA starts a recognizer: its slot loads the engine, and it takes the message.
        pool = SlotPool(
            1, (ENGINE,), EngineConfig(whisper_model="tiny.en", cpu_threads=1, beam_size=5)
        )
        await pool.start()
        try:
            recognize = RecognizeHandler(jobs, store, pool, Queue(), 120, NoProblems())  # type: ignore[arg-type]
            finished = await recognize(ready)
        finally:
            pool.close()
        assert finished == TranscriptDone(job_id=job_id)
        done = (await client.get(f"/v1/jobs/{job_id}")).json()
    assert done["status"] == "done", done
    assert set(media.EXPECTED_WORDS) <= media.words_of(done["text"])


@pytest.mark.parametrize("engine", ["sphinx", "google"])
async def test_an_engine_neither_declared_nor_served_is_refused(
    tmp_path: Path, clips: dict[str, Path], engine: str
) -> None:
    broker, jobs = FakeBroker(), FakeJobs()
    async with gateway(tmp_path, broker, jobs, engines=DECLARED) as client:
        speech = {"file": ("talk.wav", clips["wav"].read_bytes())}
        refused = await client.post("/v1/jobs", files=speech, data={"engine": engine})
    assert refused.status_code == 422
    assert f"No recognizer serves the engine {engine!r}" in refused.json()["detail"]
    assert broker.published == []
