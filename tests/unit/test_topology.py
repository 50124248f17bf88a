from shared.settings import CommonSettings
from shared.topology import build_topology


def topology(**values: object):  # type: ignore[no-untyped-def]
    return build_topology(CommonSettings(_env_file=None, **values))  # type: ignore[arg-type]


def test_each_consumer_has_its_own_queue_named_after_event_and_consumer() -> None:
    names = topology(namespace="acme")
    assert names.exchange == "acme.events"
    assert names.transcoder.name == "acme.media.uploaded--transcoder"
    assert names.transcoder.routing_keys == ("media.uploaded",)
    assert set(names.recognizers) == {
        "faster-whisper",
        "whisper-base",
        "sphinx",
        "google",
        "openai",
        "groq",
    }
    assert names.recognizers["sphinx"].name == "acme.audio.ready.sphinx--recognizer"
    assert names.recognizers["sphinx"].routing_keys == ("audio.ready.sphinx",)
    assert set(names.janitor_delay.routing_keys) == {"transcript.done", "job.failed"}
    assert names.janitor.routing_keys == ()
    assert names.callbacks.name == "acme.job.finished--gateway"
    assert set(names.callbacks.routing_keys) == {"transcript.done", "job.failed"}


def test_work_queues_are_quorum_queues_that_park_poison_messages() -> None:
    names = topology(delivery_limit=3)
    for queue in names.work_queues:
        assert queue.arguments["x-queue-type"] == "quorum"
        assert queue.arguments["x-delivery-limit"] == 3
        assert queue.arguments["x-dead-letter-routing-key"] == f"{queue.name}.parked"
    declared = {queue.name for queue in names.all_queues}
    assert {f"{queue.name}.parked" for queue in names.work_queues} <= declared


def test_delay_queue_releases_into_the_janitor_after_the_cleanup_delay() -> None:
    names = topology(cleanup_delay_seconds=2.5)
    assert names.janitor_delay.arguments["x-message-ttl"] == 2500
    assert names.janitor_delay.arguments["x-dead-letter-routing-key"] == names.janitor.name
    assert names.janitor_delay.name.endswith("delay-2500ms.quorum")


def test_every_queue_is_replicated() -> None:
    # A service declares its queues again on each reconnection; one that lived only on the lost
    # node would refuse that, and keep the service from reconnecting at all.
    names = topology(retry_delays_seconds=(1, 2))
    assert {queue.arguments["x-queue-type"] for queue in names.all_queues} == {"quorum"}
    # A delay hands its messages on only once their target has them.
    for queue in (*names.retries, names.janitor_delay):
        assert queue.arguments["x-dead-letter-strategy"] == "at-least-once"
        assert queue.arguments["x-overflow"] == "reject-publish"
    assert [queue.name for queue in names.retries] == [
        "stt.retry-1000ms.quorum",
        "stt.retry-2000ms.quorum",
    ]


def test_queues_are_created_on_as_many_nodes_as_are_listed_up_to_five() -> None:
    nodes = [f"amqp://guest:guest@rabbit{n}:5672/" for n in range(7)]
    assert topology().transcoder.replicas is None  # one node: RabbitMQ's own (every node)
    assert topology(broker_urls=",".join(nodes[:3])).transcoder.replicas == 3
    assert topology(broker_urls=",".join(nodes)).janitor_delay.replicas == 5
    assert topology(broker_urls=",".join(nodes), quorum_group_size=3).retries[0].replicas == 3


def test_interim_queues_name_their_lifetime_and_live_on_every_listed_node() -> None:
    nodes = ",".join(f"amqp://guest:guest@rabbit{n}:5672/" for n in range(3))
    interim = topology(namespace="acme", broker_urls=nodes).interim["sphinx"]
    assert interim.name == "acme.live.interim.sphinx--recognizer.ttl-1000ms.quorum"
    assert interim.routing_keys == ("live.interim.sphinx",)
    assert interim.arguments["x-message-ttl"] == 1000
    assert interim.arguments["x-max-length"] == 256
    assert interim.arguments["x-overflow"] == "drop-head"
    assert interim.replicas == 3
