"""pcscd with N vsmartcard vpcd readers, for a CI job: set up, start, report, stop.

Installs nothing: it checks that pcscd and the vpcd driver are there and names the Debian /
Ubuntu packages when they are not. Idempotent: reader entries are written only when they
differ, a running pcscd (or a systemd socket that starts one on demand) is reused and never
touched, and only a pcscd started here is recorded in the marker file, so :func:`stop` stops
nothing else.

More readers: every ``reader.conf`` entry with another CHANNELID gives two more slots (ports
CHANNELID and CHANNELID+1), and pcscd reads every file in ``/etc/reader.conf.d`` at start.
Entry K (``vpcd-myna-K``, CHANNELID 0x8C7B + 2K) is slots 2K and 2K+1 as ``myna-emu serve
--slot`` counts them. Each entry needs its OWN COPY of the driver: vpcd keeps its sockets in a
static array indexed by the slot within a reader, and pcscd (by LIBPATH) and dlopen (by inode)
load one instance for entries that share a file, so every reader would poll only the last
entry's ports.

Linux only (pcscd and the reader.conf format); on macOS and Windows the vpcd driver is set up
with the system's own smart-card service (see docs/ci.md). Standard library only: the shell
wrappers in ``ci/`` run this with the system Python before any virtualenv exists.

``ctypes``, ``shutil`` and ``subprocess`` are imported by the functions that use them: every
``myna-hil`` command loads this module (for the ``ci`` command's options), few start pcscd.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

__all__ = [
    "APT_PACKAGES",
    "CiError",
    "PcscdConfig",
    "list_readers",
    "reader_entries",
    "running_pcscd",
    "start",
    "status",
    "stop",
    "write_reader_entries",
]

#: What ``apt-get install`` needs for this module to work (pcsc-tools is optional: the readers
#: are listed through libpcsclite when it can be loaded, else with ``pcsc_scan -r``).
APT_PACKAGES = ("pcscd", "vsmartcard-vpcd", "libpcsclite1")
VPCD_DRIVER = Path("/usr/lib/pcsc/drivers/serial/libifdvpcd.so")
#: The CHANNELID of the vpcd package's own entry (slots 0 and 1, ports 35963 and 35964).
BASE_CHANNEL = 0x8C7B
VPCD_PREFIX = "Virtual PCD"

Say = Callable[[str], None]


class CiError(Exception):
    """Setting up pcscd failed: the message is one line and says what to do."""


@dataclass(frozen=True)
class PcscdConfig:
    """Where things are and what is wanted. ``readers``: vpcd slots (two per entry)."""

    readers: int = 2
    timeout: float = 20.0
    debug: bool = False
    log: Path = Path("/tmp/myna-pcscd.log")
    marker: Path = Path("/run/myna-hil/pcscd.pid")
    driver: Path = VPCD_DRIVER
    conf_dir: Path = Path("/etc/reader.conf.d")
    pcscd: str = "pcscd"
    extra_path: tuple[str, ...] = field(default=("/usr/sbin", "/sbin"))

    @property
    def extra_entries(self) -> int:
        """reader.conf entries beyond the vpcd package's own (which gives slots 0 and 1)."""
        return max(0, (self.readers + 1) // 2 - 1)

    @property
    def slots(self) -> int:
        """The vpcd slots there will be: ``readers`` rounded up to a whole entry."""
        return 2 * (1 + self.extra_entries)

    @classmethod
    def from_env(cls, env: Mapping[str, str], **overrides: object) -> PcscdConfig:
        """The settings ``ci/pcscd-start.sh`` always took from the environment
        (``MYNA_VPCD_EXTRA``, ``MYNA_PCSCD_TIMEOUT``, ``MYNA_PCSCD_DEBUG``, ``MYNA_PCSCD_LOG``,
        ``MYNA_PCSCD_MARKER``) and ``MYNA_VPCD_DRIVER``; *overrides* (options) win."""
        cfg = cls()
        try:
            if env.get("MYNA_VPCD_EXTRA"):
                cfg = replace(cfg, readers=2 * (1 + int(env["MYNA_VPCD_EXTRA"])))
            if env.get("MYNA_PCSCD_TIMEOUT"):
                cfg = replace(cfg, timeout=float(env["MYNA_PCSCD_TIMEOUT"]))
        except ValueError as exc:
            raise CiError(f"bad MYNA_VPCD_EXTRA or MYNA_PCSCD_TIMEOUT: {exc}") from None
        if env.get("MYNA_PCSCD_DEBUG") == "1":
            cfg = replace(cfg, debug=True)
        if env.get("MYNA_PCSCD_LOG"):
            cfg = replace(cfg, log=Path(env["MYNA_PCSCD_LOG"]))
        if env.get("MYNA_PCSCD_MARKER"):
            cfg = replace(cfg, marker=Path(env["MYNA_PCSCD_MARKER"]))
        if env.get("MYNA_VPCD_DRIVER"):  # another distribution's path (e.g. lib64)
            cfg = replace(cfg, driver=Path(env["MYNA_VPCD_DRIVER"]))
        cfg = replace(cfg, **{k: v for k, v in overrides.items() if v is not None})  # type: ignore[arg-type]
        if not 1 <= cfg.readers <= 64:
            raise CiError(f"--readers must be 1..64, not {cfg.readers}")
        if cfg.timeout <= 0:
            raise CiError("the timeout must be positive")
        return cfg


def _install_hint(what: str) -> str:
    return f"{what} (Debian/Ubuntu: apt-get install {' '.join(APT_PACKAGES)})"


def pcscd_binary(cfg: PcscdConfig) -> str | None:
    """pcscd's path, also in /usr/sbin when that is not on PATH (a non-root shell)."""
    import shutil

    path = os.pathsep.join([os.environ.get("PATH", ""), *cfg.extra_path])
    return shutil.which(cfg.pcscd, path=path)


def check_installed(cfg: PcscdConfig) -> str:
    """pcscd's path; :class:`CiError` naming the packages when pcscd or vpcd is missing."""
    if not sys.platform.startswith("linux"):
        raise CiError(
            f"'myna-hil ci pcscd' sets up pcsc-lite on Linux; on {sys.platform} install the "
            "vpcd driver for the system's smart-card service (docs/ci.md)"
        )
    binary = pcscd_binary(cfg)
    if binary is None:
        raise CiError(_install_hint("pcscd is not installed"))
    if not cfg.driver.exists():
        raise CiError(_install_hint(f"the vpcd driver {cfg.driver} is missing"))
    return binary


def reader_entries(cfg: PcscdConfig) -> dict[Path, tuple[Path, str]]:
    """conf file -> (its driver copy, its text), for the entries beyond the package's own."""
    stem = cfg.driver.name.removesuffix(".so")
    entries = {}
    for k in range(1, cfg.extra_entries + 1):
        channel = f"0x{BASE_CHANNEL + 2 * k:X}"
        lib = cfg.driver.with_name(f"{stem}-myna-{k}.so")
        text = (
            f'FRIENDLYNAME "{VPCD_PREFIX} {k}"\n'
            f"DEVICENAME   /dev/null:{channel}\n"
            f"LIBPATH      {lib}\n"
            f"CHANNELID    {channel}\n"
        )
        entries[cfg.conf_dir / f"vpcd-myna-{k}"] = (lib, text)
    return entries


def write_reader_entries(cfg: PcscdConfig, say: Say = print) -> bool:
    """Write the missing or different entries and driver copies; whether anything changed."""
    import shutil

    changed = False
    driver = cfg.driver.read_bytes() if cfg.extra_entries else b""
    try:
        for conf, (lib, text) in reader_entries(cfg).items():
            if not lib.exists() or lib.read_bytes() != driver:
                # Copy, then rename: a running pcscd may have the old file mapped.
                tmp = lib.with_name(f"{lib.name}.tmp.{os.getpid()}")
                shutil.copyfile(cfg.driver, tmp)
                os.replace(tmp, lib)
                say(f"copied the vpcd driver to {lib}")
                changed = True
            if not conf.exists() or conf.read_text(encoding="ascii", errors="replace") != text:
                conf.write_text(text, encoding="ascii")
                say(f"wrote {conf} ({lib.name})")
                changed = True
    except PermissionError as exc:
        raise CiError(
            f"cannot write {exc.filename}: permission denied (run as root, e.g. with sudo)"
        ) from None
    return changed


def running_pcscd(proc: Path = Path("/proc")) -> list[int]:
    """The pids of every running pcscd (``/proc/PID/comm``), whoever started them."""
    pids = []
    for entry in proc.iterdir() if proc.is_dir() else ():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() == "pcscd":
                    pids.append(int(entry.name))
    return sorted(pids)


def _socket_activated() -> bool:
    """systemd starts pcscd on the first client (Debian/Ubuntu hosts, GitHub's runners)."""
    import shutil
    import subprocess

    systemctl = shutil.which("systemctl")
    if not Path("/run/systemd/system").is_dir() or systemctl is None:
        return False
    probe = [systemctl, "is-active", "--quiet", "pcscd.socket"]
    return subprocess.run(probe, check=False, timeout=10).returncode == 0


_SCARD_S_SUCCESS = 0
_SCARD_E_NO_READERS_AVAILABLE = 0x8010002E


def _list_with_libpcsclite(name: str) -> list[str] | None:
    """The readers by libpcsclite (no pyscard needed); None when pcscd cannot be reached."""
    import ctypes

    lib = ctypes.CDLL(name)
    lib.SCardEstablishContext.restype = ctypes.c_long
    lib.SCardListReaders.restype = ctypes.c_long
    context = ctypes.c_long(0)  # SCARDCONTEXT is a C long in pcsc-lite
    rv = lib.SCardEstablishContext(ctypes.c_ulong(2), None, None, ctypes.byref(context))
    if rv & 0xFFFFFFFF != _SCARD_S_SUCCESS:
        return None
    try:
        size = ctypes.c_ulong(0)
        rv = lib.SCardListReaders(context, None, None, ctypes.byref(size))
        if rv & 0xFFFFFFFF == _SCARD_E_NO_READERS_AVAILABLE:
            return []
        if rv & 0xFFFFFFFF != _SCARD_S_SUCCESS:
            return None
        buf = ctypes.create_string_buffer(size.value)
        rv = lib.SCardListReaders(context, None, buf, ctypes.byref(size))
        if rv & 0xFFFFFFFF == _SCARD_E_NO_READERS_AVAILABLE:
            return []
        if rv & 0xFFFFFFFF != _SCARD_S_SUCCESS:
            return None
        raw = buf.raw[: size.value]
        return [n.decode("utf-8", "replace") for n in raw.split(b"\0") if n]
    finally:
        lib.SCardReleaseContext(context)


def list_readers() -> list[str] | None:
    """The readers pcscd lists right now; None when it does not answer.

    Through libpcsclite with ctypes, else ``pcsc_scan -r``; :class:`CiError` when neither is
    there."""
    import ctypes.util
    import shutil
    import subprocess

    name = ctypes.util.find_library("pcsclite") or "libpcsclite.so.1"
    with contextlib.suppress(OSError):
        return _list_with_libpcsclite(name)
    scan = shutil.which("pcsc_scan")
    if scan is None:
        raise CiError(_install_hint("cannot list readers: libpcsclite is missing"))
    try:
        out = subprocess.run(
            [scan, "-r"], capture_output=True, text=True, timeout=5, check=False
        ).stdout
    except subprocess.TimeoutExpired:
        return None
    readers = [line.partition(": ")[2] for line in out.splitlines() if line[:1].isdigit()]
    return readers if readers or "No reader" in out else None


def vpcd_readers(readers: list[str] | None) -> list[str]:
    return [r for r in readers or () if r.startswith(VPCD_PREFIX)]


@dataclass
class Started:
    """What :func:`start` did: the pcscd pid it started (None: reused) and the readers."""

    pid: int | None
    readers: list[str]
    changed: bool


def start(cfg: PcscdConfig, say: Say = print) -> Started:
    """Reader entries written, pcscd running (started only when none runs), the vpcd readers
    listed; raises :class:`CiError` (one line) otherwise."""
    binary = check_installed(cfg)
    if not (cfg.conf_dir / "vpcd").exists() and not any(cfg.conf_dir.glob("vpcd*")):
        raise CiError(_install_hint(f"no vpcd entry in {cfg.conf_dir}"))
    changed = write_reader_entries(cfg, say)
    pid = None
    running = running_pcscd()
    if running:
        say(f"pcscd already running (pid {' '.join(map(str, running))}), reusing it")
        if changed:
            say(
                "WARNING: reader entries changed; the running pcscd uses the old ones until it "
                "is restarted (it was not started here, so it is left alone)"
            )
    elif _socket_activated():
        say("pcscd is socket-activated by systemd: it starts on the first client")
    else:
        pid = _spawn(binary, cfg)
        say(f"started pcscd (pid {pid}, log {cfg.log})")
    readers = _wait_for_readers(cfg, pid)
    say(f"readers ready: {len(readers)} vpcd slots")
    for r in readers:
        say(f"  {r}")
    return Started(pid, readers, changed)


def _spawn(binary: str, cfg: PcscdConfig) -> int:
    import subprocess

    # A pid file left by a pcscd that died can keep a new one from starting; removed only
    # because no pcscd runs. Not --auto-exit: an idle pcscd would exit and close vpcd's ports.
    for stale in (Path("/run/pcscd/pcscd.pid"), Path("/run/pcscd/pcscd.pub")):
        with contextlib.suppress(FileNotFoundError, PermissionError):
            stale.unlink()
    try:
        Path("/run/pcscd").mkdir(parents=True, exist_ok=True)
        cfg.marker.parent.mkdir(parents=True, exist_ok=True)
        with cfg.log.open("wb") as log:
            proc = subprocess.Popen(
                [binary, "-f", *(["-d", "-a"] if cfg.debug else [])],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # outlives this command, like nohup
            )
        cfg.marker.write_text(f"{proc.pid}\n")
    except PermissionError as exc:
        raise CiError(
            f"cannot write {exc.filename}: permission denied (run as root, e.g. with sudo)"
        ) from None
    return proc.pid


def _wait_for_readers(cfg: PcscdConfig, pid: int | None) -> list[str]:
    deadline = time.monotonic() + cfg.timeout
    while True:
        readers = vpcd_readers(list_readers())
        if len(readers) >= cfg.slots:
            return readers
        if pid is not None and not _alive(pid):
            tail = _tail(cfg.log)
            with contextlib.suppress(OSError):
                cfg.marker.unlink()
            raise CiError(f"pcscd exited at start; its log ({cfg.log}) ends: {tail}")
        if time.monotonic() >= deadline:
            raise CiError(
                f"after {cfg.timeout:g} s pcscd lists {len(readers)} of {cfg.slots} "
                f"{VPCD_PREFIX} readers (a pcscd started before the entries were written "
                "must be restarted)"
            )
        time.sleep(0.2)


def _tail(log: Path) -> str:
    try:
        lines = [x for x in log.read_text(errors="replace").splitlines() if x.strip()]
    except OSError:
        return "(unreadable)"
    return lines[-1].strip() if lines else "(empty)"


def _alive(pid: int) -> bool:
    """Whether *pid* is a live pcscd; reaps it when it is our exited child."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)
    try:
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return False
    return comm == "pcscd" and state != "Z"  # a zombie has exited; its parent has not reaped it


def stop(cfg: PcscdConfig, say: Say = print, *, grace: float = 5.0) -> int | None:
    """Stop the pcscd :func:`start` started (its pid in the marker) and nothing else; the pid
    stopped, or None. Idempotent: no marker, or a marker whose pid is no longer a pcscd, stops
    nothing."""
    try:
        pid = int(cfg.marker.read_text().strip())
    except FileNotFoundError:
        say("no pcscd started by 'myna-hil ci pcscd start'; nothing to stop")
        return None
    except (ValueError, OSError):
        say(f"{cfg.marker} is not a pid marker; removing it")
        _unlink(cfg.marker)
        return None
    if not _alive(pid):  # the number may have been reused since
        say(f"pid {pid} is no longer pcscd; removing the stale marker")
        _unlink(cfg.marker)
        return None
    try:
        os.kill(pid, signal.SIGTERM)
    except PermissionError:
        raise CiError(f"cannot stop pcscd {pid}: permission denied (run as root)") from None
    deadline = time.monotonic() + grace
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _alive(pid):
        say(f"pcscd {pid} ignored SIGTERM for {grace:g} s; sending SIGKILL")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    _unlink(cfg.marker)
    say(f"stopped pcscd {pid}")
    return pid


def _unlink(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except PermissionError:
        raise CiError(f"cannot remove {path}: permission denied (run as root)") from None


def status(cfg: PcscdConfig) -> dict[str, object]:
    """What runs and what is set up, for ``myna-hil ci pcscd status`` (never changes anything)."""
    marker_pid = None
    with contextlib.suppress(ValueError, OSError):
        marker_pid = int(cfg.marker.read_text().strip())
    running = running_pcscd()
    installed = pcscd_binary(cfg) is not None
    try:
        readers = list_readers() if running or installed else None
    except CiError:
        readers = None
    return {
        "platform": sys.platform,
        "pcscd_installed": installed,
        "vpcd_driver": str(cfg.driver) if cfg.driver.exists() else None,
        "running": running,
        "started_here": marker_pid if marker_pid in running else None,
        "reachable": readers is not None,
        "vpcd_readers": vpcd_readers(readers),
        "other_readers": [r for r in readers or () if not r.startswith(VPCD_PREFIX)],
        "entries": sorted(str(p) for p in cfg.conf_dir.glob("vpcd*"))
        if cfg.conf_dir.is_dir()
        else [],
    }
