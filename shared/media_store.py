"""Where a job's media lives between services: the upload, and its audio cut into pieces.

Every service writes and reads local files; the store decides whether other hosts can reach them.

- `folder`: one folder every service shares (a volume, or one machine). Files stay in place.
- `gridfs`: MongoDB's GridFS, so a worker on any host that reaches MongoDB can take work. Each
  service keeps only a private scratch folder: what it stores is streamed into GridFS in chunks
  and deleted locally; what it reads is streamed into scratch, and deleted when it is done.
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from gridfs import AsyncGridFSBucket
from gridfs.errors import NoFile
from pymongo.asynchronous.database import AsyncDatabase

from shared.faults import MediaUnavailable
from shared.jobs.store import JobStore
from shared.media import MediaPaths, delete_files, job_of, stale_paths
from shared.settings import CommonSettings, StoreKind

log = logging.getLogger(__name__)

CHUNK_BYTES = 1024 * 1024
BUCKET = "media"


class MediaStore(Protocol):
    @property
    def local(self) -> MediaPaths:
        """Where this service writes what it will store, and where it keeps what it reads."""

    async def keep_upload(self, job_id: str) -> None:
        """Store the upload written at `local.upload(job_id)`."""

    def upload(self, job_id: str) -> contextlib.AbstractAsyncContextManager[Path]:
        """The upload as a local file, for the body of the `async with`."""

    async def has_upload(self, job_id: str) -> bool:
        """Whether the upload is still stored (the janitor deletes it after the cleanup delay)."""

    async def keep_piece(self, job_id: str, index: int) -> None:
        """Store the piece written at `local.piece(job_id, index)`."""

    def piece(self, job_id: str, index: int) -> contextlib.AbstractAsyncContextManager[Path]:
        """The piece as a local file, for the body of the `async with`."""

    async def delete_job(self, job_id: str) -> int:
        """Delete what is stored of the job; how many things were there."""

    async def release_local(self, job_id: str) -> None:
        """This service is done writing the job's files: delete what is only a local copy."""


class FolderStore:
    def __init__(self, folder: MediaPaths) -> None:
        self.local = folder

    async def keep_upload(self, job_id: str) -> None:
        pass  # written in place

    @contextlib.asynccontextmanager
    async def upload(self, job_id: str) -> AsyncIterator[Path]:
        yield await _present(self.local.upload(job_id))

    async def has_upload(self, job_id: str) -> bool:
        return await asyncio.to_thread(self.local.upload(job_id).exists)

    async def keep_piece(self, job_id: str, index: int) -> None:
        pass

    @contextlib.asynccontextmanager
    async def piece(self, job_id: str, index: int) -> AsyncIterator[Path]:
        yield await _present(self.local.piece(job_id, index))

    async def delete_job(self, job_id: str) -> int:
        return await asyncio.to_thread(delete_files, self.local.of_job(job_id))

    async def release_local(self, job_id: str) -> None:
        pass  # the shared folder is the store


async def _present(path: Path) -> Path:
    if not await asyncio.to_thread(path.exists):
        raise MediaUnavailable(
            f"{path} is missing; is STT_MEDIA_DIR the folder every service shares?"
        )
    return path


