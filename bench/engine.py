"""`retention run` as a subprocess: wall time, peak RSS, transactions, and where the time went."""

from __future__ import annotations

import compileall
import functools
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.db import connect, url_for
from bench.monitor import Monitor, XactStats
from bench.rss import RssSampler
from retention.demo.keys import DemoKeys, make_keys

ROOT = Path(__file__).resolve().parent.parent
_LOGGED = ("to process", ": finished", "exposure snapshot")  # log lines that mark the timeline
PSEUDONYM_KEY = "5e" * 32  # benchmark keys: 64 hex characters, nothing secret
AUDIT_KEY = "a7" * 32


@dataclass(frozen=True)
class Event:
    """A moment of the run, in seconds since the process started."""

    at: float
    what: str


@dataclass(frozen=True)
class EngineRun:
    """What one `retention run` did and cost."""

    seconds: float
    peak_rss_mb: float
    rss_samples: list[tuple[float, float]]
    returncode: int
    xacts: dict[str, XactStats]
    xact_list: list[tuple[str, float, bool, list[str]]]
    events: tuple[Event, ...]
    batch_periods: tuple[float, ...]  # between consecutive batch audit entries of a phase
    subjects: int
    rows: dict[str, int]
    polls: int
    log: Path


@dataclass(frozen=True)
class EngineJob:
    """Which policy to run, on which database."""

    server: str
    dbname: str
    policies_dir: Path
    policy: str
    batch_size: int | None
    log: Path
    approvers: tuple[str, ...] = ()  # principals who sign before the run, untimed
    url: str | None = None  # the copy's URL when not a PostgreSQL conninfo (MariaDB)
    environment: tuple[tuple[str, str], ...] = ()  # more settings (RETENTION_SCHEMA_NAME)


@functools.cache
def _keys() -> DemoKeys:
    """The trail's signing key and the approvers' keys, made once in bench/data/keys."""
    return make_keys(ROOT / "bench" / "data" / "keys")


def _environment(job: EngineJob) -> dict[str, str]:
    keys = _keys()
    env = dict(os.environ)
    env.update(
        RETENTION_DATABASE_URL=job.url or url_for(job.server, job.dbname),
        RETENTION_POLICIES_DIR=str(job.policies_dir),
        RETENTION_AUDIT_KEY=AUDIT_KEY,
        RETENTION_PSEUDONYM_KEY=PSEUDONYM_KEY,
        RETENTION_LOG_FORMAT="json",
        RETENTION_AUDIT_SIGNING_KEY_FILE=str(keys.signing_key),
        RETENTION_AUDIT_PUBLIC_KEYS=str(keys.public_keys),
        RETENTION_APPROVERS_FILE=str(keys.approvers_file),
        RETENTION_APPROVER_ROLES=json.dumps(keys.roles),
    )
    if job.batch_size is not None:
        env["RETENTION_BATCH_SIZE"] = str(job.batch_size)
    env.update(job.environment)
    return env


def _command(job: EngineJob) -> list[str]:
    return [
        sys.executable, "-m", "retention.cli.main", "run",
        "--yes", "--allow-large", "--reason", "bench", "--policy", job.policy,
    ]  # fmt: skip


def _cli(job: EngineJob, *args: str) -> None:
    """`retention <args>` on the job's copy, to its end; not timed."""
    command = [sys.executable, "-m", "retention.cli.main", *args]
    subprocess.run(  # noqa: S603 (our own interpreter and fixed arguments)
        command, cwd=ROOT, env=_environment(job), check=True, capture_output=True
    )


def init(job: EngineJob) -> None:
    """`retention init`, as an installation runs it once before any run; not timed. The
    purge's copy got the tool's schema from `approve` already; the minimisation's run created
    it within its timed start (eight tables and their indexes: 0.07-0.13 s)."""
    _cli(job, "init")


def approve(job: EngineJob) -> None:
    """`retention approve --key` by each approver (purge needs their signatures); not timed."""
    keys = _keys()
    for principal in job.approvers:
        _cli(job, "approve", "--policy", job.policy, "--key", str(keys.approver_keys[principal]))


@dataclass(frozen=True)
class _Process:
    seconds: float
    peak_rss_mb: float  # VmHWM of the process, read every 100 ms (see RssSampler)
    returncode: int
    started_epoch: float
    rss: list[tuple[float, float]]  # sampled every 100 ms


