"""Prometheus metrics: an HTTP endpoint on loopback and/or the node exporter's textfile.

Rows acted on per policy, phase, action and table; subjects held and undeterminable; coverage
gaps; phases refused (and why); last run start, end, success and outcome; run duration;
errors. Names and labels only: never a personal value.
"""

from __future__ import annotations

import time
from pathlib import Path

from loguru import logger
from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server
from prometheus_client.exposition import write_to_textfile

from retention.engine.outcome import RunReport
from retention.errors import SettingsError
from retention.plan.model import Plan


class Metrics:
    """The daemon's metrics, in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.rows = Counter(
            "retention_rows", "Rows acted on", ["policy", "phase", "action", "table"], registry=r
        )
        self.subjects = Counter(
            "retention_subjects", "Subjects acted on", ["policy", "phase", "action"], registry=r
        )
        self.held = Gauge(
            "retention_subjects_held",
            "Due subjects kept by a legal hold",
            ["policy", "phase"],
            registry=r,
        )
        self.undeterminable = Gauge(
            "retention_subjects_undeterminable",
            "Subjects whose clock cannot be computed (kept)",
            ["policy", "phase"],
            registry=r,
        )
        self.coverage_gaps = Gauge(
            "retention_coverage_gaps",
            "Personal columns of the last scan no policy covers",
            registry=r,
        )
        self.refused = Counter(
            "retention_phases_refused",
            "Phases not run: unmapped polymorphic classes, tables without transactions, or not "
            "enough approvals",
            ["policy", "phase", "reason"],
            registry=r,
        )
        self.runs = Counter("retention_runs", "Runs by outcome", ["outcome"], registry=r)
        self.errors = Counter(
            "retention_errors", "Errors (failed runs, batches, database)", ["kind"], registry=r
        )
        self.last_start = Gauge(
            "retention_last_run_start_timestamp_seconds", "Start of the last run", registry=r
        )
        self.last_end = Gauge(
            "retention_last_run_end_timestamp_seconds", "End of the last run", registry=r
        )
        self.last_success = Gauge(
            "retention_last_success_timestamp_seconds", "End of the last completed run", registry=r
        )
        self.last_outcome = Gauge(
            "retention_last_run_outcome",
            "1 for the outcome of the last run",
            ["outcome"],
            registry=r,
        )
        self.duration = Gauge(
            "retention_last_run_duration_seconds", "Duration of the last run", registry=r
        )
        self.up = Gauge("retention_daemon_up", "1 while the daemon runs", registry=r)
        self.up.set(1)

    def serve(self, listen: str) -> str:
        """Serve the metrics on `listen`; the address bound (port 0: the one chosen)."""
        host, _, port = listen.rpartition(":")
        try:
            server, _ = start_http_server(int(port), addr=host.strip("[]"), registry=self.registry)
        except (OSError, OverflowError) as exc:  # in use, not an address of this host...
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise SettingsError(
                [
                    f"metrics_listen: cannot listen on {listen}: {reason} (choose a free port "
                    "on an address of this host, e.g. 127.0.0.1:9464)"
                ]
            ) from None
        return f"{host}:{server.server_address[1]}"

    def run_started(self) -> float:
        now = time.time()
        self.last_start.set(now)
        return now

    def run_ended(self, report: RunReport, started: float, plan: Plan | None) -> None:
        now = time.time()
        self.last_end.set(now)
        self.duration.set(now - started)
        self.runs.labels(report.outcome).inc()
        for outcome in ("completed", "interrupted", "failed"):
            self.last_outcome.labels(outcome).set(1 if report.outcome == outcome else 0)
        if report.outcome == "completed":
            self.last_success.set(now)
        for phase in report.phases:
            self.subjects.labels(phase.policy, phase.phase, phase.action).inc(phase.acted)
            for table, count in phase.rows.items():
                self.rows.labels(phase.policy, phase.phase, phase.action, table).inc(count)
            if phase.error:
                self.errors.labels("batch").inc()
            if phase.refused:
                reason = phase.refusal or "unmapped_classes"
                self.refused.labels(phase.policy, phase.phase, reason).inc()
            if phase.not_approved:
                self.refused.labels(phase.policy, phase.phase, "not_approved").inc()
        if plan is not None:
            self.plan_seen(plan)
        if report.coverage_gaps is not None:
            self.coverage_gaps.set(len(report.coverage_gaps))

    def plan_seen(self, plan: Plan) -> None:
        for policy in plan.policies:
            for phase in policy.phases:
                self.held.labels(policy.name, phase.name).set(phase.held_subjects)
                self.undeterminable.labels(policy.name, phase.name).set(
                    phase.undeterminable_subjects
                )

    def failed(self, kind: str) -> None:
        self.errors.labels(kind).inc()
        self.last_end.set(time.time())
        self.runs.labels("failed").inc()
        for outcome in ("completed", "interrupted", "failed"):
            self.last_outcome.labels(outcome).set(1 if outcome == "failed" else 0)

    def write_textfile(self, path: Path | None) -> None:
        """The metrics for the node exporter's textfile collector; a file that cannot be
        written is logged, never the end of a run or of the daemon."""
        if path is None:
            return
        try:
            write_to_textfile(str(path), self.registry)
        except OSError as exc:
            logger.warning("cannot write the metrics file {}: {}", path, exc.strerror or exc)
