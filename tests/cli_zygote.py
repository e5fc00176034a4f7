"""`retention` commands for the tests, each in a process of its own, without the interpreter's
start and the imports each time.

The suite runs about 600 commands as a user would (`python -m retention.cli.main ARGS`), and
each paid about 0.5 s of CPU to start Python and import the tool before doing anything: the
suite's largest cost on two cores. Here one process per test worker (the zygote) imports the
command line and every command's module once, then forks a child per command: the child is a
new process (its own memory, file descriptors, environment, working directory and exit code),
started from a state that has run nothing but imports. It writes to files that `run` reads back,
and `run` returns what `subprocess.run(..., capture_output=True, text=True)` returns. The
zygote also builds the analyzer of `scan` and `scrub` once (the model read from the installed
package, as every command reads it): a child finds it built, as a second scan in one process
would.

A command whose environment differs from the zygote's in what is read when Python and the
libraries start (PYTHON* variables, the locale, loguru's and psycopg's own variables) runs in a
real subprocess, as does a command asked for while another one is running (threads). What the
children share: the zygote's hash seed (set order is the same from one command to the next),
and every command's module already imported (tests/test_startup_imports.py checks with real
processes that a command imports only its own).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
COMMAND = [sys.executable, "-m", "retention.cli.main"]
# variables read when Python or a library starts, not when a command runs: a command that sets
# one otherwise than the zygote had it gets a Python of its own
_AT_START = ("PYTHON", "LANG", "LC_", "LOGURU_", "PSYCOPG_")


def run(
    args: list[str], env: dict[str, str], *, cwd: str | Path | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """`retention ARGS` with `env` (the whole environment) in `cwd`, as `subprocess.run` with
    captured text output; raises subprocess.TimeoutExpired after `timeout` seconds."""
    zygote = _zygote()
    if zygote is None or zygote.starts_otherwise(env) or not _LOCK.acquire(blocking=False):
        return _subprocess(args, env, cwd, timeout)
    try:
        return zygote.run(args, env, str(cwd or Path.cwd()), timeout)
    finally:
        _LOCK.release()


def _subprocess(
    args: list[str], env: dict[str, str], cwd: str | Path | None, timeout: float
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMAND, *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class _Zygote:
    """The test worker's side: one request at a time, over the zygote's stdin and stdout."""

    def __init__(self) -> None:
        self.environ = {k: v for k, v in os.environ.items() if not k.startswith("RETENTION_")}
        self.broken = False
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.cli_zygote"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            bufsize=0,  # unbuffered: a reply line read never takes the next one with it
            cwd=ROOT,
            env=self.environ,
        )
        self.folder = tempfile.TemporaryDirectory(prefix="rt_cli_")
        atexit.register(self.close)
        if self._reply(60).get("ready") is not True:
            raise RuntimeError("the CLI zygote did not start")

    def starts_otherwise(self, env: dict[str, str]) -> bool:
        """Whether `env` sets a variable read at start otherwise than the zygote had it."""
        names = {n for n in (*env, *self.environ) if n.startswith(_AT_START)}
        return any(env.get(n) != self.environ.get(n) for n in names)

    def run(
        self, args: list[str], env: dict[str, str], cwd: str, timeout: float
    ) -> subprocess.CompletedProcess[str]:
        """One command; the zygote is given up (and later commands run as subprocesses) when
        anything but the command's own timeout goes wrong."""
        try:
            return self._run(args, env, cwd, timeout)
        except subprocess.TimeoutExpired:
            raise
        except BaseException:
            self.broken = True
            self.process.kill()
            raise

    def _run(
        self, args: list[str], env: dict[str, str], cwd: str, timeout: float
    ) -> subprocess.CompletedProcess[str]:
        out, err = (Path(self.folder.name) / name for name in ("out", "err"))
        for path in (out, err):
            path.write_bytes(b"")
        request = {"args": args, "env": env, "cwd": cwd, "out": str(out), "err": str(err)}
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(request).encode() + b"\n")
        self.process.stdin.flush()
        pid = int(self._reply(30)["pid"])
        try:
            code = int(self._reply(timeout)["status"])
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            self._reply(30)
            raise subprocess.TimeoutExpired(
                [*COMMAND, *args], timeout, _text(out), _text(err)
            ) from None
        return subprocess.CompletedProcess([*COMMAND, *args], code, _text(out), _text(err))

    def _reply(self, timeout: float) -> dict[str, Any]:
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        if not ready:
            raise TimeoutError
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("the CLI zygote stopped")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def close(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        self.folder.cleanup()


def _text(path: Path) -> str:
    """A captured stream as subprocess.run(text=True) gives it (universal newlines)."""
    return path.read_bytes().decode().replace("\r\n", "\n").replace("\r", "\n")


_LOCK = threading.Lock()
_STARTING = threading.Lock()
_STARTED: list[_Zygote | None] = []


def _zygote() -> _Zygote | None:
    """This worker's zygote, started on first use (None if it could not start or was given
    up: subprocesses)."""
    with _STARTING:
        if not _STARTED:
            try:
                _STARTED.append(_Zygote())
            except (OSError, RuntimeError, TimeoutError, ValueError):
                _STARTED.append(None)
    zygote = _STARTED[0]
    if zygote is None or zygote.broken or zygote.process.poll() is not None:
        return None
    return zygote


# --- the zygote's side (python -m tests.cli_zygote) -----------------------------------------


def _serve() -> None:
    """Import the command line, then fork a child per request line and report its exit code."""
    import importlib

    import retention.cli.main as cli

    for module, _ in cli._COMMANDS.values():
        importlib.import_module(f"retention.cli.{module}")
    # the process-wide analyzer of `scan` and `scrub` (Presidio and the French model: about
    # 7 s of CPU to import and build, which each such command paid), built once here
    from retention.discovery.engine import get_analyzer

    get_analyzer()
    replies = os.dup(1)
    null = os.open(os.devnull, os.O_RDWR)
    with os.fdopen(os.dup(0), "rb") as requests:
        os.dup2(null, 0)
        os.dup2(null, 1)
        os.write(replies, b'{"ready": true}\n')
        for line in requests:
            request = json.loads(line)
            pid = os.fork()
            if pid == 0:
                requests.close()
                os.close(replies)
                _child(cli.main, request)
            os.write(replies, json.dumps({"pid": pid}).encode() + b"\n")
            _, status = os.waitpid(pid, 0)
            code = os.waitstatus_to_exitcode(status)
            os.write(replies, json.dumps({"status": code}).encode() + b"\n")


def _child(main: Any, request: dict[str, Any]) -> None:
    """Run one command in this forked process, then exit with its code (never returns)."""
    code = 1
    try:
        for fd, name in ((1, "out"), (2, "err")):
            target = os.open(request[name], os.O_WRONLY)
            os.dup2(target, fd)
            os.close(target)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        time.tzset()
        sys.argv = ["retention", *request["args"]]
        code = main(request["args"])
    except SystemExit as exc:  # argparse's errors and --help, as `sys.exit(main())` ends
        if exc.code is None or isinstance(exc.code, int):
            code = exc.code or 0
        else:
            print(exc.code, file=sys.stderr)
            code = 1
    except BaseException:  # what Python prints and exits with on an uncaught exception
        traceback.print_exc()
        code = 1
    finally:
        with contextlib.suppress(BaseException):  # as Python ends: threads joined, atexit run
            threading._shutdown()  # type: ignore[attr-defined]
        with contextlib.suppress(BaseException):
            atexit._run_exitfuncs()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(BaseException):
                stream.flush()
        os._exit(code)


if __name__ == "__main__":
    _serve()
