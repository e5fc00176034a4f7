"""The HTML report: self-contained, every section, no personal value, the same figures as the
JSON, in French (default) and English; and the `retention report` command."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from retention.engines.mariadb.binlog import interpret as binlog_settings
from retention.engines.postgresql.binlog import interpret as wal_settings
from retention.report.html import render_html
from retention.report.labels import LANGUAGES
from tests.engine_helpers import cli
from tests.test_report_support import AT, Prepared, prepared, tool_figures

__all__ = ["prepared"]

SECTIONS = ("exposure", "inventory", "forecast", "history")


class _Figures(HTMLParser):
    """(data-figure, text) of every tagged element; the ids of every section."""

    def __init__(self) -> None:
        super().__init__()
        self.figures: list[tuple[str, str]] = []
        self.sections: list[str] = []
        self._open: list[tuple[str, list[str]] | None] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "section" and found.get("data-section"):
            self.sections.append(str(found["data-section"]))
        if tag in ("br", "wbr", "meta", "line", "rect", "circle", "polyline"):
            return
        figure = found.get("data-figure")
        self._open.append((figure, []) if figure else None)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("br", "wbr", "meta", "line", "rect", "circle", "polyline") or not self._open:
            return
        item = self._open.pop()
        if item is not None:
            self.figures.append((item[0], "".join(item[1])))

    def handle_data(self, data: str) -> None:
        for item in self._open:
            if item is not None:
                item[1].append(data)


def _parse(page: str) -> _Figures:
    parser = _Figures()
    parser.feed(page)
    return parser


def _pointer(document: Any, pointer: str) -> Any:
    for part in pointer.lstrip("/").split("/"):
        key = part.replace("~1", "/").replace("~0", "~")
        document = document[int(key)] if isinstance(document, list) else document[key]
    return document


def _number(text: str) -> int | None:
    text = text.strip()
    return None if text == "—" else int(re.sub(r"[^0-9]", "", text))


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_section_is_there_in_order(prepared: Prepared, lang: str) -> None:
    page = render_html(prepared.report, lang)
    assert _parse(page).sections == list(SECTIONS)
    assert f'<html lang="{lang}">' in page
    french = "Exposition aujourd" in page
    assert french == (lang == "fr")
    assert ("Exposure now" in page) == (lang == "en")


def test_french_is_the_default(prepared: Prepared) -> None:
    assert render_html(prepared.report) == render_html(prepared.report, "fr")


@pytest.mark.parametrize("lang", LANGUAGES)
def test_html_figures_are_the_json_figures(prepared: Prepared, lang: str) -> None:
    data = json.loads(json.dumps(prepared.report.to_json()))
    figures = _parse(render_html(prepared.report, lang)).figures
    assert len(figures) > 40
    for pointer, text in figures:
        assert _number(text) == _pointer(data, pointer), pointer
    tagged = {pointer for pointer, _ in figures}
    for index, population in enumerate(data["exposure"]["populations"]):
        names = ["subjects", "past_retention", "held", "undeterminable", "archived"]
        if population["persons"]:
            names += ["with_direct_identifiers", "contact_beyond_minimisation"]
            names += [f"undeterminable_reasons/{r}" for r in population["undeterminable_reasons"]]
        for name in names:
            assert f"/exposure/populations/{index}/{name}" in tagged
    for index in range(len(data["forecast"]["phases"])):
        for month in (0, 3, 6, 12, 24):
            assert f"/forecast/phases/{index}/due_subjects/{month}" in tagged
    assert {"/history/total_runs", "/history/audit/checked", "/inventory/gaps"} <= tagged


def test_the_servers_log_of_changes_is_read_into_the_report(prepared: Prepared) -> None:
    """PostgreSQL here, WAL archiving off: said in the JSON, nothing in the page."""
    log = prepared.report.to_json()["report"]["binary_log"]
    assert log["kind"] == "wal_archive" and log["horizon_days"] is None
    assert log["settings"]["archive_command"] in ("set", "not set")
    page = render_html(prepared.report)
    assert ("data-binary-log" in page) == log["on"]


@pytest.mark.parametrize(
    ("log", "french", "english"),
    [
        (
            binlog_settings({"log_bin": "ON", "binlog_expire_logs_seconds": "864000"}),
            "y restent 10 jour(s) après chaque exécution",
            "stay in them for 10 day(s) after each run",
        ),
        (
            binlog_settings({"log_bin": "ON", "binlog_expire_logs_seconds": "0"}),
            "jusqu'à leur suppression manuelle (PURGE BINARY LOGS)",
            "until they are removed by hand (PURGE BINARY LOGS)",
        ),
        (
            wal_settings({"archive_mode": "on", "archive_command": "rsync %p wal@backup:/x/%f"}),
            "aussi longtemps que l'archive les garde",
            "for as long as the archive keeps it",
        ),
    ],
)
def test_a_log_that_keeps_purged_values_is_stated_in_the_exposure_section(
    prepared: Prepared, log: Any, french: str, english: str
) -> None:
    report = replace(prepared.report, binary_log=log)
    for lang, text in (("fr", french), ("en", english)):
        page = render_html(report, lang)
        exposure = page.split('<section id="exposure"', 1)[1].split("</section>", 1)[0]
        assert f'data-binary-log="{log.kind}"' in exposure
        assert text in exposure.replace("&#x27;", "'")
        assert "wal@backup" not in page
    assert report.to_json()["report"]["binary_log"]["on"] is True


def test_the_report_shows_what_the_demo_did(prepared: Prepared) -> None:
    data = prepared.report.to_json()
    patients = tool_figures(data["exposure"])["public.patients"]
    assert patients["past_retention"] == 0 and patients["contact_beyond_minimisation"] == 0
    assert patients["held"] == 2
    before, after = (s["exposure"]["populations"][0] for s in data["trend"])
    assert before["past_retention"] > 20 and after["past_retention"] == 0
    assert [s["run_id"] for s in data["trend"]] == [None, str(prepared.run.run_id)]
    assert data["inventory"]["gaps"] == 5  # the doctors' table, covered by no policy
    assert data["history"]["audit"]["intact"]


@pytest.mark.parametrize("lang", LANGUAGES)
def test_no_personal_value_in_the_report(prepared: Prepared, lang: str) -> None:
    assert len(prepared.values) > 1000
    text = render_html(prepared.report, lang) + json.dumps(prepared.report.to_json())
    leaks = sorted(v for v in prepared.values if v in text)
    assert leaks == [], f"{len(leaks)} personal value(s) in the report"


def test_the_page_is_self_contained_and_scriptless(prepared: Prepared) -> None:
    page = render_html(prepared.report).lower()
    assert "content-security-policy" in page and "default-src 'none'" in page
    for needle in ("<script", "http://", "https://", "src=", "<link", "@import", "url(", "@font"):
        assert needle not in page, needle
    assert "@media print" in page and "<svg" in page


def test_report_command_writes_html_and_json(prepared: Prepared, tmp_path: Path) -> None:
    out = tmp_path / "rapport.html"
    written = cli(prepared.url, "report", "--at", AT.isoformat(), "--out", str(out))
    assert written.returncode == 0, written.stderr
    assert f"report written to {out}" in written.stdout
    assert _parse(out.read_text(encoding="utf-8")).sections == list(SECTIONS)
    shown = cli(
        prepared.url,
        "report",
        "--at",
        AT.isoformat(),
        "--format",
        "json",
        RETENTION_REQUIRED_APPROVALS="2",  # as the prepared report
    )
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    expected = prepared.report.to_json()
    assert data["exposure"] == expected["exposure"]
    assert data["forecast"] == expected["forecast"]
    assert data["inventory"] == expected["inventory"]
    assert data["history"]["runs"] == expected["history"]["runs"]
    english = cli(prepared.url, "report", "--lang", "en", "--at", AT.isoformat())
    assert english.returncode == 0 and "<h2>" in english.stdout and "Exposure now" in english.stdout


@pytest.mark.parametrize("where", ["missing-folder/r.html", "."])
def test_report_to_an_impossible_place_is_a_clear_error(
    prepared: Prepared, tmp_path: Path, where: str
) -> None:
    result = cli(prepared.url, "report", "--out", str(tmp_path / where))
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def test_every_kind_of_personal_data_has_its_heading_in_both_languages() -> None:
    """An outside review: the HTML report failed (KeyError 'k_identifier') as soon as the scan
    found an identifier column (OpenMRS's patient_identifier.identifier, users.username)."""
    from retention.report.inventory import KINDS
    from retention.report.labels import has, t

    for kind, _ in KINDS:
        assert has(f"k_{kind}"), kind
        assert all(t(f"k_{kind}", lang) for lang in LANGUAGES)
