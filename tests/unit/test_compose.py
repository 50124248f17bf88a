"""compose.yaml, checked without a Docker engine: valid by the Compose Specification, and every
service wired as docs/deployment.md promises."""

import importlib.util
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from compose_pydantic import ComposeSpecification

ROOT = Path(__file__).resolve().parents[2]
APP_SERVICES = ("gateway", "transcoder", "recognizer", "janitor")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return loaded


def test_compose_file_follows_the_specification(compose: dict[str, Any]) -> None:
    # Extension fields (x-...) hold the shared anchors; the validator does not know them, nor
    # env_file's long form (path and required, Compose 2.24), checked on its own below.
    services = {
        name: {key: value for key, value in service.items() if key != "env_file"}
        for name, service in compose["services"].items()
    }
    ComposeSpecification.model_validate(
        {k: v for k, v in compose.items() if not k.startswith("x-")} | {"services": services}
    )


def test_infrastructure_has_healthchecks_and_the_management_ui(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"rabbitmq", "mongodb", "prometheus", "proxy", *APP_SERVICES}
    assert "management" in services["rabbitmq"]["image"]
    # The management UI and Prometheus answer on the host's loopback only.
    assert services["rabbitmq"]["ports"] == ["127.0.0.1:15672:15672"]
    assert services["prometheus"]["ports"] == ["127.0.0.1:9090:9090"]
    for name in ("rabbitmq", "mongodb", "prometheus", "gateway"):
        assert services[name]["healthcheck"]["test"][0] == "CMD"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_each_service_runs_its_module_and_can_scale(compose: dict[str, Any], name: str) -> None:
    service = compose["services"][name]
    assert service["command"] == ["python", "-m", name]
    assert importlib.util.find_spec(f"{name}.__main__") is not None
    assert service["build"] == "."
    assert "container_name" not in service
    assert service["restart"] == "unless-stopped"
    # No shared media volume: media lives in GridFS, each container has a private scratch.
    assert service["volumes"] == ["/data/scratch"]
    assert service["environment"]["STT_MEDIA_STORE"] == "gridfs"
    assert service["environment"]["STT_MEDIA_DIR"] == "/data/scratch"
    assert {dep: cond["condition"] for dep, cond in service["depends_on"].items()} == {
        "rabbitmq": "service_healthy",
        "mongodb": "service_healthy",
    }
    # No published ports, so that --scale starts replicas without a clash: the gateways are
    # reached through the proxy.
    assert "ports" not in service


def test_a_proxy_in_front_spreads_requests_over_every_gateway(compose: dict[str, Any]) -> None:
    proxy = compose["services"]["proxy"]
    assert proxy["image"].startswith("haproxy:")
    assert proxy["ports"] == ["8000:8000"]
    assert proxy["depends_on"] == {"gateway": {"condition": "service_healthy"}}
    mounted, inside, _ = proxy["volumes"][0].split(":")
    assert inside == "/usr/local/etc/haproxy/haproxy.cfg"
    config = (ROOT / mounted).read_text()
    # Every replica, found by the service's name through Docker's DNS and checked on /readyz.
    assert "server-template gateway" in config
    assert "gateway:8000" in config
    assert "resolvers docker" in config
    assert "option httpchk GET /readyz" in config
    # A stopping gateway's refused connection goes to another.
    assert "option redispatch" in config
    gateway = compose["services"]["gateway"]["environment"]
    assert (gateway["STT_HOST"], gateway["STT_PORT"]) == ("0.0.0.0", "8000")


@pytest.mark.skipif(shutil.which("haproxy", path="/usr/sbin:/usr/bin") is None, reason="no haproxy")
def test_the_proxy_configuration_is_valid_for_haproxy() -> None:
    haproxy = shutil.which("haproxy", path="/usr/sbin:/usr/bin")
    assert haproxy is not None
    checked = subprocess.run(
        [haproxy, "-c", "-f", str(ROOT / "deploy" / "haproxy.cfg")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


# What compose itself must decide for the services to find each other inside it.
FIXED_BY_COMPOSE = {
    "STT_BROKER_URL", "STT_MONGODB_URL", "STT_MEDIA_STORE", "STT_MEDIA_DIR", "STT_MODELS_DIR",
    "STT_METRICS_PORT", "STT_LOG_FORMAT", "STT_HOST", "STT_PORT",
}  # fmt: skip


@pytest.mark.parametrize("name", APP_SERVICES)
def test_every_setting_reaches_each_service_from_an_env_file(
    compose: dict[str, Any], name: str
) -> None:
    service = compose["services"][name]
    assert service["env_file"] == [{"path": ".env", "required": False}]
    # Anything else written here would silently override the operator's .env: only values taken
    # from it (${STT_X:-default}) may be.
    for setting, value in service["environment"].items():
        assert setting in FIXED_BY_COMPOSE or str(value).startswith(f"${{{setting}:-"), setting


def test_volumes_are_named(compose: dict[str, Any]) -> None:
    assert set(compose["volumes"]) == {"rabbitmq", "mongodb", "prometheus"}


def test_dockerfile_runs_as_non_root_with_an_exec_form_command() -> None:
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    assert any(line.startswith("USER ") and "root" not in line for line in lines)
    command = [line for line in lines if line.startswith("CMD ")]
    assert command == ['CMD ["python", "-m", "gateway"]']
    assert any("ffmpeg" in line for line in lines)


def test_dockerfile_installs_a_cpu_only_torch_before_the_project() -> None:
    text = (ROOT / "Dockerfile").read_text()
    cpu_torch = text.index("torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu")
    assert cpu_torch < text.index("pip install .")
    assert "python -m recognizer.speaker_model" in text


def test_prometheus_scrapes_the_gateway_and_every_worker(compose: dict[str, Any]) -> None:
    mounted = compose["services"]["prometheus"]["volumes"][0].split(":")[0]
    config = yaml.safe_load((ROOT / mounted).read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    port = compose["x-app-env"]["STT_METRICS_PORT"]
    [gateways] = jobs["gateway"]["dns_sd_configs"]
    assert (gateways["names"], str(gateways["port"])) == (["gateway"], "8000")
    [workers] = jobs["workers"]["dns_sd_configs"]
    assert set(workers["names"]) == set(APP_SERVICES) - {"gateway"}
    assert str(workers["port"]) == port
