"""deploy/kubernetes, checked without a cluster: each overlay is built as kustomize would
(tests/kustomize.py), every built-in kind is validated against Kubernetes 1.31's schemas, the
KEDA and RabbitMQ resources are checked against the fields their documentation gives, and the
manifests are held to what the code expects: queue names, engines, ports, probes, secrets."""

import base64
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import pytest

from shared.settings import CommonSettings
from shared.topology import build_topology
from tests.kustomize import Resource, Unsupported, build

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES = ROOT / "deploy" / "kubernetes"
OVERLAYS = ("small", "large")
KUBERNETES_VERSION = "1.31.0"
WORKERS = ("transcoder", "janitor", "recognizer")


@pytest.fixture(scope="module", params=OVERLAYS)
def built(request: pytest.FixtureRequest) -> list[Resource]:
    return build(KUBERNETES / "overlays" / request.param)


def of_kind(resources: list[Resource], kind: str) -> dict[str, Resource]:
    return {r["metadata"]["name"]: r for r in resources if r["kind"] == kind}


def env_of(container: dict[str, Any], config: dict[str, str]) -> dict[str, Any]:
    """The container's environment: its ConfigMap's values, then its own entries."""
    values: dict[str, Any] = {}
    for source in container.get("envFrom", []):
        assert source["configMapRef"]["name"] == "stt-config"
        values.update(config)
    for entry in container.get("env", []):
        values[entry["name"]] = entry.get("value", entry.get("valueFrom"))
    return values


def config_of(resources: list[Resource]) -> dict[str, str]:
    data: dict[str, str] = of_kind(resources, "ConfigMap")["stt-config"]["data"]
    return data


# --- Built-in kinds ----------------------------------------------------------------------------

CUSTOM_KINDS = {
    ("keda.sh/v1alpha1", "ScaledObject"),
    ("keda.sh/v1alpha1", "TriggerAuthentication"),
    ("rabbitmq.com/v1beta1", "RabbitmqCluster"),
}


def test_every_built_in_manifest_validates_against_the_kubernetes_schemas(
    built: list[Resource],
) -> None:
    custom = [r for r in built if (r["apiVersion"], r["kind"]) in CUSTOM_KINDS]
    assert {r["kind"] for r in custom} == {k for _, k in CUSTOM_KINDS}
    for resource in built:
        if (resource["apiVersion"], resource["kind"]) in CUSTOM_KINDS:
            continue
        kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)


