#!/usr/bin/env bash
# CI's broker: RabbitMQ on 127.0.0.1:5672, answering the AMQP greeting, with room for the
# connections the suite opens.
#
# RabbitMQ takes a file handle for every connection and stops answering new ones once its
# handles are used up: with Debian's default of 1024 open files it allows 832 sockets, and the
# suite's many short-lived stacks reached that twice on this machine (new connections then hang
# unanswered and pile up in CLOSE-WAIT). The node is therefore started with 20000 open files,
# set where its own start script reads its environment. A node that is not running, runs with
# fewer, or does not answer is started afresh; one that does not answer loses its state (it holds
# nothing but what earlier test runs left).
set -euo pipefail
export PATH="$PATH:/usr/sbin"
OPEN_FILES=20000
ENV_FILE=/etc/rabbitmq/rabbitmq-env.conf
PID_FILE=/var/lib/rabbitmq/mnesia/rabbit@localhost.pid

answers() {
    python3 - <<'PY'
import socket, sys
try:
    with socket.create_connection(("127.0.0.1", 5672), timeout=10) as connection:
        connection.sendall(b"AMQP\x00\x00\x09\x01")
        sys.exit(0 if connection.recv(1) == b"\x01" else 1)  # a method frame: connection.start
except OSError:
    sys.exit(1)
PY
}

open_files() {
    local pid
    pid=$(cat "$PID_FILE" 2>/dev/null) || return 0
    awk '/Max open files/ {print $4}' "/proc/$pid/limits" 2>/dev/null || true
}

stop_node() {
    timeout 30 rabbitmqctl stop >/dev/null 2>&1 || true
    local pid
    pid=$(cat "$PID_FILE" 2>/dev/null) || return 0
    kill -9 "$pid" 2>/dev/null || true
}

grep -q "^ulimit -S -n $OPEN_FILES" "$ENV_FILE" 2>/dev/null \
    || echo "ulimit -S -n $OPEN_FILES" >>"$ENV_FILE"

if answers && [ "$(open_files)" = "$OPEN_FILES" ]; then
    exit 0
fi
if answers; then
    echo "ensure_broker: restarting RabbitMQ with $OPEN_FILES open files" >&2
    stop_node
else
    echo "ensure_broker: RabbitMQ does not answer on 127.0.0.1:5672; starting it afresh" >&2
    stop_node
    rm -rf /var/lib/rabbitmq/mnesia
fi
rabbitmq-server -detached
for _ in $(seq 60); do  # await_startup gives up at once while the node is not yet known
    sleep 2
    answers && exit 0
done
echo "ensure_broker: RabbitMQ did not start within 2 minutes" >&2
exit 1
