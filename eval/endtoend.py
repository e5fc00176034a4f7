"""Texts of other styles (:mod:`eval.styles`), scored and scrubbed end to end.

1. :func:`score_styles`: the scrubber and Presidio's default analyzer over the texts of each
   style and the JSON change logs, per planted kind;
2. :func:`throughput`: a table of those notes in a database of its own, scrubbed by a real
   ``retention run`` (a ``scrub`` phase: batches, ledger, audit, write-back), and the same
   table scrubbed by Presidio's ``BatchAnalyzerEngine`` + ``AnonymizerEngine`` (read, analyse,
   anonymise, write back), both timed in the same process after their engines are warm;
   the run's output is compared with the scrubber's.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
from presidio_analyzer import BatchAnalyzerEngine
from psycopg import sql
from pydantic import SecretStr

from eval import baseline
from eval.generate import _names
from eval.scoring import TextScore, covered, replaced, score_json, score_text
from eval.styles import PERSONAL, STYLES, Corpus, corpus
from retention.audit.seal import TrailSigner
from retention.audit.writer import AuditKeys
from retention.discovery.scrub import Scrubber, get_scrubber
from retention.engine.outcome import RunOptions
from retention.engine.progress import LogReporter
from retention.keys import load_key
from retention.policy.check import bound_policies
from retention.service.run import RunKeys, run_policies
from retention.settings import Settings
from retention.store.schema import migrate

NOTES_DDL = """
CREATE SCHEMA notes;
CREATE TABLE notes.patient (id int PRIMARY KEY, cree date NOT NULL);
CREATE TABLE notes.note (
    id int PRIMARY KEY, patient_id int NOT NULL REFERENCES notes.patient, texte text
);
CREATE TABLE notes.note_presidio (id int PRIMARY KEY, texte text);
"""
NOTES_POLICY = """\
name: eval-notes
title: Notes de l'évaluation
subject: {table: patient, key: id}
related:
  links:
    - table: note
      column: patient_id
dates:
  creation: {column: cree}
retain_until: creation + 1 day
phases:
  - name: notes
    due: creation + 1 day
    action: scrub
    columns:
      - note.texte
"""


# -- scores ---------------------------------------------------------------------------------
@dataclass
class StyleScores:
    """Per planted kind, over every style; and per style, all personal kinds together."""

    ours: TextScore
    presidio: TextScore
    styles: dict[str, tuple[TextScore, TextScore]] = field(default_factory=dict)
    outputs: dict[str, list[str]] = field(default_factory=dict)  # scrubbed texts, per style


def score_styles(data: Corpus) -> StyleScores:
    scrubber = Scrubber()
    engine = baseline.default_engine()
    scores = StyleScores(TextScore("retention scrub"), TextScore("Presidio AnalyzerEngine()"))
    try:
        for style, texts in data.texts.items():
            mine, theirs = TextScore(style), TextScore(style)
            plain = [t.text for t in texts]
            traced = scrubber.scrub_traced(plain)
            found = baseline.spans(engine, plain)
            for text, result, spans in zip(texts, traced, found, strict=True):
                for score in (scores.ours, mine):
                    score_text(score, text.text, text.planted, set(result.removed), PERSONAL)
                for score in (scores.presidio, theirs):
                    score_text(score, text.text, text.planted, covered(spans), PERSONAL)
            scores.styles[style] = (mine, theirs)
            scores.outputs[style] = [result.text for result in traced]
        mine, theirs = TextScore("changelog"), TextScore("changelog")
        logs = [log.text for log in data.logs]
        outputs = scrubber.scrub_values(logs, is_json=True)
        for log, out, spans in zip(data.logs, outputs, baseline.spans(engine, logs), strict=True):
            for score in (scores.ours, mine):
                score_json(score, out or "", list(log.planted), PERSONAL)
            for score in (scores.presidio, theirs):
                score_json(score, replaced(log.text, spans), list(log.planted), PERSONAL)
        scores.styles["changelog"] = (mine, theirs)
    finally:
        scrubber.close()
    return scores


def make_corpus(per_style: int, seed: int) -> Corpus:
    return corpus(per_style, seed + 101, _names(seed + 101))


# -- end to end -----------------------------------------------------------------------------
@dataclass(frozen=True)
class EndToEnd:
    """``retention run`` against Presidio's analyzer + anonymizer on the same table."""

    notes: int
    ours_seconds: float
    presidio_seconds: float
    rows_changed: int
    identical: int
    pool_start_seconds: float

    @property
    def ratio(self) -> float:
        return self.presidio_seconds / self.ours_seconds