def test_the_validation_refuses_a_misspelt_field() -> None:
    deployment = of_kind(build(KUBERNETES / "overlays" / "small"), "Deployment")["janitor"]
    deployment["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


# --- KEDA: the fields its documentation and its rabbitmq scaler ask for --------------------------

SCALED_OBJECT_SPEC = {
    "scaleTargetRef", "pollingInterval", "cooldownPeriod", "initialCooldownPeriod",
    "idleReplicaCount", "minReplicaCount", "maxReplicaCount", "fallback", "advanced", "triggers",
}  # fmt: skip
SCALE_TARGET_REF = {"name", "apiVersion", "kind", "envSourceContainerName"}
TRIGGER = {"type", "name", "metadata", "authenticationRef", "metricType", "useCachedMetrics"}
RABBITMQ_METADATA = {
    "host", "hostFromEnv", "usernameFromEnv", "passwordFromEnv", "protocol", "mode", "value",
    "activationValue", "queueName", "vhostName", "useRegex", "excludeUnacknowledged", "pageSize",
    "operation", "timeout", "unsafeSsl",
}  # fmt: skip
RABBITMQ_MODES = {
    "QueueLength", "MessageRate", "DeliverGetRate", "PublishedToDeliveredRatio",
    "ExpectedQueueConsumptionTime",
}  # fmt: skip
RABBITMQ_AUTH_PARAMETERS = {
    "host", "username", "password", "protocol", "vhostName", "ca", "cert", "key", "keyPassword",
    "tls", "workloadIdentityResource",
}  # fmt: skip


def scaled_object_problems(scaled: Resource, resources: list[Resource]) -> list[str]:
    """What KEDA would refuse, or what would scale nothing, in one ScaledObject."""
    problems = []
    spec = scaled["spec"]
    name = scaled["metadata"]["name"]
    if scaled["apiVersion"] != "keda.sh/v1alpha1":
        problems.append(f"{name}: apiVersion {scaled['apiVersion']}")
    problems += [f"{name}: unknown spec.{key}" for key in set(spec) - SCALED_OBJECT_SPEC]
    problems += [
        f"{name}: spec.{key} missing" for key in {"scaleTargetRef", "triggers"} - spec.keys()
    ]
    target = spec.get("scaleTargetRef", {})
    problems += [f"{name}: unknown scaleTargetRef.{key}" for key in set(target) - SCALE_TARGET_REF]
    if target.get("kind", "Deployment") != "Deployment" or target.get("name") not in of_kind(
        resources, "Deployment"
    ):
        problems.append(f"{name}: scaleTargetRef {target} is no Deployment here")
    low, high = spec.get("minReplicaCount", 0), spec.get("maxReplicaCount", 100)
    if not (isinstance(low, int) and isinstance(high, int) and 0 <= low <= high and high > 0):
        problems.append(f"{name}: replica counts {low}..{high}")
    fallback = spec.get("fallback")
    if fallback is not None and not (
        isinstance(fallback.get("failureThreshold"), int)
        and isinstance(fallback.get("replicas"), int)
    ):
        problems.append(f"{name}: fallback needs failureThreshold and replicas")
    authentications = of_kind(resources, "TriggerAuthentication")
    for trigger in spec.get("triggers") or [{}]:
        problems += [f"{name}: unknown trigger field {key}" for key in set(trigger) - TRIGGER]
        if trigger.get("type") != "rabbitmq":
            problems.append(f"{name}: trigger type {trigger.get('type')}")
            continue
        metadata = trigger.get("metadata", {})
        not_text = [key for key, value in metadata.items() if not isinstance(value, str)]
        problems += [f"{name}: metadata value {key} is not a string" for key in not_text]
        problems += rabbitmq_trigger_problems(name, metadata)
        reference = trigger.get("authenticationRef", {}).get("name")
        if reference not in authentications:
            problems.append(
                f"{name}: authenticationRef {reference!r} names no TriggerAuthentication"
            )
    return problems


def rabbitmq_trigger_problems(name: str, metadata: dict[str, str]) -> list[str]:
    problems = [
        f"{name}: unknown rabbitmq metadata {key}" for key in set(metadata) - RABBITMQ_METADATA
    ]
    missing = [key for key in ("queueName", "mode", "value") if not metadata.get(key)]
    problems += [f"{name}: rabbitmq metadata {key} missing" for key in missing]
    if metadata.get("mode") not in RABBITMQ_MODES:
        problems.append(f"{name}: mode {metadata.get('mode')!r}")
    try:
        if float(metadata.get("value", "")) <= 0:
            problems.append(f"{name}: value must be above 0")
    except ValueError:
        problems.append(f"{name}: value {metadata.get('value')!r} is not a number")
    host = urlsplit(metadata.get("host", ""))
    protocol = metadata.get("protocol", "auto")
    expected_schemes = {"http": {"http", "https"}, "amqp": {"amqp", "amqps"}}.get(
        protocol, {"http", "https", "amqp", "amqps"}
    )
    if host.scheme not in expected_schemes or not host.path.startswith("/"):
        problems.append(f"{name}: host {metadata.get('host')!r} for protocol {protocol}")
    if host.username or host.password:
        problems.append(f"{name}: credentials belong in the TriggerAuthentication, not the host")
    http = host.scheme in ("http", "https")
    for flag in ("useRegex", "excludeUnacknowledged"):
        if metadata.get(flag, "false") not in ("true", "false"):
            problems.append(f"{name}: {flag} must be 'true' or 'false'")
        if metadata.get(flag) == "true" and not http:
            problems.append(f"{name}: {flag} needs the management API (http)")
    if metadata.get("operation", "sum") not in ("sum", "max", "avg"):
        problems.append(f"{name}: operation {metadata['operation']!r}")
    return problems


def authentication_problems(authentication: Resource, resources: list[Resource]) -> list[str]:
    name = authentication["metadata"]["name"]
    references = authentication["spec"].get("secretTargetRef", [])
    problems = [
        f"{name}: unknown spec.{key}" for key in set(authentication["spec"]) - {"secretTargetRef"}
    ]
    parameters = [reference.get("parameter") for reference in references]
    problems += [
        f"{name}: parameter {p!r}" for p in parameters if p not in RABBITMQ_AUTH_PARAMETERS
    ]
    if ("username" in parameters) != ("password" in parameters):
        problems.append(f"{name}: username and password go together")
    for reference in references:
        if set(reference) != {"parameter", "name", "key"}:
            problems.append(f"{name}: secretTargetRef {reference}")
        elif reference["key"] not in secret_keys(reference["name"], resources):
            problems.append(f"{name}: secret {reference['name']} has no key {reference['key']}")
    return problems


def secret_keys(secret: str, resources: list[Resource]) -> set[str]:
    """The keys of a Secret of this build, or of the one the RabbitMQ operator makes."""
    operators = {f"{cluster}-default-user" for cluster in of_kind(resources, "RabbitmqCluster")}
    if secret in operators:
        return {"username", "password", "host", "port", "default_user.conf", "provider", "type"}
    return set(of_kind(resources, "Secret").get(secret, {}).get("data", {}))


def test_keda_resources_use_the_fields_keda_documents(built: list[Resource]) -> None:
    problems = [
        problem
        for scaled in of_kind(built, "ScaledObject").values()
        for problem in scaled_object_problems(scaled, built)
    ]
    problems += [
        problem
        for authentication in of_kind(built, "TriggerAuthentication").values()
        for problem in authentication_problems(authentication, built)
    ]
    assert problems == []


@pytest.mark.parametrize(
    ("path", "value", "complaint"),
    [
        (("spec", "scaleTargetRef", "name"), "recogniser-sphinx", "is no Deployment here"),
        (("spec", "triggers", 0, "metadata", "mode"), "QueueDepth", "mode 'QueueDepth'"),
        (("spec", "triggers", 0, "metadata", "value"), "two", "is not a number"),
        (("spec", "triggers", 0, "metadata", "value"), 2, "is not a string"),
        (("spec", "triggers", 0, "metadata", "protocol"), "amqp", "for protocol amqp"),
        (("spec", "triggers", 0, "authenticationRef", "name"), "rabbit", "names no TriggerAuth"),
        (("spec", "triggers", 0, "metadata", "queueLength"), "2", "unknown rabbitmq metadata"),
        (("spec", "minReplicaCount"), 5, "replica counts 5..1"),
    ],
)
def test_the_keda_check_finds_what_keda_would_refuse(
    path: tuple[str | int, ...], value: Any, complaint: str
) -> None:
    resources = build(KUBERNETES / "overlays" / "small")
    scaled = of_kind(resources, "ScaledObject")["recognizer-sphinx"]
    node: Any = scaled
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    assert any(complaint in problem for problem in scaled_object_problems(scaled, resources))


def test_each_engine_scales_on_exactly_its_own_queues(built: list[Resource]) -> None:
    config = config_of(built)
    topology = build_topology(CommonSettings(_env_file=None, namespace=config["STT_NAMESPACE"]))
    every_queue = [queue.name for queue in topology.all_queues]
    deployments = of_kind(built, "Deployment")
    scaled_objects = of_kind(built, "ScaledObject")
    recognizers = {name: d for name, d in deployments.items() if name.startswith("recognizer-")}
    assert set(recognizers) <= set(scaled_objects)
    for name, deployment in recognizers.items():
        env = env_of(deployment["spec"]["template"]["spec"]["containers"][0], config)
        [engine] = env["STT_ENGINES"].split(",")
        [trigger] = scaled_objects[name]["spec"]["triggers"]
        metadata = trigger["metadata"]
        assert metadata["useRegex"] == "true"
        # The management API searches names with the expression, unanchored, as re.search does.
        matched = {queue for queue in every_queue if re.search(metadata["queueName"], queue)}
        own = {
            topology.recognizers[engine].name,
            topology.pieces[engine].name,
            topology.live[engine].name,
        }
        assert matched == own, name
        # A pod's target is what it takes at once: one message per slot.
        assert metadata["value"] == env["STT_RECOGNIZER_SLOTS"]
        assert metadata.get("excludeUnacknowledged", "false") == "false"
        assert "replicas" not in deployment["spec"]
    [transcoding] = scaled_objects["transcoder"]["spec"]["triggers"]
    assert transcoding["metadata"]["queueName"] == topology.transcoder.name
    transcoder = deployments["transcoder"]["spec"]["template"]["spec"]["containers"][0]
    assert (
        transcoding["metadata"]["value"] == env_of(transcoder, config)["STT_TRANSCODER_CONCURRENCY"]
    )


def test_keda_reads_the_operators_rabbitmq_in_this_namespace(built: list[Resource]) -> None:
    [cluster] = of_kind(built, "RabbitmqCluster").values()
    namespace = cluster["metadata"]["namespace"]
    for scaled in of_kind(built, "ScaledObject").values():
        for trigger in scaled["spec"]["triggers"]:
            host = urlsplit(trigger["metadata"]["host"])
            assert host.hostname == f"{cluster['metadata']['name']}.{namespace}.svc"
            assert host.port == 15672


# --- RabbitMQ's cluster operator -----------------------------------------------------------------

RABBITMQ_CLUSTER_SPEC = {
    "replicas", "image", "imagePullSecrets", "service", "persistence", "resources", "affinity",
    "tolerations", "rabbitmq", "tls", "override", "terminationGracePeriodSeconds",
    "skipPostDeploySteps", "delayStartSeconds", "secretBackend",
}  # fmt: skip
RABBITMQ_CONFIG = {
    "additionalPlugins", "additionalConfig", "advancedConfig", "envConfig", "erlangInetConfig",
}  # fmt: skip
QUANTITY = re.compile(r"^(\d+(\.\d*)?|\.\d+)([KMGTPE]i|[numkMGTPE]|[eE][+-]?\d+)?$")


def test_rabbitmq_is_a_cluster_of_three_with_known_fields(built: list[Resource]) -> None:
    [cluster] = of_kind(built, "RabbitmqCluster").values()
    spec = cluster["spec"]
    assert cluster["apiVersion"] == "rabbitmq.com/v1beta1"
    assert set(spec) <= RABBITMQ_CLUSTER_SPEC
    assert set(spec.get("rabbitmq", {})) <= RABBITMQ_CONFIG
    assert spec["replicas"] == 3
    assert set(spec["persistence"]) <= {"storage", "storageClassName"}
    assert QUANTITY.match(spec["persistence"]["storage"])
    # Its resources and affinity are the core types: validated as a pod's.
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "rabbitmq-fields"},
        "spec": {
            "affinity": spec["affinity"],
            "containers": [
                {"name": "rabbitmq", "image": spec["image"], "resources": spec["resources"]}
            ],
        },
    }
    kubernetes_validate.validate(pod, KUBERNETES_VERSION, strict=True)


