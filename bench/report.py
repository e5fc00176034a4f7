"""Results as data and as a Markdown table."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Result:
    """One measurement at one scale."""

    measurement: str
    patients: int
    subjects: int
    hand_seconds: float
    hand_rows: int
    hand_statements: list[tuple[str, float, int]]
    engine_seconds: float
    engine_subjects: int
    engine_rows: int
    engine_rows_by_table: dict[str, int]
    engine_exit: int
    peak_rss_mb: float
    rss_samples: list[tuple[float, float]]
    xacts: dict[str, dict[str, Any]]
    xact_list: list[tuple[str, float, bool, list[str]]]
    batch_periods: list[float]
    events: list[tuple[float, str]]
    polls: int
    target_ratio: float
    load_before: list[float]  # 1-minute load average when the hand SQL and retention started
    same_result: bool
    comparison: dict[str, list[str]]

    @property
    def ratio(self) -> float:
        return self.engine_seconds / self.hand_seconds if self.hand_seconds else float("inf")

    def xact(self, kind: str, stat: str = "max") -> float:
        return float(self.xacts.get(kind, {}).get(stat, 0.0))


def machine() -> dict[str, Any]:
    """Cores, memory and CPU model of this machine."""
    cpu = "?"
    for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = 0
    for line in Path("/proc/meminfo").read_text(encoding="utf-8").splitlines():
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])
    return {"nproc": os.cpu_count(), "ram_gb": round(mem_kb / 2**20, 1), "cpu": cpu}


def code_state(root: Path) -> dict[str, Any]:
    """Which engine code was measured: the commit, and a digest of the working tree's
    `retention/` sources (other engineers edit the tree while benchmarks run)."""
    digest = hashlib.sha256()
    for path in sorted((root / "retention").rglob("*")):
        if path.is_file() and path.suffix in (".py", ".sql", ".yaml"):
            digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607 (git from PATH)
        cwd=root, capture_output=True, text=True, check=False,
    ).stdout.strip()  # fmt: skip
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "retention"],  # noqa: S607
        cwd=root, capture_output=True, text=True, check=False,
    ).stdout.splitlines()  # fmt: skip
    return {"commit": head, "retention_changed_files": len(dirty),
            "retention_sha256": digest.hexdigest()[:12]}  # fmt: skip


_HEADER = (
    "| patients | work | subjects | rows | hand SQL | retention | ratio (target) | "
    "rows/s hand | rows/s retention | peak RSS | batch xact max (median, n) | "
    "plan xact | due snapshot | exposure after run | same result |"
)


def _row(r: Result) -> str:
    verdict = "ok" if r.ratio <= r.target_ratio else "MISSED"
    batches = (
        f"{r.xact('batch'):.2f} s ({r.xact('batch', 'median'):.2f} s, "
        f"{int(r.xact('batch', 'count'))})"
    )
    count = int(r.xact("plan", "count"))
    plans = f"{r.xact('plan'):.1f} s" + (f" (max of {count})" if count > 1 else "")
    return (
        f"| {r.patients:,} | {r.measurement} | {r.subjects:,} | {r.hand_rows:,} | "
        f"{r.hand_seconds:.1f} s | {r.engine_seconds:.1f} s | "
        f"{r.ratio:.2f}× (≤ {r.target_ratio}×, {verdict}) | "
        f"{r.hand_rows / r.hand_seconds:,.0f} | {r.hand_rows / r.engine_seconds:,.0f} | "
        f"{r.peak_rss_mb:.0f} MB | {batches} | {plans} | {r.xact('snapshot'):.1f} s | "
        f"{r.xact('exposure'):.1f} s | "
        f"{'yes' if r.same_result else 'NO'} |"
    )


def _timeline(r: Result) -> str:
    events = "; ".join(f"{at:.1f} s {what}" for at, what in r.events)
    return (
        f"- {r.patients:,} {r.measurement}: {events}; exit at {r.engine_seconds:.1f} s "
        f"(load average before hand SQL / retention: {r.load_before})"
    )


def load(path: Path) -> tuple[dict[str, Any], list[Result]]:
    """Machine facts and results saved by `bench.run`."""
    data = json.loads(path.read_text(encoding="utf-8"))
    return data["machine"], [Result(**r) for r in data["results"]]


def _server(facts: dict[str, Any]) -> str:
    if facts.get("engine") == "mariadb":
        return (
            f"MariaDB {facts['version']} (innodb_buffer_pool_size "
            f"{int(facts['innodb_buffer_pool_size']) // 2**20} MB, innodb_log_file_size "
            f"{int(facts['innodb_log_file_size']) // 2**20} MB, innodb_flush_log_at_trx_commit "
            f"{facts['innodb_flush_log_at_trx_commit']}, log_bin {facts['log_bin']})"
        )
    return (
        f"PostgreSQL {facts['version']} (shared_buffers {facts['shared_buffers']}, "
        f"work_mem {facts['work_mem']}, max_wal_size {facts['max_wal_size']})"
    )


def render(results: list[Result], facts: dict[str, Any]) -> str:
    lines = [
        f"machine: {facts['nproc']} cores, {facts['ram_gb']} GB, {facts['cpu']}; {_server(facts)}",
        f"code: commit {facts['commit']} + {facts['retention_changed_files']} changed file(s) "
        f"under retention/ (sources sha256 {facts['retention_sha256']}); "
        f"load average at start {facts['loadavg_start']}, "
        f"at end {facts.get('loadavg_end')}",
        "",
        _HEADER,
        "|" + "---|" * (_HEADER.count("|") - 1),
    ]
    lines += [_row(r) for r in results]
    lines += ["", "retention timeline (seconds since the process started):"]
    lines += [_timeline(r) for r in results]
    lines += ["", "hand-written statements (seconds, rows):"]
    for r in results:
        lines.append(f"- {r.patients:,} {r.measurement}:")
        lines += [f"    {sec:7.3f} s {rows:>9,}  {label}" for label, sec, rows in r.hand_statements]
    lines += [
        "",
        "rows: rows deleted (purge) or patient rows changed (pseudo) by the hand-written SQL; "
        "both copies end identical, so rows/s of retention is the same rows over its time.",
    ]
    mismatches = [r for r in results if not r.same_result]
    for r in mismatches:
        lines.append(f"\nDIFFERENT RESULTS for {r.patients:,} {r.measurement}: {r.comparison}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """`python -m bench.report bench/data/results-*.json`: the table again, from saved runs."""
    import sys

    paths = [Path(p) for p in (argv if argv is not None else sys.argv[1:])]
    facts: dict[str, Any] = {}
    results: list[Result] = []
    for path in paths:
        facts, found = load(path)
        results += found
    print(render(results, facts))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
