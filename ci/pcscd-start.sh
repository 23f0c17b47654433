#!/usr/bin/env bash
# Start pcscd with the vpcd readers unless one is already running, and wait until they are
# listed: a thin wrapper around `myna-hil ci pcscd start` (harness/cikit/pcscd.py, standard
# library only, so the system Python runs it before any virtualenv exists).
#
# A running pcscd is reused and never touched; only a pcscd started here is recorded in
# $MYNA_PCSCD_MARKER, so ci/pcscd-stop.sh stops nothing else. Extra arguments go to the
# command (--readers N, --timeout S, --debug).
#
# Environment:
#   MYNA_VPCD_EXTRA     extra vpcd reader.conf entries, two slots each (default 0)
#   MYNA_PCSCD_TIMEOUT  seconds to wait for the readers (default 20)
#   MYNA_PCSCD_DEBUG=1  start pcscd with -d -a (debug + APDU log)
#   MYNA_PCSCD_LOG      pcscd's output (default /tmp/myna-pcscd.log)
#   MYNA_PCSCD_MARKER   pid marker (default /run/myna-hil/pcscd.pid)
#   MYNA_VPCD_DRIVER    the vpcd driver (default /usr/lib/pcsc/drivers/serial/libifdvpcd.so)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"
exec python3 -m harness.cikit start "$@"