# --- The workloads ------------------------------------------------------------------------------


def test_every_pod_runs_locked_down_with_limits_and_a_writable_scratch(
    built: list[Resource],
) -> None:
    config = config_of(built)
    workloads = {**of_kind(built, "Deployment"), **of_kind(built, "StatefulSet")}
    for name, workload in workloads.items():
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] != 0, name
        mounted_volumes = {volume["name"]: volume for volume in pod.get("volumes", [])}
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"]["drop"] == ["ALL"], name
            for bound in ("requests", "limits"):
                assert set(container["resources"][bound]) >= {"cpu", "memory"}, name
            mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
            assert "/tmp" in mounts, name
            if name.startswith(("gateway", *WORKERS)):
                # The service's media folder is its scratch: writable, private, bounded.
                scratch = mounted_volumes[mounts[env_of(container, config)["STT_MEDIA_DIR"]]]
                assert scratch["emptyDir"]["sizeLimit"], name


def test_each_service_stops_after_its_drain_and_is_probed_where_it_answers(
    built: list[Resource],
) -> None:
    config = config_of(built)
    for name, deployment in of_kind(built, "Deployment").items():
        pod = deployment["spec"]["template"]["spec"]
        [container] = pod["containers"]
        env = env_of(container, config)
        grace = float(env["STT_SHUTDOWN_GRACE_SECONDS"])
        pre_stop = (
            container.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
        )
        assert pod["terminationGracePeriodSeconds"] >= pre_stop + grace + 5, name
        ports = {port["name"]: port["containerPort"] for port in container["ports"]}
        probes = {
            kind: (probe["httpGet"]["path"], ports[probe["httpGet"]["port"]])
            for kind in ("startupProbe", "livenessProbe", "readinessProbe")
            if (probe := container.get(kind))
        }
        if name == "gateway":
            assert container["command"] == ["python", "-m", "gateway"]
            assert ports["http"] == int(env["STT_PORT"])
            assert probes["livenessProbe"] == ("/healthz", ports["http"])
            assert probes["readinessProbe"] == ("/readyz", ports["http"])
        else:
            module = container["command"][-1]
            assert module in WORKERS, name
            metrics_port = int(env["STT_METRICS_PORT"])
            assert probes["livenessProbe"] == ("/livez", metrics_port), name
            assert probes["readinessProbe"] == ("/readyz", metrics_port), name
            assert probes["startupProbe"] == ("/readyz", metrics_port), name