def throughput(url: str, data: Corpus, outputs: dict[str, list[str]], today: date) -> EndToEnd:
    """Both scrubs of the plain texts of ``data`` (database ``url``, empty)."""
    notes = [t.text for style in STYLES if style in data.texts for t in data.texts[style]]
    expected = [text for style in STYLES if style in outputs for text in outputs[style]]
    with psycopg.connect(url, autocommit=True, options="-c search_path=notes,public") as conn:
        _load(conn, notes, today)
        started = time.monotonic()
        get_scrubber().start()
        get_scrubber().scrub_texts(notes[:20])
        pool_start = time.monotonic() - started
        with _policy_folder(NOTES_POLICY) as folder:
            config = eval_settings(url, folder, "notes, public")
            started = time.monotonic()
            changed = run_policy(conn, config, today)
            ours = time.monotonic() - started
        rows = conn.execute("SELECT texte FROM notes.note ORDER BY id").fetchall()
        identical = sum(row[0] == want for row, want in zip(rows, expected, strict=True))
        presidio = _presidio(conn, notes[:20])
    return EndToEnd(len(notes), ours, presidio, changed, identical, pool_start)


def _load(conn: psycopg.Connection[Any], notes: list[str], today: date) -> None:
    conn.execute(NOTES_DDL)
    patients = (len(notes) + 1) // 2  # two notes per patient
    with conn.cursor().copy("COPY notes.patient FROM STDIN") as copy:
        for n in range(patients):
            copy.write_row((n, today.replace(year=today.year - 1)))
    for table in ("note", "note_presidio"):
        statement = sql.SQL("COPY {} FROM STDIN").format(sql.Identifier("notes", table))
        with conn.cursor().copy(statement) as copy:
            for n, text in enumerate(notes):
                copy.write_row((n, n // 2, text) if table == "note" else (n, text))
    conn.execute("ANALYZE")


def _presidio(conn: psycopg.Connection[Any], warm: list[str]) -> float:
    """Seconds Presidio's analyzer + anonymizer take to scrub ``notes.note_presidio``."""
    from presidio_anonymizer import AnonymizerEngine

    batch = BatchAnalyzerEngine(baseline.default_engine())
    anonymizer: Any = AnonymizerEngine()  # type: ignore[no-untyped-call]
    for text, results in zip(warm, batch.analyze_iterator(warm, "fr"), strict=True):
        anonymizer.anonymize(text=text, analyzer_results=results)
    started = time.monotonic()
    with conn.transaction():
        rows = conn.execute("SELECT id, texte FROM notes.note_presidio ORDER BY id").fetchall()
        texts = [row[1] for row in rows]
        new = [
            anonymizer.anonymize(text=text, analyzer_results=results).text
            for text, results in zip(texts, batch.analyze_iterator(texts, "fr"), strict=True)
        ]
        conn.execute("CREATE TEMPORARY TABLE scrubbed (id int, texte text) ON COMMIT DROP")
        with conn.cursor().copy("COPY scrubbed FROM STDIN") as copy:
            for row, text in zip(rows, new, strict=True):
                if text != row[1]:
                    copy.write_row((row[0], text))
        conn.execute(
            "UPDATE notes.note_presidio n SET texte = s.texte FROM scrubbed s WHERE n.id = s.id"
        )
    return time.monotonic() - started


# -- running a policy -----------------------------------------------------------------------
@contextmanager
def _policy_folder(policy: str) -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "policy.yaml").write_text(policy, encoding="utf-8")
        yield Path(folder)


def eval_settings(url: str, folder: Path, search_path: str) -> Settings:
    """Settings of an evaluation run: fresh keys, no approval needed."""
    return Settings(
        database_url=SecretStr(url),
        policies_dir=folder,
        pseudonym_key=SecretStr(os.urandom(32).hex()),
        audit_key=SecretStr(os.urandom(32).hex()),
        required_approvals=0,
        search_path=search_path,
    )


def run_policy(conn: psycopg.Connection[Any], config: Settings, today: date) -> int:
    """``retention run`` of the policies of ``config`` on ``today``; rows changed."""
    migrate(conn, config.schema_name)
    assert config.audit_key is not None and config.pseudonym_key is not None
    keys = RunKeys(
        AuditKeys(load_key(config.audit_key, "audit_key"), TrailSigner.throwaway()),
        load_key(config.pseudonym_key, "pseudonym_key"),
    )
    policies = bound_policies(conn, config.policies_dir)
    options = RunOptions(today, None, True, "evaluation")
    report = run_policies(conn, config, policies, options, keys, progress=LogReporter())
    if report is None or report.outcome != "completed":
        raise RuntimeError(f"the scrub run ended {report.outcome if report else 'unrun'}")
    return sum(sum(phase.rows.values()) for phase in report.phases)
