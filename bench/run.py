"""`python -m bench.run [--scale 1.0[,0.25]] [--only purge,pseudo] [--batch-size N] [--keep]`;
`--engine mariadb`: the same measurements on MariaDB (bench/mariadb.py).

For each scale: build or reuse the template, then for each measurement clone it twice, run the
hand-written SQL on one copy and `retention run` on the other, check that both copies end in the
same state, and record times, rows per second, peak memory and transaction lengths. Results are
printed and written to `bench/data/results-<patients>.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench import checks, handwritten
from bench.db import (
    DEFAULT_SERVER,
    SEED_PATIENTS,
    Template,
    checkpoint,
    clone,
    connect,
    drop_database,
    ensure_template,
    server_facts,
)
from bench.engine import PSEUDONYM_KEY, ROOT, EngineJob, EngineRun, run_engine
from bench.handwritten import ScriptRun
from bench.report import Result, code_state, machine, render
from retention.demo.keys import APPROVERS

DATA = Path(__file__).resolve().parent / "data"
_WRITES = ("DELETE", "UPDATE", "WITH")


@dataclass(frozen=True)
class Measurement:
    """One piece of work done twice: by hand-written SQL and by `retention run`."""

    name: str
    script: str
    policies_dir: Path
    policy: str
    target_ratio: float
    subjects_statement: int  # index of the hand statement whose rowcount is the subject count
    compare: Callable[[str, str], checks.Comparison]
    prepare: Callable[[str], None] | None = None
    approvers: tuple[str, ...] = ()


# R1112-7: destruction is decided by the director after the opinion of the DIM physician
PURGE_APPROVERS = tuple(principal for principal, _ in APPROVERS)  # the DIM physician, the director


MEASUREMENTS: dict[str, Measurement] = {
    "purge": Measurement(
        "purge",
        "purge",
        ROOT / "policies",
        "dossier-medical",
        1.5,
        -1,
        checks.compare_purge,
        approvers=PURGE_APPROVERS,
    ),
    "pseudo": Measurement(
        "pseudo",
        "minimise",
        ROOT / "bench" / "policies" / "minimise",
        "minimise",
        2.0,
        -1,
        checks.compare_minimise,
        handwritten.prepare_minimise,
    ),
}


@dataclass(frozen=True)
class Options:
    """Command-line choices that apply to every measurement."""

    server: str
    batch_size: int | None
    keep: bool
    quiet_wait: float  # seconds to wait at most for an idle machine before each run


QUIET_LOAD = 1.0  # 1-minute load average under which the machine counts as idle (2 cores)


def wait_for_quiet(max_seconds: float) -> float:
    """Wait (up to `max_seconds`) for other work on this machine to calm down: the server
    and these 2 cores are shared. Returns the 1-minute load average when measuring starts."""
    deadline = time.monotonic() + max_seconds
    while os.getloadavg()[0] > QUIET_LOAD and time.monotonic() < deadline:
        time.sleep(5)
    return round(os.getloadavg()[0], 2)


def _measure(template: Template, m: Measurement, options: Options) -> Result:
    server = options.server
    today = checks.legal_today()
    hand_db = f"{template.name}_{m.name}_sql"
    engine_db = f"{template.name}_{m.name}_engine"
    hand_url = clone(server, template, hand_db)
    engine_url = clone(server, template, engine_db)
    try:
        if m.prepare is not None:
            m.prepare(hand_url)
        print(f"  {m.name}: hand-written SQL ...", flush=True)
        loads = [wait_for_quiet(options.quiet_wait)]
        hand = handwritten.run_script(hand_url, m.script, {"today": today, "key": PSEUDONYM_KEY})
        print(f"  {m.name}: hand-written SQL {hand.seconds:.1f} s; retention run ...", flush=True)
        job = EngineJob(
            server, engine_db, m.policies_dir, m.policy, options.batch_size,
            DATA / f"engine-{template.patients}-{m.name}.log", m.approvers,
        )  # fmt: skip
        checkpoint(server)  # the hand script's WAL is not the run's checkpoint to pay
        loads.append(wait_for_quiet(options.quiet_wait))
        engine = run_engine(job)
        print(f"  {m.name}: retention run {engine.seconds:.1f} s (exit {engine.returncode})")
        checks.warn_if_the_day_changed(today)
        comparison = m.compare(hand_url, engine_url)
    finally:
        if not options.keep:
            with connect(server) as admin:
                drop_database(admin, hand_db)
                drop_database(admin, engine_db)
    return result_of(template.patients, m, hand, engine, comparison, loads)


def result_of(
    patients: int,
    m: Measurement,
    hand: ScriptRun,
    engine: EngineRun,
    comparison: checks.Comparison,
    loads: list[float],
) -> Result:
    hand_rows = sum(s.rowcount for s in hand.statements if s.label.startswith(_WRITES))
    return Result(
        measurement=m.name,
        patients=patients,
        subjects=hand.statements[m.subjects_statement].rowcount,
        hand_seconds=hand.seconds,
        hand_rows=hand_rows,
        hand_statements=[(s.label, round(s.seconds, 3), s.rowcount) for s in hand.statements],
        engine_seconds=engine.seconds,
        engine_subjects=engine.subjects,
        engine_rows=sum(engine.rows.values()),
        engine_rows_by_table=engine.rows,
        engine_exit=engine.returncode,
        peak_rss_mb=engine.peak_rss_mb,
        rss_samples=engine.rss_samples,
        xacts={k: asdict(v) for k, v in engine.xacts.items()},
        xact_list=engine.xact_list,
        batch_periods=list(engine.batch_periods),
        events=[(round(e.at, 3), e.what) for e in engine.events],
        polls=engine.polls,
        target_ratio=m.target_ratio,
        load_before=loads,
        same_result=comparison.same,
        comparison={k: [str(a), str(b)] for k, (a, b) in comparison.details.items()},
    )


def _save(path: Path, facts: dict[str, Any], template: Template, results: list[Result]) -> None:
    content = {
        "machine": facts,
        "template": asdict(template),
        "results": [asdict(r) for r in results],
    }
    path.write_text(json.dumps(content, indent=2, default=str), encoding="utf-8")


_ENGINES = ("postgresql", "mariadb")


def _engine(argv: list[str] | None) -> str:
    """`--engine`: PostgreSQL (this module) or MariaDB (bench/mariadb.py, its own options)."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--engine", choices=_ENGINES, default="postgresql")
    return str(parser.parse_known_args(argv)[0].engine)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument(
        "--engine", choices=_ENGINES, default="postgresql", help="mariadb: bench/mariadb.py"
    )
    parser.add_argument("--scale", default="1.0", help="scale factor(s), comma-separated")
    parser.add_argument("--only", default=",".join(MEASUREMENTS), help="purge,pseudo")
    parser.add_argument("--batch-size", type=int, default=None, help="RETENTION_BATCH_SIZE")
    parser.add_argument("--server", default=DEFAULT_SERVER, help="admin URL of the server")
    parser.add_argument("--keep", action="store_true", help="keep the copies for inspection")
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=120.0,
        help="seconds to wait at most, before each run, for the load average to drop under 1",
    )
    args = parser.parse_args(argv)
    unknown = set(args.only.split(",")) - set(MEASUREMENTS)
    if unknown:
        parser.error(f"unknown measurement(s) {', '.join(sorted(unknown))}")
    return args