def test_recognizer_slots_fit_the_cpus_each_pod_asks_for(built: list[Resource]) -> None:
    config = config_of(built)
    for name, deployment in of_kind(built, "Deployment").items():
        if not name.startswith("recognizer-"):
            continue
        [container] = deployment["spec"]["template"]["spec"]["containers"]
        env = env_of(container, config)
        # Unset, the slots would follow the node's cores, not the pod's.
        cores = int(env["STT_RECOGNIZER_SLOTS"]) * int(env["STT_RECOGNIZER_CPU_THREADS"])
        assert cores <= float(container["resources"]["requests"]["cpu"]), name


def test_the_gateway_declares_exactly_the_engines_that_have_recognizers(
    built: list[Resource],
) -> None:
    config = config_of(built)
    deployments = of_kind(built, "Deployment")
    served = {
        env_of(d["spec"]["template"]["spec"]["containers"][0], config)["STT_ENGINES"]
        for name, d in deployments.items()
        if name.startswith("recognizer-")
    }
    gateway = deployments["gateway"]["spec"]["template"]["spec"]["containers"][0]
    declared = env_of(gateway, config)["STT_ENGINES"].split(",")
    assert sorted(declared) == sorted(served)
    assert CommonSettings(_env_file=None, engines=",".join(declared)).default_engine in served


