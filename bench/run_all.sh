#!/usr/bin/env bash
# Run the whole benchmark suite (~5 min), or each script's quick mode (--quick).
# Raw JSON results go to $BENCH_OUT (default /tmp/openrealtime-bench).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
[ -x "$PY" ] || PY=python3
OUT=${BENCH_OUT:-/tmp/openrealtime-bench}
mkdir -p "$OUT"
VARIANTS=${BENCH_VARIANTS:-openrealtime,peer-fastapi,echo-uvicorn,echo-picows}
start=$(date +%s)

run() {
    echo
    echo "=== $* ==="
    "$PY" "$@" --variants "$VARIANTS"
}

if [ "${1:-}" = "--quick" ]; then
    run bench/bench_server.py --quick --json-out "$OUT/server-quick.json"
    run bench/bench_latency.py --quick --json-out "$OUT/latency-quick.json"
    run bench/bench_memory.py --quick --json-out "$OUT/memory-quick.json"
    run bench/bench_scale.py --quick --json-out "$OUT/scale-quick.json"
else
    run bench/bench_server.py --rounds 3 --duration 4 --warmup 1 \
        --connections 50 --json-out "$OUT/server.json"
    run bench/bench_latency.py --json-out "$OUT/latency.json"
    run bench/bench_memory.py --json-out "$OUT/memory.json"
    run bench/bench_scale.py --duration 2 --warmup 1 --hold 10 \
        --json-out "$OUT/scale.json"
fi
echo
echo "=== bench/bench_webrtc.py ==="
if [ "${1:-}" = "--quick" ]; then
    "$PY" bench/bench_webrtc.py --quick --json-out "$OUT/webrtc-quick.json"
else
    "$PY" bench/bench_webrtc.py --levels 0,1,4,8,16 --duration 8 \
        --json-out "$OUT/webrtc.json"
fi
echo
echo "suite done in $(( $(date +%s) - start ))s; JSON in $OUT"
