"""What the gateway's routes work with, made once as the gateway starts (or given by a test)."""

from dataclasses import dataclass, field

from gateway.backlog import Backlog
from gateway.limits import InFlight, uploads_in_flight, waits_in_flight
from gateway.settings import GatewaySettings
from gateway.watcher import JobWatcher
from shared.broker import Broker
from shared.fairness import FairShare
from shared.fleet import Fleet
from shared.jobs.store import JobStore
from shared.media_store import MediaStore


@dataclass(frozen=True)
class Services:
    settings: GatewaySettings
    broker: Broker
    jobs: JobStore
    store: MediaStore
    watcher: JobWatcher
    fleet: Fleet
    backlog: Backlog
    uploads: InFlight = field(default_factory=uploads_in_flight)
    waits: InFlight = field(default_factory=waits_in_flight)

    @property
    def fair_share(self) -> FairShare:
        return FairShare(self.jobs, self.broker.publish, self.settings)