def test_every_service_has_a_disruption_budget(built: list[Resource]) -> None:
    budgets = of_kind(built, "PodDisruptionBudget").values()
    selected = [budget["spec"]["selector"]["matchLabels"] for budget in budgets]
    for name, workload in {**of_kind(built, "Deployment"), **of_kind(built, "StatefulSet")}.items():
        labels = workload["spec"]["template"]["metadata"]["labels"]
        assert any(wanted.items() <= labels.items() for wanted in selected), name
    assert {"app.kubernetes.io/name": "stt-rabbitmq"} in selected


def test_the_gateway_is_reached_through_its_service_ingress_and_autoscaler(
    built: list[Resource],
) -> None:
    gateway = of_kind(built, "Deployment")["gateway"]
    labels = gateway["spec"]["template"]["metadata"]["labels"]
    service = of_kind(built, "Service")["gateway"]
    assert service["spec"]["selector"].items() <= labels.items()
    [port] = service["spec"]["ports"]
    assert port["targetPort"] == "http"
    [ingress] = of_kind(built, "Ingress").values()
    [path] = ingress["spec"]["rules"][0]["http"]["paths"]
    assert path["backend"]["service"] == {"name": "gateway", "port": {"name": port["name"]}}
    autoscaler = of_kind(built, "HorizontalPodAutoscaler")["gateway"]
    assert autoscaler["spec"]["scaleTargetRef"]["name"] == "gateway"
    assert autoscaler["spec"]["minReplicas"] >= 1
    assert "replicas" not in gateway["spec"]


