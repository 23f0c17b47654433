#!/usr/bin/env bash
# The README's test command: everything from a fresh Debian machine to a passed suite.
#
# 1. system packages (pcscd, vpcd, pcsc-tools, OpenSC, pyscard build deps) -- needs root;
# 2. tox in a private virtualenv (.venv-tox, not committed);
# 3. pcscd started (or the running one reused) with the vpcd readers listed;
# 4. tox: the whole suite (py) and the linters (lint). Extra arguments go to tox.
set -euo pipefail
cd "$(dirname "$0")/.."

bash ci/install-system.sh
if [[ ! -x .venv-tox/bin/tox ]]; then
    python3 -m venv .venv-tox
    .venv-tox/bin/python -m pip install -q --upgrade pip
    .venv-tox/bin/python -m pip install -q "tox>=4"
fi
# Eight virtual readers (slots 0-7): test modules that pull cards or kill emulators get a slot
# of their own, so a stuck slot (a vpcd 3.3 bug, see ci/pcscd-start.sh) cannot spread.
MYNA_VPCD_EXTRA=${MYNA_VPCD_EXTRA:-3} bash ci/pcscd-start.sh
exec .venv-tox/bin/tox run -e py,lint "$@"
