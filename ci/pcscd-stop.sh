#!/usr/bin/env bash
# Stop the pcscd that ci/pcscd-start.sh started, and nothing else.
#
# Without the pid marker (pcscd was already running, or was never started by us) this does
# nothing. Idempotent.
set -euo pipefail

marker=${MYNA_PCSCD_MARKER:-/run/myna-hil/pcscd.pid}

if [[ ! -e $marker ]]; then
    echo "pcscd-stop: no pcscd started by pcscd-start.sh; nothing to stop"
    exit 0
fi
pid=$(cat "$marker")
# Check the pid is still a pcscd: the number may have been reused since.
if [[ "$(cat "/proc/$pid/comm" 2>/dev/null || true)" != pcscd ]]; then
    echo "pcscd-stop: pid $pid is no longer pcscd; removing the stale marker"
    rm -f "$marker"
    exit 0
fi
kill -TERM "$pid"
for _ in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
done
if kill -0 "$pid" 2>/dev/null; then
    echo "pcscd-stop: pcscd $pid ignored SIGTERM for 5 s; sending SIGKILL" >&2
    kill -KILL "$pid" || true
fi
rm -f "$marker"
echo "pcscd-stop: stopped pcscd $pid"
