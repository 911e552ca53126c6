#!/usr/bin/env bash
# Runs the benchmark suite (docs/benchmarks.md): the micro-benchmarks of the
# hot paths, then mqim-bench against Mosquitto, bare mochi and mqim, and
# rewrites the results section of docs/benchmarks.md. Extra arguments go to
# `mqim-bench suite` (e.g. -rounds 3, -profile bin/profiles).
set -euo pipefail
cd "$(dirname "$0")/.."

# 10,000 idle connections need as many sockets in the load generator and in
# the broker (mqim-bench also raises its soft limit to the hard one).
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

if ! command -v mosquitto >/dev/null 2>&1 && [ ! -x /usr/sbin/mosquitto ]; then
	echo "bench: installing mosquitto (Debian package)"
	sudo=""
	[ "$(id -u)" -ne 0 ] && sudo=sudo
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq mosquitto
	# The package may start a system instance on :1883; the bench runs its own.
	$sudo systemctl stop mosquitto >/dev/null 2>&1 || true
fi

GO=${GO:-go}
mkdir -p bin
CGO_ENABLED=0 $GO build -trimpath -ldflags "-X main.version=$(git describe --tags --always --dirty 2>/dev/null || echo dev)" -o bin/mqim ./cmd/mqim
CGO_ENABLED=0 $GO build -o bin/baremochi ./cmd/mqim-bench/internal/baremochi
CGO_ENABLED=0 $GO build -o bin/mqim-bench ./cmd/mqim-bench

micro=bin/bench-micro.txt
echo "bench: micro-benchmarks"
{
	$GO test -run '^$' -bench 'VerifySign|ParseSay|ServiceSay' -benchmem -benchtime 1s ./chat/
	$GO test -run '^$' -bench 'InboxAllowed' -benchmem -benchtime 1s ./broker/
	$GO test -run '^$' -bench 'ACL|SayHook' -benchmem -benchtime 1s ./hooks/
	$GO test -run '^$' -bench 'AppendRecord/sync=false/mode=batched|HistoryP99' -benchmem -benchtime 2s ./storage/
} 2>&1 | grep -E '^(Benchmark|goos|goarch|cpu|pkg|ok|FAIL|---)' | tee "$micro"

echo "bench: load suite"
bin/mqim-bench suite -out docs/benchmarks.md -micro "$micro" -json bin/bench-results.json "$@"