def test_services_reach_the_broker_the_replica_set_and_their_secrets(
    built: list[Resource],
) -> None:
    config = config_of(built)
    [cluster] = of_kind(built, "RabbitmqCluster")
    mongodb = of_kind(built, "StatefulSet")["stt-mongodb"]
    assert mongodb["spec"]["replicas"] == 3
    command = mongodb["spec"]["template"]["spec"]["containers"][0]["command"]
    replica_set = command[command.index("--replSet") + 1]
    url = urlsplit(config["STT_MONGODB_URL"])
    members = [
        f"{mongodb['metadata']['name']}-{n}.{mongodb['spec']['serviceName']}:27017"
        for n in range(3)
    ]
    assert url.netloc.split(",") == members
    assert url.query == f"replicaSet={replica_set}"
    for name, deployment in of_kind(built, "Deployment").items():
        [container] = deployment["spec"]["template"]["spec"]["containers"]
        env = env_of(container, config)
        assert urlsplit(env["STT_BROKER_URL"]).hostname == cluster, name
        for value in env.values():
            if isinstance(value, dict) and "secretKeyRef" in value:
                reference = value["secretKeyRef"]
                assert reference["key"] in secret_keys(reference["name"], built), (name, reference)
    secret = of_kind(built, "Secret")["stt-secrets"]
    assert set(secret["data"]) == {"STT_API_KEYS", "STT_ADMIN_KEYS", "STT_CALLBACK_SECRET"}
    assert all(base64.b64decode(value) == b"" for value in secret["data"].values())


# --- The resolver itself ------------------------------------------------------------------------


def test_the_resolver_refuses_what_it_would_not_apply(tmp_path: Path) -> None:
    (tmp_path / "map.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: m\ndata:\n  a: b\n"
    )
    (tmp_path / "kustomization.yaml").write_text("resources: [map.yaml]\ncommonLabels: {a: b}\n")
    with pytest.raises(Unsupported, match="commonLabels"):
        build(tmp_path)
    (tmp_path / "kustomization.yaml").write_text(
        "resources: [map.yaml]\npatches:\n  - target: {kind: ConfigMap, name: m}\n"
        "    patch: '[{op: replace, path: /data/c, value: d}]'\n"
    )
    with pytest.raises(LookupError, match="nothing there"):
        build(tmp_path)


def test_an_overlay_that_names_the_pushed_image_builds_and_validates(tmp_path: Path) -> None:
    """What `kustomize edit set image` writes into an operator's overlay."""
    small = os.path.relpath(KUBERNETES / "overlays" / "small", tmp_path)
    (tmp_path / "kustomization.yaml").write_text(
        f"resources: [{small}]\n"
        "images:\n  - {name: stt-pipeline, newName: registry.example.com/stt, newTag: '1.1.0'}\n"
    )
    resources = build(tmp_path)
    images = {
        container["image"]
        for deployment in of_kind(resources, "Deployment").values()
        for container in deployment["spec"]["template"]["spec"]["containers"]
    }
    assert images == {"registry.example.com/stt:1.1.0"}
    for resource in resources:
        if (resource["apiVersion"], resource["kind"]) not in CUSTOM_KINDS:
            kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)
