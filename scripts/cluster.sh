#!/usr/bin/env bash
# scripts/cluster.sh (make cluster): a three-node mqim cluster on one
# machine, without containers (docs/scaleout.md, "Running a cluster").
#
#   - PostgreSQL: the local server of Debian's postgresql package, started
#     with `pg_ctlcluster 15 main start` when it does not answer; database
#     mqim_cluster created when missing. It logs in as role postgres with
#     password "postgres" on 127.0.0.1:5432 (what .ci/run sets up); set
#     MQIM_CLUSTER_POSTGRES_URL to use another server or role.
#   - NATS: bin/nats-server, built from the nats-server module in go.mod,
#     on 127.0.0.1:${NATS_PORT:-4222}.
#   - three nodes of bin/mqim sharing one data dir (./data-cluster:
#     credentials.json, attachments); node N listens on REST 809N, MQTT
#     189N, MQTT over WebSocket 819N (N = 1, 2, 3), on ${HOST:-127.0.0.1}.
#
# Logs go to data-cluster/*.log. Ctrl-C stops the nodes and NATS
# (PostgreSQL is left running).
set -euo pipefail
cd "$(dirname "$0")/.."

HOST=${HOST:-127.0.0.1}
DATA=${DATA:-./data-cluster}
NATS_PORT=${NATS_PORT:-4222}
ADMIN_URL=${MQIM_CLUSTER_POSTGRES_ADMIN_URL:-postgres://postgres:postgres@127.0.0.1:5432/postgres?sslmode=disable}
PG_URL=${MQIM_CLUSTER_POSTGRES_URL:-postgres://postgres:postgres@127.0.0.1:5432/mqim_cluster?sslmode=disable}
BIN=bin/mqim

say() { echo "cluster: $*" >&2; }

# port_open HOST PORT: whether something accepts TCP connections there.
port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# wait_port HOST PORT WHAT PID LOG: wait until the port answers while PID runs.
wait_port() {
	for _ in $(seq 1 300); do
		port_open "$1" "$2" && return 0
		if ! kill -0 "$4" 2>/dev/null; then
			say "$3 exited; the end of $5:"; tail -n 20 "$5" >&2; exit 1
		fi
		sleep 0.1
	done
	say "$3 not listening on $1:$2 after 30s (see $5)"; exit 1
}

[ -x "$BIN" ] || go build -o "$BIN" ./cmd/mqim
[ -x bin/nats-server ] || { say "building bin/nats-server"; go build -o bin/nats-server github.com/nats-io/nats-server/v2; }
mkdir -p "$DATA"

# PostgreSQL
if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
	say "starting PostgreSQL (pg_ctlcluster 15 main start)"
	if [ "$(id -u)" = 0 ]; then pg_ctlcluster 15 main start; else sudo pg_ctlcluster 15 main start; fi
	for _ in $(seq 1 100); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.1; done
fi
if [ -z "${MQIM_CLUSTER_POSTGRES_URL:-}" ]; then
	if [ "$(psql "$ADMIN_URL" -tAc "SELECT 1 FROM pg_database WHERE datname = 'mqim_cluster'")" != 1 ]; then
		say "creating database mqim_cluster"
		psql "$ADMIN_URL" -qc "CREATE DATABASE mqim_cluster"
	fi
fi

pids=()
nats=
stop() {
	trap - INT TERM EXIT
	say "stopping"
	# The nodes first (they leave the cluster over NATS), then NATS.
	for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
	if [ -n "$nats" ]; then kill -TERM "$nats" 2>/dev/null || true; wait "$nats" 2>/dev/null || true; fi
	exit 0
}
trap stop INT TERM EXIT

bin/nats-server -a 127.0.0.1 -p "$NATS_PORT" >"$DATA/nats.log" 2>&1 &
nats=$!
wait_port 127.0.0.1 "$NATS_PORT" "nats-server" "$nats" "$DATA/nats.log"

start_node() {
	local n=$1
	MQIM_DATA_DIR="$DATA" MQIM_STORAGE_DRIVER=postgres MQIM_POSTGRES_URL="$PG_URL" \
		MQIM_NATS_URL="nats://127.0.0.1:$NATS_PORT" MQIM_NODE_ID="node$n" \
		MQIM_HTTP_ADDR="$HOST:809$n" MQIM_MQTT_ADDR="$HOST:189$n" MQIM_WS_ADDR="$HOST:819$n" \
		"$BIN" >"$DATA/node$n.out" 2>"$DATA/node$n.log" &
	pids+=("$!")
	wait_port "$HOST" "809$n" "node$n" "$!" "$DATA/node$n.log"
}
# The first node writes credentials.json, which the others then read.
start_node 1
start_node 2
start_node 3

say "three nodes up, data in $DATA, logs in $DATA/node{1,2,3}.log and $DATA/nats.log:"
for n in 1 2 3; do
	say "  node$n: REST http://$HOST:809$n  MQTT $HOST:189$n  MQTT over WebSocket ws://$HOST:819$n/mqtt"
done
say "  NATS nats://127.0.0.1:$NATS_PORT, PostgreSQL $(printf %s "${PG_URL%%\?*}" | sed "s|//[^@]*@|//|")"
say "app credentials: $DATA/credentials.json. Ctrl-C stops the cluster."
wait -n "$nats" "${pids[@]}" || true
say "a process ended; see the logs"
stop
