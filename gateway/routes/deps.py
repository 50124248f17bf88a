"""What the gateway's routes ask for: the services, the caller, and a job the caller may see."""

from typing import Annotated

from fastapi import Depends, HTTPException, Path, Request

from gateway.auth import Caller, caller_of
from gateway.services import Services
from shared.jobs.models import JOB_ID_PATTERN, Job

JobId = Annotated[str, Path(pattern=JOB_ID_PATTERN, description="The id POST /v1/jobs returned.")]


def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


ServicesDep = Annotated[Services, Depends(services)]


CallerDep = Annotated[Caller, Depends(caller_of)]


async def find_job(services: Services, caller: Caller, job_id: str) -> Job:
    """The job, if the caller may see it: with API keys on, another key's job is unknown."""
    job = await services.jobs.get(job_id)
    if job is None or not caller.may_see(job.owner):
        raise HTTPException(404, f"No job {job_id}.")
    return job
