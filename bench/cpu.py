"""`python -m bench.cpu [--engine postgresql|mariadb] [--scale 0.25] [--only pseudo] [--repeat 3]`:
the CPU seconds the hand-written SQL and `retention run` each cost, the whole machine's.

A wall-clock ratio says how long each took; it does not say whether the tool could go faster
on this machine. The CPU seconds do: whatever the overlap of its connections, a run that
costs C seconds of CPU (the process, the server's backends and their parallel workers, the
kernel's work for both) cannot take less than C / cores seconds of wall time. Against a
target of `target × hand wall`, that floor says whether the target is within this design's
reach on this machine, or would need less work.

Method: for each repeat, two fresh copies of the bench's template (bench/db.py on
PostgreSQL, bench/mariadb.py on MariaDB); the hand script on one, `retention run` on the other
(no monitor, no memory sampler: nothing else of this process runs meanwhile), the machine's
busy time read from /proc/stat before and after each (user, nice, system, irq and softirq of
every core; idle, iowait and steal left out), and the run's own process time from wait4. The
rest of the machine must be idle: the 1-minute load average before each is printed, and each
command waits (up to --quiet-wait) for it to drop under 1. `init` and the approvals run
before the timed run, untimed, as in bench.run.

`--exposure`: then `retention exposure` on the run's copy, timed the same way. Its figures are
those of the snapshot every run takes after its batches (report/exposure.py), computed on one
connection instead of the run's side-by-side slices: the same work, for what the run would
save without that snapshot (an upper bound: the command's machine CPU includes its own start;
so the run's CPU without it is at least the difference, its floor at best).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from bench import checks
from bench.db import SEED_PATIENTS
from bench.engine import (
    PSEUDONYM_KEY,
    ROOT,
    EngineJob,
    _bytecode,
    _command,
    _environment,
    approve,
    init,
)
from bench.run import MEASUREMENTS, Measurement, wait_for_quiet

# the issues' targets: issue 17 (PostgreSQL), issue 20 (MariaDB)
TARGETS = {
    ("postgresql", "pseudo"): 1.5,
    ("postgresql", "purge"): 1.1,
    ("mariadb", "pseudo"): 2.0,
    ("mariadb", "purge"): 1.5,
}
_TICK = os.sysconf("SC_CLK_TCK")
_BUSY = (0, 1, 2, 5, 6)  # user nice system idle iowait irq softirq steal: the busy ones


def busy_seconds() -> float:
    """CPU seconds every core of the machine has spent busy since boot."""
    with open("/proc/stat", encoding="ascii") as handle:
        fields = handle.readline().split()[1:]
    return sum(int(fields[i]) for i in _BUSY) / _TICK


@dataclass(frozen=True)
class Cost:
    """One command: its wall time, the machine's busy CPU meanwhile, the load before it."""

    wall: float
    cpu: float
    process_cpu: float | None  # the tool's own process (user + system), None for SQL alone
    load_before: float


def _timed(action: Callable[[], float | None], quiet_wait: float) -> Cost:
    load = wait_for_quiet(quiet_wait)
    cpu, started = busy_seconds(), time.perf_counter()
    own = action()
    wall = time.perf_counter() - started
    return Cost(wall, busy_seconds() - cpu, own, load)


def _run_tool(job: EngineJob, command: list[str] | None = None) -> float:
    """`retention run` (or `command`) to its end; the process's own CPU seconds. Exit 0 or an
    error."""
    job.log.parent.mkdir(parents=True, exist_ok=True)
    with job.log.open("ab" if command else "wb") as out:
        proc = subprocess.Popen(  # noqa: S603 (our own interpreter and fixed arguments)
            command or _command(job),
            cwd=ROOT,
            env=_environment(job),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join((command or ['retention run'])[-3:])} failed: see {job.log}")
    return float(usage.ru_utime + usage.ru_stime)


def _exposure_command() -> list[str]:
    return [sys.executable, "-m", "retention.cli.main", "exposure", "--format", "json"]


@dataclass(frozen=True)
class _Engine:
    """What differs between the engines: the template, its copies and the hand script."""

    template: Callable[[int], Any]
    copy: Callable[[Any, str], str]  # a copy of the template: its URL
    drop: Callable[[str], None]
    hand: Callable[[str, Measurement], None]
    job: Callable[[str, str, Measurement], EngineJob]


def _postgresql() -> _Engine:
    from bench import handwritten
    from bench.db import DEFAULT_SERVER, checkpoint, clone, connect, drop_database, ensure_template

    def drop(name: str) -> None:
        with connect(DEFAULT_SERVER) as admin:
            drop_database(admin, name)

    def hand(url: str, m: Measurement) -> None:
        if m.prepare is not None:
            m.prepare(url)
        params = {"today": checks.legal_today(), "key": PSEUDONYM_KEY}
        handwritten.run_script(url, m.script, params)

    def job(name: str, url: str, m: Measurement) -> EngineJob:
        checkpoint(DEFAULT_SERVER)  # the hand script's WAL is not the run's checkpoint to pay
        log = ROOT / "bench" / "data" / f"cpu-{m.name}.log"
        return EngineJob(
            DEFAULT_SERVER, name, m.policies_dir, m.policy, None, log, m.approvers, url=url
        )

    return _Engine(
        lambda patients: ensure_template(DEFAULT_SERVER, patients, checks.legal_today()),
        lambda template, name: clone(DEFAULT_SERVER, template, name),
        drop,
        hand,
        job,
    )


