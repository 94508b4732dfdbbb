#!/usr/bin/env bash
# The one test command (README, .ci/run): installs what it needs, then runs
# every check. A fresh machine needs only Python 3.11, pip and gcc; Debian
# packages (espeak-ng, redis-server, chromium ...) are installed when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -f scripts/apt-packages.txt ]; then
    missing=()
    while read -r pkg; do
        [ -z "$pkg" ] || [ "${pkg#\#}" != "$pkg" ] && continue
        dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
    done < scripts/apt-packages.txt
    if [ ${#missing[@]} -gt 0 ]; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            echo "installing Debian packages: ${missing[*]}"
            apt-get update -qq
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
        else
            echo "warning: missing Debian packages (tests needing them will skip): ${missing[*]}"
        fi
    fi
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip 2>/dev/null || true
.venv/bin/python -m pip install -q -e ".[test,webrtc,whisper,piper]"
# The Node clients, as locked: the compatibility suite's (tests/compat/node)
# and the stock @openai/agents-realtime of the browser WebRTC test
# (tests/webrtc/js). npm comes with nodejs where nodejs is NodeSource's build
# (this machine kind's); Debian's own nodejs needs Debian's npm, which
# conflicts with it.
if ! command -v npm >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi
for dir in tests/compat/node tests/webrtc/js; do
    if [ ! -f $dir/node_modules/.package-lock.json ] || \
       [ $dir/package-lock.json -nt $dir/node_modules/.package-lock.json ]; then
        (cd $dir && npm ci --no-audit --no-fund --loglevel=error)
    fi
done

echo "== ruff"
.venv/bin/ruff format --check src tests bench examples
.venv/bin/ruff check src tests bench examples
echo "== mypy --strict"
.venv/bin/mypy
echo "== pytest"
log=$(mktemp)
.venv/bin/python -m pytest --cov=openrealtime --cov-report=term "$@" | tee "$log"
echo "== coverage gate: the sans-I/O core at 100 % branch coverage"
.venv/bin/python -m coverage report --fail-under=100 --show-missing \
    --include="src/openrealtime/models/*,src/openrealtime/codec.py,src/openrealtime/config.py,src/openrealtime/session.py,src/openrealtime/state.py,src/openrealtime/turns.py,src/openrealtime/ids.py,src/openrealtime/counts.py,src/openrealtime/errors.py,src/openrealtime/exceptions.py,src/openrealtime/audio.py"
# pytest's summary again, last, so that it is the closing line of the run.
grep -E "^=* ?[0-9]+ (passed|failed)" "$log" | tail -n 1
rm -f "$log"
