#!/usr/bin/env bash
# Start pcscd (foreground mode, in the background) unless one is already running, and wait
# until the vpcd readers are listed.
#
# A pcscd that is already running is reused and never touched; only a pcscd this script
# started is recorded in $MYNA_PCSCD_MARKER, so ci/pcscd-stop.sh stops nothing else.
# Not --auto-exit: an idle pcscd would exit after 60 s and close the vpcd ports.
#
# More virtual readers: every reader.conf entry with another CHANNELID gives two more slots
# (ports CHANNELID and CHANNELID+1), and pcscd reads every file in /etc/reader.conf.d (backups
# too) at start. With MYNA_VPCD_EXTRA=N this script writes N such entries
# (/etc/reader.conf.d/vpcd-myna-K, CHANNELID 0x8C7B + 2K, i.e. slots 2K and 2K+1 as seen by
# `myna-emu serve --slot`) before starting pcscd; a pcscd already running must be restarted
# (ci/pcscd-stop.sh only stops one it started) to see them.
#
# Each extra entry needs its OWN COPY of the driver (libifdvpcd-myna-K.so). vpcd keeps its
# sockets in a static array indexed by the slot within a reader (Lun & 0xFFFF), and pcscd
# (by LIBPATH) and dlopen (by inode: a symlink or hard link is the same library) load one
# instance for entries that share a file. Entries sharing libifdvpcd.so overwrite each other's
# sockets: every reader then polls only the LAST entry's two ports (35967/35968 with
# MYNA_VPCD_EXTRA=2), cards on the other ports are never accepted, and one card shows up in
# every "... 00 00" reader at once.
#
# Environment:
#   MYNA_VPCD_EXTRA     extra vpcd reader.conf entries to write (default 0)
#   MYNA_PCSCD_TIMEOUT  seconds to wait for the readers (default 20)
#   MYNA_PCSCD_DEBUG=1  start pcscd with -d -a (debug + APDU log)
#   MYNA_PCSCD_LOG      pcscd's output (default /tmp/myna-pcscd.log)
#   MYNA_PCSCD_MARKER   pid marker (default /run/myna-hil/pcscd.pid)
set -euo pipefail

extra=${MYNA_VPCD_EXTRA:-0}
timeout=${MYNA_PCSCD_TIMEOUT:-20}
log=${MYNA_PCSCD_LOG:-/tmp/myna-pcscd.log}
marker=${MYNA_PCSCD_MARKER:-/run/myna-hil/pcscd.pid}
vpcd_lib=/usr/lib/pcsc/drivers/serial/libifdvpcd.so

if ! command -v pcscd >/dev/null; then
    echo "pcscd-start: pcscd is not installed (run ci/install-system.sh)" >&2
    exit 1
fi
if [[ ! -e $vpcd_lib ]]; then
    echo "pcscd-start: $vpcd_lib missing (package vsmartcard-vpcd; run ci/install-system.sh)" >&2
    exit 1
fi

changed=0
for ((k = 1; k <= extra; k++)); do
    conf=/etc/reader.conf.d/vpcd-myna-$k
    channel=$(printf '0x%X' $((0x8C7B + 2 * k)))
    lib=${vpcd_lib%.so}-myna-$k.so
    if ! cmp -s "$vpcd_lib" "$lib"; then
        # Copy, then rename: a running pcscd may have the old file mapped.
        cp "$vpcd_lib" "$lib.tmp.$$"
        mv -f "$lib.tmp.$$" "$lib"
        echo "pcscd-start: copied the vpcd driver to $lib"
        changed=1
    fi
    entry=$(printf 'FRIENDLYNAME "Virtual PCD %d"\nDEVICENAME   /dev/null:%s\nLIBPATH      %s\nCHANNELID    %s' \
        "$k" "$channel" "$lib" "$channel")
    if [[ ! -e $conf || "$(cat "$conf")" != "$entry" ]]; then
        printf '%s\n' "$entry" >"$conf"
        echo "pcscd-start: wrote $conf (CHANNELID $channel, $lib)"
        changed=1
    fi
done
expected=$((2 * (1 + extra)))

# The readers pcscd lists right now (empty when pcscd does not answer).
list_readers() {
    timeout 5 pcsc_scan -r 2>/dev/null | grep -E '^[0-9]+: ' || true
}

if pgrep -x pcscd >/dev/null; then
    echo "pcscd-start: pcscd already running (pid $(pgrep -x pcscd | tr '\n' ' ')), reusing it"
    if ((changed)); then
        echo "pcscd-start: WARNING: reader.conf entries changed; the running pcscd uses the old" \
            "ones until it is restarted" >&2
    fi
else
    # A pid file left by a pcscd that died can keep a new one from starting; remove it only
    # because we know no pcscd runs.
    rm -f /run/pcscd/pcscd.pid /run/pcscd/pcscd.pub
    mkdir -p /run/pcscd "$(dirname "$marker")"
    flags=(-f)
    if [[ ${MYNA_PCSCD_DEBUG:-0} == 1 ]]; then
        flags+=(-d -a)
    fi
    nohup pcscd "${flags[@]}" >"$log" 2>&1 </dev/null &
    echo $! >"$marker"
    echo "pcscd-start: started pcscd (pid $!, log $log)"
fi

deadline=$((SECONDS + timeout))
while :; do
    count=$(list_readers | grep -c 'Virtual PCD' || true)
    if ((count >= expected)); then
        break
    fi
    if [[ -e $marker ]] && ! kill -0 "$(cat "$marker")" 2>/dev/null; then
        echo "pcscd-start: pcscd exited; its log ($log):" >&2
        cat "$log" >&2 || true
        rm -f "$marker"
        exit 1
    fi
    if ((SECONDS >= deadline)); then
        echo "pcscd-start: after ${timeout}s pcscd lists $count of $expected Virtual PCD readers:" >&2
        list_readers >&2
        exit 1
    fi
    sleep 0.2
done
echo "pcscd-start: readers ready:"
list_readers | grep 'Virtual PCD'
