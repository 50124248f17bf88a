import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scripts.proxy import haproxy_config
from scripts.stack import Stack

# A service slow to stop: it ignores SIGTERM, so the stack waits for it.
STUBBORN = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
    " print('ignoring SIGTERM', flush=True); time.sleep(120)"
)


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def test_a_second_interrupt_while_stopping_kills_every_service(tmp_path: Path) -> None:
    stack = Stack({}, log_dir=tmp_path)
    names = ("gateway", "transcoder", "recognizer")
    services = [stack._spawn(name, [sys.executable, "-c", STUBBORN]) for name in names]
    deadline = time.monotonic() + 30
    while not all("ignoring" in (tmp_path / f"{name}.log").read_text() for name in names):
        assert time.monotonic() < deadline, "the services did not start"
        time.sleep(0.05)
    previous = signal.signal(signal.SIGALRM, _interrupt)
    signal.setitimer(signal.ITIMER_REAL, 1.0)  # the second Ctrl-C, while the stack waits
    try:
        with pytest.raises(KeyboardInterrupt):
            stack.stop(timeout=30)
        left = [service.args for service in services if service.poll() is None]
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        for service in services:
            if service.poll() is None:
                service.kill()
                service.wait()
    assert left == []
    assert stack.processes == []


@pytest.mark.skipif(shutil.which("haproxy", path="/usr/sbin:/usr/bin") is None, reason="no haproxy")
def test_the_proxy_in_front_of_several_gateways_has_a_valid_configuration(tmp_path: Path) -> None:
    config = tmp_path / "haproxy.cfg"
    config.write_text(haproxy_config(8000, [40001, 40002, 40003]))
    checked = subprocess.run(
        ["haproxy", "-c", "-f", str(config)],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/sbin:/usr/bin"},
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert config.read_text().count("check inter") == 3