class GridFSStore:
    def __init__(self, database: AsyncDatabase[dict[str, Any]], scratch: MediaPaths) -> None:
        self.local = scratch
        self._bucket = AsyncGridFSBucket(database, bucket_name=BUCKET)
        self._files = database[f"{BUCKET}.files"]

    async def keep_upload(self, job_id: str) -> None:
        await self._keep(self.local.upload(job_id), f"{job_id}/upload", job_id)

    @contextlib.asynccontextmanager
    async def upload(self, job_id: str) -> AsyncIterator[Path]:
        async with self._fetched(f"{job_id}/upload") as path:
            yield path

    async def has_upload(self, job_id: str) -> bool:
        # Not the bucket's cursor: its to_list raises StopAsyncIteration when nothing matches.
        found = await self._files.find_one({"filename": f"{job_id}/upload"}, {"_id": 1})
        return found is not None

    async def keep_piece(self, job_id: str, index: int) -> None:
        await self._keep(self.local.piece(job_id, index), f"{job_id}/piece-{index:05d}", job_id)

    @contextlib.asynccontextmanager
    async def piece(self, job_id: str, index: int) -> AsyncIterator[Path]:
        name = f"{job_id}/piece-{index:05d}"
        async with self._fetched(name) as path:
            yield path

    async def delete_job(self, job_id: str) -> int:
        deleted = await asyncio.to_thread(delete_files, self.local.of_job(job_id))
        return deleted + await self._delete_stored({"metadata.job_id": job_id})

    async def release_local(self, job_id: str) -> None:
        await asyncio.to_thread(delete_files, self.local.of_job(job_id))

    async def delete_orphans(self, jobs: JobStore, moment: datetime) -> int:
        """Delete stored files uploaded before `moment` whose job has ended or is gone (its
        cleanup was lost); an unfinished job's files stay, however old."""
        stored = self._bucket.find({"uploadDate": {"$lt": moment}})
        owners = {str(file.metadata.get("job_id")) async for file in stored if file.metadata}
        deleted = 0
        for job_id in owners - await _unfinished(jobs, owners):
            deleted += await self._delete_stored({"metadata.job_id": job_id})
        return deleted

    async def ensure_indexes(self) -> None:
        """For the janitor's `delete_job`; GridFS indexes names and dates by itself."""
        await self._files.create_index([("metadata.job_id", 1)])

    async def _delete_stored(self, query: dict[str, Any]) -> int:
        """Delete the stored files that match `query`; how many there were."""
        deleted = 0
        async for stored in self._bucket.find(query):
            with contextlib.suppress(NoFile):  # another service deleted it meanwhile
                await self._bucket.delete(stored._id)
                deleted += 1
        return deleted

    async def _keep(self, path: Path, name: str, job_id: str) -> None:
        """Stream `path` into the bucket in chunks (replacing an earlier copy), then delete it."""
        await self._delete_stored({"filename": name})
        stream = self._bucket.open_upload_stream(name, metadata={"job_id": job_id})
        try:
            with await asyncio.to_thread(path.open, "rb") as source:
                while chunk := await asyncio.to_thread(source.read, CHUNK_BYTES):
                    await stream.write(chunk)
        except BaseException:
            await stream.abort()
            raise
        await stream.close()
        await asyncio.to_thread(path.unlink, missing_ok=True)

    @contextlib.asynccontextmanager
    async def _fetched(self, name: str) -> AsyncIterator[Path]:
        """A local copy of the stored `name`, streamed in chunks, deleted afterwards."""
        copy = self.local.fetched(name)
        try:
            stored = await self._bucket.open_download_stream_by_name(name)
        except NoFile as error:
            raise MediaUnavailable(f"{name} is not in the media store") from error
        try:
            await asyncio.to_thread(copy.parent.mkdir, parents=True, exist_ok=True)
            with await asyncio.to_thread(copy.open, "wb") as output:
                while chunk := await stored.readchunk():
                    await asyncio.to_thread(output.write, chunk)
            yield copy
        finally:
            await asyncio.to_thread(copy.unlink, missing_ok=True)


def open_store(
    kind: StoreKind, database: AsyncDatabase[dict[str, Any]], folder: Path
) -> FolderStore | GridFSStore:
    """The store of STT_MEDIA_STORE; `folder` is STT_MEDIA_DIR: shared for `folder`, this
    service's private scratch for `gridfs`."""
    paths = MediaPaths(folder)
    paths.create_folders()
    if kind == "gridfs":
        return GridFSStore(database, paths)
    return FolderStore(paths)


# How often every service looks for orphans in its media folder (its scratch, with GridFS).
SCRATCH_SWEEP_SECONDS = 600.0


def orphan_age_seconds(settings: CommonSettings) -> float:
    """How long a file of an ended (or unknown) job stays untouched before it counts as an
    orphan: by then the janitor's cleanup, after its delay, has had its turn."""
    return settings.cleanup_delay_seconds + SCRATCH_SWEEP_SECONDS


async def delete_local_orphans(paths: MediaPaths, jobs: JobStore, older_than_seconds: float) -> int:
    """Delete what this service's media folder holds of jobs that ended or are gone, untouched
    for `older_than_seconds`: left by a crash, a failure, or a reader that died holding a
    fetched copy. Decided by the job's state, not the file's age alone: the files of a job
    still under way stay however old (a job held for hours by the fair share keeps its upload)."""
    stale = await asyncio.to_thread(stale_paths, paths.folders, older_than_seconds)
    keep = await _unfinished(jobs, {job_id for path in stale if (job_id := job_of(path))})
    orphans = tuple(path for path in stale if job_of(path) not in keep)
    return await asyncio.to_thread(delete_files, orphans)


async def _unfinished(jobs: JobStore, job_ids: set[str]) -> set[str]:
    unfinished = set()
    for job_id in job_ids:
        job = await jobs.get(job_id)
        if job is not None and not job.status.is_final:
            unfinished.add(job_id)
    return unfinished


async def sweep_scratch_every(paths: MediaPaths, jobs: JobStore, settings: CommonSettings) -> None:
    """`delete_local_orphans` every SCRATCH_SWEEP_SECONDS, for as long as the service runs."""
    while True:
        try:
            deleted = await delete_local_orphans(paths, jobs, orphan_age_seconds(settings))
            if deleted:
                log.warning("deleted %d orphaned file(s) from %s", deleted, paths.root)
        except Exception:
            log.exception("sweeping %s failed; trying again later", paths.root)
        await asyncio.sleep(SCRATCH_SWEEP_SECONDS)
