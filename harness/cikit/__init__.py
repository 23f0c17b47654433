"""What a CI job needs around the card: pcscd with vpcd readers (:mod:`harness.cikit.pcscd`).

Standard library only, so ``ci/pcscd-start.sh`` can run it with the system Python before any
virtualenv exists.
"""

from __future__ import annotations
