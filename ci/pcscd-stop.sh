#!/usr/bin/env bash
# Stop the pcscd that ci/pcscd-start.sh (`myna-hil ci pcscd start`) started, and nothing else.
# Without the pid marker (pcscd was already running, or was never started by us) this does
# nothing. Idempotent. A thin wrapper around `myna-hil ci pcscd stop`.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"
exec python3 -m harness.cikit stop "$@"