def main(argv: list[str] | None = None) -> int:
    if _engine(argv) == "mariadb":
        from bench import mariadb  # MariaDB's template, copies, hand SQL and monitor

        return mariadb.main(argv)
    args = _parse(argv)
    DATA.mkdir(exist_ok=True)
    facts: dict[str, Any] = {
        **machine(),
        **server_facts(args.server),
        **code_state(ROOT),
        "python": platform.python_version(),
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
    }
    all_results: list[Result] = []
    for scale in (float(s) for s in args.scale.split(",")):
        patients = round(SEED_PATIENTS * scale)
        print(f"scale {scale}: {patients:,} patients", flush=True)
        template = ensure_template(args.server, patients, checks.legal_today())
        how = (
            "reused"
            if template.built_seconds is None
            else f"built in {template.built_seconds:.0f} s"
        )
        print(f"  template {template.name} ({template.size_bytes / 2**20:,.0f} MB) {how}")
        options = Options(args.server, args.batch_size, args.keep, args.quiet_wait)
        results = [_measure(template, MEASUREMENTS[name], options) for name in args.only.split(",")]
        _save(DATA / f"results-{patients}.json", facts, template, results)
        all_results += results
    facts["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    after = code_state(ROOT)
    if after != {k: facts[k] for k in after}:
        print("WARNING: retention/ changed while the benchmark ran; results mix code versions")
    print()
    print(render(all_results, facts))
    return 0 if all(r.same_result and r.engine_exit == 0 for r in all_results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