def _spawn_and_wait(job: EngineJob) -> _Process:
    """Run the subprocess to its end, sampling its memory."""
    job.log.parent.mkdir(parents=True, exist_ok=True)
    with job.log.open("wb") as out:
        started_epoch = time.time()
        started = time.perf_counter()
        proc = subprocess.Popen(  # noqa: S603 (our own interpreter and fixed arguments)
            _command(job), cwd=ROOT, env=_environment(job), stdout=out, stderr=subprocess.STDOUT
        )
        sampler = RssSampler(proc.pid)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        sampler.stop()
    proc.returncode = os.waitstatus_to_exitcode(status)
    # wait4's ru_maxrss is exact for a child that allocated more than its parent, but counts
    # the parent's pages shared between fork and exec: 563 MB once, after this process had
    # built a template, for a run whose own peak was 66 MB. The sampled VmHWM misses at most
    # the last 100 ms; the two agree whenever the child outgrows its parent.
    peak = sampler.peak_mb or usage.ru_maxrss / 1024
    return _Process(seconds, peak, proc.returncode, started_epoch, sampler.samples)


@functools.cache
def _bytecode() -> None:
    """The package's bytecode, as an installed copy has it (pip compiles it at install time).
    Started with PYTHONDONTWRITEBYTECODE=1 (set on these machines) from a tree without
    __pycache__, `retention run` compiled its 110 modules from source at every start: 0.1 s
    of CPU charged to the run. Written once, untimed; __pycache__ is ignored by git."""
    compileall.compile_dir(ROOT / "retention", quiet=1)


def run_engine(job: EngineJob) -> EngineRun:
    """Run the policy, watching its transactions; read back its audit trail."""
    _bytecode()
    init(job)
    approve(job)
    monitor = Monitor(job.server, job.dbname)
    monitor.start()
    try:
        process = _spawn_and_wait(job)
    finally:
        monitor.stop()
    epoch = process.started_epoch
    events = _log_events(job.log, epoch)
    entries = _audit(url_for(job.server, job.dbname))
    events += [
        Event(e["at"].timestamp() - epoch, e["event"]) for e in entries if e["event"] != "batch"
    ]
    rows: dict[str, int] = {}
    for entry in entries:
        if entry["event"] == "batch":
            for table, n in entry["rows"].items():
                rows[table] = rows.get(table, 0) + int(n)
    return EngineRun(
        seconds=process.seconds,
        peak_rss_mb=process.peak_rss_mb,
        rss_samples=process.rss,
        returncode=process.returncode,
        xacts=monitor.summary(),
        xact_list=monitor.listing(),
        events=tuple(sorted(events, key=lambda e: e.at)),
        batch_periods=_batch_periods(entries, events, epoch),
        subjects=sum(int(e["subjects"]) for e in entries if e["event"] == "batch"),
        rows=rows,
        polls=monitor.polls,
        log=job.log,
    )


def _log_events(log: Path, epoch: float) -> list[Event]:
    """Phase start and end from the JSON log lines of the progress reporter."""
    found = []
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.startswith("{"):
            continue
        try:
            record = json.loads(line)["record"]
        except (json.JSONDecodeError, KeyError):
            continue
        message = str(record.get("message", ""))
        if any(marker in message for marker in _LOGGED):
            found.append(Event(float(record["time"]["timestamp"]) - epoch, message))
    return found


def _audit(url: str) -> list[dict[str, Any]]:
    with connect(url) as conn:
        cur = conn.execute(
            "SELECT event, recorded_at, phase, subjects, rows FROM retention.audit ORDER BY seq"
        )
        return [
            {"event": e, "at": at, "phase": ph, "subjects": s, "rows": r or {}}
            for e, at, ph, s, r in cur.fetchall()
        ]


def _batch_periods(
    entries: list[dict[str, Any]], events: list[Event], epoch: float
) -> tuple[float, ...]:
    """Seconds between a batch's entry and the previous one of its phase (or the phase start)."""
    starts = [e.at for e in events if "to process" in e.what]
    periods: list[float] = []
    previous: float | None = None
    phase: str | None = None
    for entry in entries:
        if entry["event"] != "batch":
            continue
        at = _epoch(entry["at"]) - epoch
        if entry["phase"] != phase:
            phase = entry["phase"]
            before = [s for s in starts if s <= at]
            previous = before[-1] if before else None
        if previous is not None:
            periods.append(at - previous)
        previous = at
    return tuple(periods)


def _epoch(moment: datetime) -> float:
    return moment.timestamp()
