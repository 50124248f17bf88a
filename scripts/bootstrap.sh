#!/usr/bin/env bash
# Installs what the project needs on a Debian machine: system tools, RabbitMQ running, a virtualenv.
#   scripts/bootstrap.sh            for running the system
#   scripts/bootstrap.sh --dev      also the test tools (espeak-ng, Chromium, pytest, ruff, mypy)
set -euo pipefail
cd "$(dirname "$0")/.."

dev=0
[ "${1:-}" = "--dev" ] && dev=1

packages=()
command -v ffmpeg >/dev/null || packages+=(ffmpeg)
[ $dev = 1 ] && ! command -v espeak-ng >/dev/null && packages+=(espeak-ng)
# The browser tests drive Debian's Chromium (Playwright's own download needs the internet).
[ $dev = 1 ] && ! command -v chromium >/dev/null && packages+=(chromium)
# Two LibriVox readers for the speaker-label tests and benchmark (tests/voices.py).
[ $dev = 1 ] && [ ! -d /usr/share/pocketsphinx/test/data/librivox ] && packages+=(pocketsphinx-testdata)
# The multi-gateway tests put two gateways behind Debian's HAProxy.
[ $dev = 1 ] && ! command -v haproxy >/dev/null && [ ! -x /usr/sbin/haproxy ] && packages+=(haproxy)
command -v rabbitmq-server >/dev/null || [ -x /usr/sbin/rabbitmq-server ] || packages+=(rabbitmq-server)
if [ ${#packages[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
        echo "bootstrap: installing ${packages[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null
    else
        echo "bootstrap: missing ${packages[*]}; install with: sudo apt-get install -y ${packages[*]}" >&2
        exit 1
    fi
fi

rabbit_answers() { (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; }
if [ -z "${STT_BROKER_URL:-}" ] && ! rabbit_answers; then
    if [ "$(id -u)" = 0 ]; then
        echo "bootstrap: starting RabbitMQ"
        PATH="$PATH:/usr/sbin" rabbitmq-server -detached
        for _ in $(seq 60); do rabbit_answers && break; sleep 1; done
        PATH="$PATH:/usr/sbin" rabbitmqctl await_startup --timeout 60 >/dev/null
    else
        echo "bootstrap: RabbitMQ is not running; start it with: sudo rabbitmq-server -detached" >&2
        exit 1
    fi
fi

# The management UI shows each service's queue and the parked messages; enabling it is idempotent.
if [ $dev = 0 ] && [ -z "${STT_BROKER_URL:-}" ] && [ "$(id -u)" = 0 ] && ! (exec 3<>/dev/tcp/127.0.0.1/15672) 2>/dev/null; then
    PATH="$PATH:/usr/sbin" rabbitmq-plugins enable --quiet rabbitmq_management >/dev/null 2>&1 \
        || echo "bootstrap: could not enable RabbitMQ's management plugin; carrying on without it" >&2
fi

extras=embedded
[ $dev = 1 ] && extras=dev
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
    .venv/bin/pip install -q --upgrade pip
fi
# torch (used once, to convert the speaker model) from PyTorch's CPU index: from PyPI the same
# version is a CUDA build of several GB. Where that index does not answer within 10 s, pip's
# usual sources (asked of an unreachable host, pip would back off for minutes).
torch_cpu=https://download.pytorch.org/whl/cpu
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
    if .venv/bin/python -c "import urllib.request as u; u.urlopen('$torch_cpu/torch/', timeout=10)" \
        2>/dev/null; then
        .venv/bin/pip install -q torch==2.13.0 --index-url "$torch_cpu"
    else
        .venv/bin/pip install -q torch==2.13.0
    fi
fi
.venv/bin/pip install -q -e ".[$extras]"
.venv/bin/python -m recognizer.speaker_model >/dev/null
echo "bootstrap: ready (.venv with [$extras])"
