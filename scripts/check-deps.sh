#!/usr/bin/env bash
# Enforces the dependency direction (docs/architecture.md): the domain
# package imports only the standard library, and each third-party engine is
# imported only by its adapter.
set -euo pipefail
cd "$(dirname "$0")/.."
mod=$(go list -m)
fail=0
while read -r pkg imports; do
	rel=${pkg#"$mod"}
	rel=${rel#/}
	for imp in $imports; do
		case "$imp" in
		github.com/gofiber/*|github.com/valyala/*)
			[[ $rel == rest* ]] || { echo "$rel imports $imp (only rest/ may)"; fail=1; } ;;
		github.com/dgraph-io/*)
			[[ $rel == storage* ]] || { echo "$rel imports $imp (only storage/ may)"; fail=1; } ;;
		github.com/mochi-mqtt/*)
			[[ $rel == broker* || $rel == hooks* || $rel == conformance* || $rel == cmd/mqim-bench* || $rel == internal/mqttcheck* ]] || { echo "$rel imports $imp (only broker/, hooks/ and internal/mqttcheck may)"; fail=1; } ;;
		"$mod"/cmd/*)
			echo "$rel imports $imp (nothing imports cmd)"; fail=1 ;;
		esac
		if [[ $rel == chat ]] && [[ $imp == *.*/* ]]; then
			echo "chat imports $imp (the domain imports only the standard library)"; fail=1
		fi
		if [[ $rel == broker* ]] && [[ $imp == "$mod"/hooks* ]]; then
			echo "$rel imports $imp (broker never imports hooks)"; fail=1
		fi
	done
done < <(go list -f '{{.ImportPath}} {{join .Imports " "}}' ./...)
if [ "$fail" -ne 0 ]; then exit 1; fi
echo "dependency rules ok"