def _mariadb() -> _Engine:
    from bench import mariadb

    server = mariadb.DEFAULT_SERVER

    def drop(name: str) -> None:
        with mariadb.connect(server) as admin:
            mariadb.drop_database(admin, name)
            mariadb.drop_database(admin, f"{name}_tool")

    def hand(url: str, m: Measurement) -> None:
        params = {"today": checks.legal_today().isoformat(), **mariadb._hmac_pads(PSEUDONYM_KEY)}
        mariadb.run_script(url, m.script, params, None)

    def job(name: str, url: str, m: Measurement) -> EngineJob:
        log = ROOT / "bench" / "data" / f"mariadb-cpu-{m.name}.log"
        environment = (("RETENTION_SCHEMA_NAME", f"{name}_tool"),)
        return EngineJob(
            server, name, m.policies_dir, m.policy, None, log, m.approvers, url, environment
        )

    return _Engine(
        lambda patients: mariadb.ensure_template(server, patients, checks.legal_today()),
        lambda template, name: mariadb.clone(server, template, name)[0],
        drop,
        hand,
        job,
    )


def measure(
    engine: _Engine, template: Any, m: Measurement, quiet_wait: float, exposure: bool = False
) -> tuple[Cost, Cost, Cost | None]:
    """The hand script and `retention run`, each on its own fresh copy; then, with `exposure`,
    `retention exposure` on the run's copy."""
    hand_db, tool_db = f"{template.name}_{m.name}_cpu_sql", f"{template.name}_{m.name}_cpu_tool"
    try:
        hand_url = engine.copy(template, hand_db)
        hand = _timed(lambda: engine.hand(hand_url, m), quiet_wait)
        engine.drop(hand_db)
        job = engine.job(tool_db, engine.copy(template, tool_db), m)
        init(job)
        approve(job)
        tool = _timed(lambda: _run_tool(job), quiet_wait)
        after = (
            _timed(lambda: _run_tool(job, _exposure_command()), quiet_wait) if exposure else None
        )
    finally:
        engine.drop(hand_db)
        engine.drop(tool_db)
    return hand, tool, after


def _exposure_line(m: Measurement, hand: Cost, tool: Cost, after: Cost) -> str:
    cores = os.cpu_count() or 1
    own = after.process_cpu or 0.0
    rest = tool.cpu - after.cpu
    return (
        f"{m.name}: `retention exposure` after the run {after.wall:.2f} s wall, {after.cpu:.2f} s "
        f"CPU of which its process {own:.2f} s; the run's CPU without it at least {rest:.2f} s "
        f"(the command's own start counted in), its floor on {cores} cores at best "
        f"{rest / cores:.2f} s = {rest / cores / hand.wall:.2f}x the hand's wall (target "
        f"{m.target_ratio}x)"
    )


def _line(m: Measurement, hand: Cost, tool: Cost) -> str:
    cores = os.cpu_count() or 1
    own = tool.process_cpu or 0.0
    return (
        f"{m.name}: hand {hand.wall:.2f} s wall, {hand.cpu:.2f} s CPU (load {hand.load_before}); "
        f"retention {tool.wall:.2f} s wall, {tool.cpu:.2f} s CPU of which its process "
        f"{own:.2f} s (load {tool.load_before}); wall ratio {tool.wall / hand.wall:.2f}x, "
        f"CPU ratio {tool.cpu / hand.cpu:.2f}x; the run's floor on {cores} cores "
        f"{tool.cpu / cores:.2f} s = {tool.cpu / cores / hand.wall:.2f}x the hand's wall "
        f"(target {m.target_ratio}x)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cpu", description=__doc__)
    parser.add_argument("--engine", choices=("postgresql", "mariadb"), default="postgresql")
    parser.add_argument("--scale", type=float, default=0.25)
    parser.add_argument("--only", default="pseudo", help="purge,pseudo")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quiet-wait", type=float, default=120.0)
    parser.add_argument(
        "--exposure", action="store_true", help="then time `retention exposure` on the run's copy"
    )
    args = parser.parse_args(argv)
    names = args.only.split(",")
    if set(names) - set(MEASUREMENTS):
        parser.error(f"--only takes {', '.join(MEASUREMENTS)}")
    engine = _mariadb() if args.engine == "mariadb" else _postgresql()
    template = engine.template(round(SEED_PATIENTS * args.scale))
    _bytecode()
    for name in names:
        m = replace(MEASUREMENTS[name], target_ratio=TARGETS[args.engine, name])
        triples = [
            measure(engine, template, m, args.quiet_wait, args.exposure) for _ in range(args.repeat)
        ]
        for hand, tool, after in triples:
            print(_line(m, hand, tool), flush=True)
            if after is not None:
                print(_exposure_line(m, hand, tool, after), flush=True)
        pairs = [(hand, tool) for hand, tool, _ in triples]
        hand_cpu = statistics.median(h.cpu for h, _ in pairs)
        tool_cpu = statistics.median(t.cpu for _, t in pairs)
        hand_wall = statistics.median(h.wall for h, _ in pairs)
        tool_wall = statistics.median(t.wall for _, t in pairs)
        print(
            f"{m.name} medians of {len(pairs)}: hand {hand_wall:.2f} s wall / {hand_cpu:.2f} s "
            f"CPU, retention {tool_wall:.2f} s wall / {tool_cpu:.2f} s CPU",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
