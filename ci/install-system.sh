#!/usr/bin/env bash
# Install the system packages the PC/SC path needs, only when one is missing.
#
# pcscd + vsmartcard-vpcd give the virtual reader ("Virtual PCD 00 00/01"), libpcsclite-dev +
# swig let pip build pyscard when no wheel fits (libpcsclite-dev also ships pcsc-spy and
# libpcscspy.so, which the trace-import tests put in front of a PC/SC app), pcsc-tools and opensc are the real clients
# the end-to-end tests drive, opensc-pkcs11 the PKCS#11 module pkcs11-tool loads (named
# here, not only pulled in by opensc), chromium + chromium-driver the headless browser the
# control-panel tests drive with selenium (no browser download), openssl the command-line
# tools that read the TEST revocation service's OCSP answers and CRLs. Idempotent: a second run
# does nothing and needs no network.
# CI runs as root; elsewhere run it with sudo.
set -euo pipefail

PACKAGES=(pcscd vsmartcard-vpcd libpcsclite-dev swig pcsc-tools opensc opensc-pkcs11
          chromium chromium-driver openssl)

missing=()
for pkg in "${PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    if [[ "$status" != "install ok installed" ]]; then
        missing+=("$pkg")
    fi
done

if ((${#missing[@]} == 0)); then
    echo "install-system: all packages present (${PACKAGES[*]})"
    exit 0
fi

if ((EUID != 0)); then
    echo "install-system: missing ${missing[*]}; run as root (or with sudo)" >&2
    exit 1
fi

echo "install-system: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
