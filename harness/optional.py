"""pyscard, the optional dependency (the ``[pcsc]`` extra): how its absence is reported.

``pip install myna-hil`` installs no pyscard (it has no Linux wheels: building it needs a C
compiler, SWIG and the pcsc-lite headers). The in-process card, the pytest plugin,
``myna-emu`` and ``myna-hil run --all`` never import it; every part that talks to PC/SC --
``--reader``, ``run --slot``, ``soak``, ``--myna-reader``, the ``myna_vpcd_reader`` and
``myna_pyscard_reader`` fixtures -- asks for it here and, when it is missing, says so in one
line: ``--reader needs pyscard: pip install 'myna-hil[pcsc]'``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["PYSCARD_MISSING", "PyscardMissingError", "require_pyscard"]

#: The end of the one line every PC/SC entry point gives when pyscard is not installed.
PYSCARD_MISSING = "needs pyscard: pip install 'myna-hil[pcsc]'"


class PyscardMissingError(ImportError):
    """pyscard (``smartcard``) is not installed; ``str()`` is the one line to show."""


def require_pyscard(what: str) -> ModuleType:
    """pyscard's ``smartcard.scard`` module, or :class:`PyscardMissingError` saying that
    *what* (``"--reader"``, ``"myna_pyscard_reader"``) needs pyscard and how to get it."""
    try:
        return importlib.import_module("smartcard.scard")
    except ImportError:
        raise PyscardMissingError(f"{what} {PYSCARD_MISSING}") from None
