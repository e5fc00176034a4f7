"""The report as one self-contained HTML page: inline CSS and SVG, no script, no font, no link
to anything outside the file (a Content-Security-Policy forbids it), printable to PDF.

Every figure the JSON also gives is tagged `data-figure="<JSON pointer>"`, so tools (and the
tests) can check that the page and the JSON say the same thing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from html import escape

from retention.engines.binlog import days
from retention.report import labels as lb
from retention.report.build import Report
from retention.report.exposure import Population
from retention.report.forecast import PhaseForecast
from retention.report.history import Run
from retention.report.inventory import Cell, InventoryColumn
from retention.report.svg import Series, bar_chart, line_chart
from retention.report.text import SHARES as _SHARES

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
FORECAST_COLUMNS = (0, 3, 6, 12, 24)  # today, then +n month ends
_TONES = {"completed": "good", "interrupted": "warn", "failed": "bad", "abandoned": "bad"}
_TREND = (
    ("subjects", "#7b8594", True),
    ("with_direct_identifiers", "#1f3a5f", False),
    ("contact_beyond_minimisation", "#b26a00", False),
    ("past_retention", "#b3261e", False),
)

STYLE = """
:root { --ink:#1d2733; --muted:#5b6472; --navy:#1f3a5f; --line:#d9dee7; --soft:#f5f7fa;
  --good:#1b6e3c; --good-bg:#e5f3ea; --bad:#a4231a; --bad-bg:#fbe9e7; --warn:#7a4a00;
  --warn-bg:#fdf1dc; --kept:#2c4a70; --kept-bg:#e7edf6; }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0; color: var(--ink); background: #fff; line-height: 1.45; font-size: 15px;
  font-family: "Segoe UI", "Helvetica Neue", Arial, "Liberation Sans", "DejaVu Sans",
  sans-serif; font-variant-numeric: tabular-nums; }
main { max-width: 1160px; margin: 0 auto; padding: 0 36px 40px; }
header.top { background: var(--navy); color: #fff; }
header.top .inner { max-width: 1160px; margin: 0 auto; padding: 26px 36px 22px; }
.eyebrow { text-transform: uppercase; letter-spacing: .08em; font-size: 12px; opacity: .85; }
h1 { font-size: 30px; margin: 6px 0 8px; font-weight: 650; letter-spacing: -.01em; }
.meta { margin: 0; font-size: 14px; opacity: .92; }
.meta b { font-weight: 600; }
nav.toc { margin-top: 14px; font-size: 14px; }
nav.toc a { color: #fff; text-decoration: none; margin-right: 22px;
  border-bottom: 1px solid rgba(255,255,255,.45); }
section { padding-top: 30px; }
h2 { font-size: 23px; color: var(--navy); margin: 0 0 4px; padding-bottom: 8px;
  border-bottom: 2px solid var(--navy); font-weight: 650; break-after: avoid; }
h2 .n { display: inline-block; min-width: 30px; height: 30px; line-height: 30px;
  border-radius: 50%; background: var(--navy); color: #fff; text-align: center;
  font-size: 16px; margin-right: 10px; vertical-align: 2px; }
h3 { font-size: 17px; margin: 26px 0 8px; color: var(--ink); font-weight: 650;
  break-after: avoid; }
h3 small { font-weight: 400; color: var(--muted); font-size: 13px; margin-left: 8px; }
p.intro { color: var(--muted); margin: 8px 0 14px; max-width: 860px; }
.headline { font-size: 19px; margin: 16px 0 6px; padding: 14px 18px; background: var(--soft);
  border-left: 5px solid var(--navy); border-radius: 3px; }
.cards { display: grid; grid-template-columns: repeat(4, 1fr); gap: 12px; }
.cards.secondary { grid-template-columns: repeat(3, 1fr); margin-top: 12px; }
.cards.secondary .big { font-size: 28px; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 13px 15px 12px;
  background: #fff; break-inside: avoid; border-top: 4px solid var(--line); }
.card .label { font-size: 13.5px; font-weight: 600; color: var(--ink); }
.card .big { display: block; font-size: 36px; font-weight: 700; line-height: 1.15;
  margin: 4px 0 2px; color: var(--navy); letter-spacing: -.01em; }
.card .sub { font-size: 12.5px; color: var(--muted); }
.card.good { border-top-color: var(--good); } .card.good .big { color: var(--good); }
.card.bad { border-top-color: var(--bad); background: var(--bad-bg); }
.card.bad .big { color: var(--bad); }
.card.warn { border-top-color: #d08a1c; } .card.warn .big { color: var(--warn); }
.card ul { margin: 6px 0 0; padding-left: 18px; font-size: 12.5px; }
.notes { font-size: 13px; color: var(--muted); margin: 10px 0 0; padding-left: 18px; }
table { border-collapse: collapse; width: 100%; font-size: 13.5px; margin: 6px 0 4px; }
th, td { text-align: left; padding: 6px 9px; border-bottom: 1px solid var(--line);
  vertical-align: top; }
th { font-size: 11.5px; text-transform: uppercase; letter-spacing: .03em; color: var(--muted);
  font-weight: 600; background: var(--soft); line-height: 1.3; }
td.num, th.num { text-align: right; }
td.num { white-space: nowrap; }
td code { overflow-wrap: anywhere; }
tr { break-inside: avoid; }
code, .mono { font-family: "DejaVu Sans Mono", "Liberation Mono", Consolas, monospace;
  font-size: 12px; }
.chart { width: 100%; height: auto; display: block; }
.figure { border: 1px solid var(--line); border-radius: 6px; padding: 12px 14px 8px;
  break-inside: avoid; background: #fff; }
.heat td, .heat th { border: 1px solid #fff; }
.heat th { overflow-wrap: break-word; hyphens: auto; }
.heat th.table { text-transform: none; letter-spacing: 0; font-size: 12.5px; color: var(--ink);
  overflow-wrap: anywhere; background: #fff; }
.heat { table-layout: fixed; }
.heat th:first-child { width: 172px; }
.heat td { font-size: 11px; line-height: 1.3; overflow-wrap: break-word; }
.heat td.covered { background: var(--good-bg); color: #14532d; }
.heat td.kept { background: var(--kept-bg); color: var(--kept); }
.heat td.gap { background: var(--bad-bg); color: var(--bad); font-weight: 600; }
.heat td.empty { background: #fafbfc; color: #b5bcc7; text-align: center; }
.heat .cols { font-family: "DejaVu Sans Mono", "Liberation Mono", monospace; font-size: 10.5px; }
.heat .by { margin-top: 3px; font-weight: 400; }
.heat .conf { margin-top: 2px; opacity: .85; }
.legend { display: flex; gap: 18px; flex-wrap: wrap; font-size: 12.5px; color: var(--muted);
  margin: 8px 0 0; }
.swatch { display: inline-block; width: 14px; height: 14px; border-radius: 2px;
  vertical-align: -2px; margin-right: 6px; border: 1px solid rgba(0,0,0,.25); }
.badge { display: inline-block; font-size: 12px; font-weight: 600; padding: 2px 8px;
  border-radius: 10px; background: var(--soft); color: var(--muted); white-space: nowrap; }
.badge.good { background: var(--good-bg); color: var(--good); }
.badge.bad { background: var(--bad-bg); color: var(--bad); }
.badge.warn { background: var(--warn-bg); color: var(--warn); }
.grid2 { display: grid; grid-template-columns: 1fr 1fr; gap: 14px; }
.phase h4 { margin: 0; font-size: 15px; }
.phase h4 .action { font-weight: 400; color: var(--muted); }
.phase .flags { margin: 6px 0 4px; display: flex; gap: 6px; flex-wrap: wrap; }
.phase .summary { font-size: 13px; color: var(--muted); margin: 2px 0 6px; }
.phase .summary b { color: var(--ink); }
.status { padding: 12px 16px; border-radius: 6px; font-weight: 600; margin: 14px 0 4px; }
.status.good { background: var(--good-bg); color: var(--good); }
.status.bad { background: var(--bad-bg); color: var(--bad); }
.status.warn { background: var(--warn-bg); color: var(--warn); }
tr.work td { border-bottom: 1px dashed var(--line); color: var(--muted); font-size: 12.5px;
  padding-top: 3px; padding-bottom: 3px; }
tr.work td:first-child { padding-left: 26px; }
.muted { color: var(--muted); }
footer { margin-top: 34px; padding-top: 12px; border-top: 1px solid var(--line);
  color: var(--muted); font-size: 12.5px; }
@media (max-width: 900px) { .cards, .cards.secondary { grid-template-columns: repeat(2, 1fr); }
  .grid2 { grid-template-columns: 1fr; } }
@page { size: A4; margin: 12mm; }
@media print {
  body { font-size: 10.5pt; }
  main { padding: 0; max-width: none; }
  header.top { background: #fff; color: var(--ink); border-bottom: 3px solid var(--navy); }
  header.top .inner { padding: 0 0 10px; }
  nav.toc { display: none; }
  section { padding-top: 16px; }
  #inventory, #forecast, #history { break-before: page; }
  .card.bad { background: #fff; }
  .grid2 { grid-template-columns: 1fr; }
  .heat th:first-child { width: 118px; }
  .heat th { font-size: 9.5px; letter-spacing: 0; }
}
"""


def render_html(report: Report, lang: str = lb.DEFAULT_LANGUAGE) -> str:
    """The whole page."""
    return _Page(report, lang).render()


def _e(value: object) -> str:
    return escape(str(value), quote=True)


class _Page:
    def __init__(self, report: Report, lang: str) -> None:
        self.r = report
        self.lang = lang

    def t(self, key: str, **values: object) -> str:
        return lb.t(key, self.lang, **values)

    def n(self, value: int | None) -> str:
        return lb.number(value, self.lang)

    def markup(self, key: str, **html: str) -> str:
        """The label `key`, escaped, with its fields replaced by HTML already safe."""
        marks = {name: f"\x00{i}\x00" for i, name in enumerate(html)}
        text = _e(self.t(key, **marks))
        for name, mark in marks.items():
            text = text.replace(mark, html[name])
        return text

    def fig(self, path: str, value: int | None, tag: str = "span", cls: str = "") -> str:
        klass = f' class="{cls}"' if cls else ""
        return f'<{tag}{klass} data-figure="{_e(path)}">{_e(self.n(value))}</{tag}>'

    def render(self) -> str:
        body = "\n".join(
            [
                self.header(),
                "<main>",
                self.exposure(),
                self.inventory(),
                self.forecast(),
                self.history(),
                self.footer(),
                "</main>",
            ]
        )
        return (
            f'<!DOCTYPE html>\n<html lang="{self.lang}">\n<head>\n<meta charset="utf-8">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
            f'<meta name="generator" content="retention report">\n'
            f"<title>{_e(self.t('title'))} · {_e(self.r.database)}</title>\n"
            f"<style>{STYLE}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
        )

    # -- header and footer --------------------------------------------------------------------
    def header(self) -> str:
        r = self.r
        meta = (
            f"{_e(self.t('database'))} <b>{_e(r.database)}</b> · {_e(self.t('as_of'))} "
            f"<b>{_e(lb.day(r.at, self.lang))}</b> · {_e(self.t('generated'))} "
            f"{_e(lb.moment(r.generated_at, self.lang, r.timezone))} ({_e(r.timezone)}) · "
            f"{len(r.policies)} {_e(self.t('policies_count'))}"
        )
        links = " ".join(
            f'<a href="#{ident}">{i}. {_e(self.t(key))}</a>'
            for i, (ident, key) in enumerate(_SECTIONS, start=1)
        )
        return (
            '<header class="top"><div class="inner">'
            f'<div class="eyebrow">{_e(self.t("eyebrow"))}</div>'
            f"<h1>{_e(self.t('title'))}</h1>"
            f'<p class="meta">{meta}</p>'
            f'<nav class="toc" aria-label="{_e(self.t("toc"))}">{links}</nav>'
            "</div></header>"
        )

    def footer(self) -> str:
        return (
            f"<footer><p><strong>{_e(self.t('no_personal'))}</strong></p>"
            f"<p>{_e(self.t('footer_method'))}</p></footer>"
        )

    def section(self, ident: str, body: Iterable[str]) -> str:
        number = next(i for i, (name, _) in enumerate(_SECTIONS, start=1) if name == ident)
        title = self.t(dict(_SECTIONS)[ident])
        return (
            f'<section id="{ident}" data-section="{ident}">'
            f'<h2><span class="n">{number}</span>{_e(title)}</h2>' + "\n".join(body) + "</section>"
        )

    # -- 1. exposure --------------------------------------------------------------------------
    def exposure(self) -> str:
        exposure = self.r.exposure
        parts = [f'<p class="intro">{_e(self.t("exposure_intro"))}</p>']
        persons = exposure.persons
        if persons:
            subjects = sum(p.subjects for p in persons)
            past = sum(p.past_retention or 0 for p in persons)
            parts.append(
                '<p class="headline">'
                + self.markup(
                    "headline",
                    subjects=f"<strong>{_e(self.n(subjects))}</strong>",
                    past=f"<strong>{_e(self.n(past))}</strong>",
                )
                + "</p>"
            )
        for index, population in enumerate(exposure.populations):
            if population.persons:
                parts.append(self.population(index, population))
        others = [(i, p) for i, p in enumerate(exposure.populations) if not p.persons]
        if others:
            parts.append(self.other_populations(others))
        parts.append(self.binary_log())
        parts.append(self.trend())
        return self.section("exposure", parts)

    def binary_log(self) -> str:
        """What stays in the server's log of changes (binlog, archived WAL), when it is on."""
        log = self.r.binary_log
        if not log.on:
            return ""
        settings = ", ".join(f"{name}={value}" for name, value in log.settings.items())
        return (
            f"<h3>{_e(self.t('outside_tables'))}</h3>"
            f'<p class="status warn" data-binary-log="{_e(log.kind)}">'
            f"{_e(self.t(lb.binary_log_label(log), days=days(log.horizon_days or 0)))} "
            f"<small>({_e(settings)})</small></p>"
        )

    def population(self, index: int, p: Population) -> str:
        path = _ptr("exposure", "populations", index)
        primary = [
            self.card(path, p, "subjects", ""),
            self.card(path, p, "with_direct_identifiers", ""),
            self.card(path, p, "past_retention", _tone(p.past_retention, "bad")),
            self.card(
                path, p, "contact_beyond_minimisation", _tone(p.contact_beyond_minimisation, "warn")
            ),
        ]
        secondary = [
            self.card(path, p, "archived", ""),
            self.card(path, p, "held", ""),
            self.undeterminable_card(path, p),
        ]
        notes = "".join(f"<li>{_e(self.t('note_' + note))}</li>" for note in p.notes)
        return (
            f"<h3>{_e(p.table)}<small>{_e(self.t('policies'))} : "
            f"{_e(', '.join(p.policies))}</small></h3>"
            f'<div class="cards">{"".join(primary)}</div>'
            f'<div class="cards secondary">{"".join(secondary)}</div>'
            + (f'<ul class="notes">{notes}</ul>' if notes else "")
        )

    def card(self, path: str, p: Population, name: str, tone: str) -> str:
        """One figure: its label, the number, its share of the population, what it means."""
        value = p.figure(name)
        share = ""
        if name in _SHARES and value is not None:
            share = self.t("of_subjects", pct=lb.percent(value, p.subjects, self.lang))
        detail = self.t(f"f_{name}_sub") if lb.has(f"f_{name}_sub") else ""
        text = " · ".join(x for x in (share, detail) if x)
        return (
            f'<div class="card {tone}"><div class="label">{_e(self.t("f_" + name))}</div>'
            + self.fig(f"{path}/{name}", value, cls="big")
            + f'<div class="sub">{_e(text)}</div></div>'
        )

    def undeterminable_card(self, path: str, p: Population) -> str:
        reasons = "".join(
            f"<li>{_e(lb.reason(reason, self.lang))} : "
            f"{self.fig(path + _ptr('undeterminable_reasons', reason), count)}</li>"
            for reason, count in sorted(p.undeterminable_reasons.items())
        )
        card = self.card(path, p, "undeterminable", _tone(p.undeterminable, "warn"))
        if not reasons:
            return card
        return card[: -len("</div>")] + f"<ul>{reasons}</ul></div>"

    def other_populations(self, others: list[tuple[int, Population]]) -> str:
        names = ("subjects", "past_retention", "held", "undeterminable", "archived")
        head = "".join(
            f'<th class="num">{_e(self.t("f_subjects_records" if n == "subjects" else "f_" + n))}'
            "</th>"
            for n in names
        )
        rows = "".join(
            f"<tr><td><code>{_e(p.table)}</code> <span class='muted'>"
            f"({_e(', '.join(p.policies))})</span></td>"
            + "".join(
                self.fig(_ptr("exposure", "populations", i, n), p.figure(n), "td", "num")
                for n in names
            )
            + "</tr>"
            for i, p in others
        )
        return (
            f"<h3>{_e(self.t('other_populations'))}</h3>"
            f'<p class="intro">{_e(self.t("other_populations_intro"))}</p>'
            f"<table><thead><tr><th>{_e(self.t('table'))}</th>{head}</tr></thead>"
            f"<tbody>{rows}</tbody></table>"
        )

    def trend(self) -> str:
        parts = [
            f"<h3>{_e(self.t('trend'))}</h3>",
            f'<p class="intro">{_e(self.t("trend_intro"))}</p>',
        ]
        if not self.r.trend:
            parts.append(f'<p class="muted">{_e(self.t("trend_empty"))}</p>')
        for population in self.r.exposure.persons:
            parts.append(self.trend_of(population))
        return "\n".join(parts)

    def trend_of(self, now: Population) -> str:
        points: list[tuple[str, str, Population | None]] = []
        for s in self.r.trend:
            when = lb.moment(s.taken_at, self.lang, self.r.timezone)
            kind = self.t("before_runs") if s.run_id is None else self.t("after_run")
            points.append((when, kind, s.exposure.population(now.table)))
        points.append((lb.short_day(self.r.at, self.lang), self.t("now"), now))
        labels = [f"{when[:5]}\n{kind}" for when, kind, _ in points]
        series = [
            Series(
                self.t("f_" + name),
                color,
                tuple(p.figure(name) if p else None for _, _, p in points),
                dashed,
            )
            for name, color, dashed in _TREND
        ]
        chart = line_chart(
            series,
            labels,
            title=f"{self.t('trend')} — {now.table}",
            desc=self.t("trend_intro"),
            ident=f"trend-{_ident(now.table)}",
            fmt=self.n,
        )
        names = ("subjects", *(n for n, _, _ in _TREND[1:]), "archived", "undeterminable")
        head = "".join(f'<th class="num">{_e(self.t("f_" + n))}</th>' for n in names)
        rows = "".join(
            f"<tr><td>{_e(when)} <span class='muted'>{_e(kind)}</span></td>"
            + "".join(
                f'<td class="num">{_e(self.n(p.figure(n) if p else None))}</td>' for n in names
            )
            + "</tr>"
            for when, kind, p in points
        )
        return (
            f'<div class="figure">{chart}</div>'
            f"<table><thead><tr><th>{_e(self.t('snapshot'))}</th>{head}</tr></thead>"
            f"<tbody>{rows}</tbody></table>"
        )

    # -- 2. inventory -------------------------------------------------------------------------
    def inventory(self) -> str:
        inv = self.r.inventory
        if inv.scan_id is None:
            return self.section(
                "inventory", [f'<p class="intro">{_e(self.t("inventory_none"))}</p>']
            )
        when = lb.moment(inv.scanned_at, self.lang, self.r.timezone) if inv.scanned_at else "?"
        total, gaps = len(inv.columns), len(inv.gaps)
        summary_html = self.markup(
            "covered_count",
            covered=self.fig("/inventory/covered", total - gaps, "b"),
            total=f"<b>{_e(self.n(total))}</b>",
            gaps=self.fig("/inventory/gaps", gaps, "b"),
        )
        parts = [
            f'<p class="intro">{_e(self.t("inventory_intro"))} '
            f"{_e(self.t('scan_of', id=inv.scan_id, date=when))}.</p>",
            f"<p>{summary_html}</p>",
            self.heatmap(),
            self.legend(),
            self.gaps(),
            f"<h3>{_e(self.t('details'))}</h3>",
            self.inventory_table(inv.columns),
        ]
        return self.section("inventory", parts)

    def heatmap(self) -> str:
        inv = self.r.inventory
        head = "".join(f"<th>{_e(self.t('k_' + kind))}</th>" for kind in inv.kinds)
        rows = []
        for table in inv.tables:
            cells = "".join(self.heat_cell(inv.cell(table, kind)) for kind in inv.kinds)
            rows.append(f'<tr><th class="table" scope="row">{_e(table)}</th>{cells}</tr>')
        return (
            f'<table class="heat"><thead><tr><th>{_e(self.t("table"))}</th>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table>"
        )

    def heat_cell(self, cell: Cell | None) -> str:
        if cell is None:
            return '<td class="empty">·</td>'
        columns = " · ".join(c.column for c in cell.columns)
        by = sorted({b.split(" (")[0] for c in cell.columns for b in c.by})
        what = "<br>".join(_e(b).replace("/", "/<wbr>") for b in by) or _e(self.t("gap"))
        title = "; ".join(f"{c.column}: {', '.join(c.by) or self.t('gap')}" for c in cell.columns)
        confidence = lb.percent(round(cell.confidence * 100), 100, self.lang)
        return (
            f'<td class="{cell.status}" title="{_e(title)}">'
            f'<div class="cols">{_e(columns)}</div><div class="by">{what}</div>'
            f'<div class="conf">{_e(confidence)}</div></td>'
        )

    def legend(self) -> str:
        items = (
            ("var(--good-bg)", "covered"),
            ("var(--kept-bg)", "kept"),
            ("var(--bad-bg)", "gap"),
        )
        return (
            '<div class="legend">'
            + "".join(
                f'<span><span class="swatch" style="background:{color}"></span>{_e(self.t(key))}'
                "</span>"
                for color, key in items
            )
            + "</div>"
        )

    def gaps(self) -> str:
        gaps = self.r.inventory.gaps
        if not gaps:
            return f'<p class="status good">{_e(self.t("no_gaps"))}</p>'
        return f"<h3>{_e(self.t('gaps_title'))}</h3>" + self.inventory_table(gaps)

    def inventory_table(self, columns: Sequence[InventoryColumn]) -> str:
        rows = "".join(
            f"<tr><td><code>{_e(c.table_label)}.{_e(c.column)}</code></td>"
            f"<td>{_e(self.t('k_' + c.kind))} <span class='muted'>({_e(c.entity)})</span></td>"
            f'<td class="num">{_e(lb.percent(round(c.score * 100), 100, self.lang))}</td>'
            f'<td><span class="badge {_STATUS_TONE[c.status]}">{_e(self.t(c.status))}</span> '
            f"{_e('; '.join(c.by))}</td></tr>"
            for c in columns
        )
        return (
            f"<table><thead><tr><th>{_e(self.t('column'))}</th><th>{_e(self.t('kind'))}</th>"
            f'<th class="num">{_e(self.t("confidence"))}</th>'
            f"<th>{_e(self.t('covered_by'))}</th></tr></thead><tbody>{rows}</tbody></table>"
        )

    # -- 3. forecast --------------------------------------------------------------------------
    def forecast(self) -> str:
        fc = self.r.forecast
        cards = [self.forecast_phase(i, p) for i, p in enumerate(fc.phases)]
        parts = [
            f'<p class="intro">{_e(self.t("forecast_intro"))}</p>',
            f'<div class="grid2">{"".join(cards)}</div>',
            f"<h3>{_e(self.t('cumulative'))}</h3>",
            self.forecast_table(),
        ]
        return self.section("forecast", parts)

    def forecast_phase(self, index: int, p: PhaseForecast) -> str:
        dates = self.r.forecast.dates
        labels = [f"{lb.month(d, self.lang)}\n{d.year}" for d in dates[1:]]
        monthly = list(p.newly_due[1:])
        chart = bar_chart(
            monthly,
            labels,
            title=f"{p.label}: {self.t('newly_due')}",
            desc=f"{self.t('newly_due')} ({p.subject_table})",
            ident=f"forecast-{index}",
            fmt=self.n,
        )
        flags = self.phase_flags(p)
        last = len(dates) - 1
        summary = (
            f"<b>{self.fig(f'/forecast/phases/{index}/due_subjects/0', p.due[0])}</b> "
            f"{_e(self.t('due_today'))} ({_e(self.t('due_today_note'))}) · "
            f"{_e(self.t('in_months', n=last))} : "
            f"<b>+{_e(self.n(p.due[last] - p.due[0]))}</b>"
        )
        return (
            f'<div class="figure phase"><h4>{_e(p.policy)} / {_e(p.phase)} '
            f'<span class="action">— {_e(self.t("a_" + p.action))} · '
            f"<code>{_e(p.subject_table)}</code></span></h4>"
            f'<div class="flags">{flags}</div><p class="summary">{summary}</p>'
            f"<div class='muted' style='font-size:12px'>{_e(self.t('newly_due'))}</div>"
            f"{chart}</div>"
        )

    def phase_flags(self, p: PhaseForecast) -> str:
        flags = []
        if p.approval is not None:
            values = {"given": p.approval.given, "required": p.approval.required}
            if p.approval.required == 0:
                flags.append(f'<span class="badge">{_e(self.t("approval_off"))}</span>')
            elif p.approval.approved:
                flags.append(
                    f'<span class="badge good">{_e(self.t("approval_ok", **values))}</span>'
                )
            else:
                flags.append(
                    f'<span class="badge warn">{_e(self.t("approval_pending", **values))}</span>'
                )
        if p.active_holds:
            flags.append(
                f'<span class="badge">{_e(self.t("holds_active", n=self.n(p.active_holds)))}</span>'
            )
        if p.held[0]:
            flags.append(
                f'<span class="badge">{_e(self.t("held_due", n=self.n(p.held[0])))}</span>'
            )
        return "".join(flags)

    def forecast_table(self) -> str:
        fc = self.r.forecast
        columns = [i for i in FORECAST_COLUMNS if i < len(fc.dates)]
        head = "".join(
            f'<th class="num">{_e(self._column_title(i, fc.dates[i]))}</th>' for i in columns
        )
        rows = "".join(
            f"<tr><td>{_e(p.policy)} / {_e(p.phase)} "
            f"<span class='muted'>({_e(self.t('a_' + p.action))})</span></td>"
            + "".join(
                self.fig(f"/forecast/phases/{index}/due_subjects/{i}", p.due[i], "td", "num")
                for i in columns
            )
            + self.fig(f"/forecast/phases/{index}/held_subjects/0", p.held[0], "td", "num")
            + "</tr>"
            for index, p in enumerate(fc.phases)
        )
        return (
            f"<table><thead><tr><th>{_e(self.t('phase'))}</th>{head}"
            f'<th class="num">{_e(self.t("held_col"))}</th></tr></thead>'
            f"<tbody>{rows}</tbody></table>"
        )

    def _column_title(self, index: int, day: date) -> str:
        if index == 0:
            return f"{self.t('today')} ({lb.short_day(day, self.lang)})"
        return f"{self.t('plus_months', n=index)} ({lb.short_day(day, self.lang)})"

    # -- 4. history ---------------------------------------------------------------------------
    def history(self) -> str:
        h = self.r.history
        parts = [f'<p class="intro">{_e(self.t("history_intro"))}</p>']
        if not h.installed:
            parts.append(f'<p class="muted">{_e(self.t("history_none"))}</p>')
        else:
            parts.append(self.audit_status())
            parts.append(self.runs())
            parts.append(self.incidents())
        parts.append(self.versions())
        return self.section("history", parts)

    def audit_status(self) -> str:
        check = self.r.history.verification
        if check is None:
            return ""
        checked = self.fig("/history/audit/checked", check.checked)
        head = self.r.history.anchored
        said = self.t("audit_head_file" if head else "audit_no_head_file")
        note = f' <small data-audit-head="{str(head).lower()}">{_e(said)}</small>'
        if check.intact:
            text = self.markup("audit_ok", n=checked)
            return f'<p class="status good" data-audit="intact">✔ {text}{note}</p>'
        if check.anchored:
            text = self.markup(
                "audit_broken_anchored", seq=_e(check.broken_seq), problem=_e(check.problem)
            )
        else:
            text = self.markup(
                "audit_broken", seq=_e(check.broken_seq), problem=_e(check.problem), n=checked
            )
        return f'<p class="status bad" data-audit="broken">✖ {text}{note}</p>'

    def runs(self) -> str:
        h = self.r.history
        outcomes = ", ".join(
            f"{self.n(count)} {self.t('o_' + outcome) if lb.has('o_' + outcome) else outcome}"
            for outcome, count in h.outcomes.items()
        )
        head = (
            f"<h3>{_e(self.t('runs'))}<small>"
            + self.markup("runs_summary", n=self.fig("/history/total_runs", h.total_runs))
            + (f" ({_e(outcomes)})" if outcomes else "")
            + (
                f" · {_e(self.t('runs_shown', n=len(h.runs)))}"
                if h.total_runs > len(h.runs)
                else ""
            )
            + "</small></h3>"
        )
        if not h.runs:
            return head + f'<p class="muted">{_e(self.t("no_runs"))}</p>'
        columns = ("started", "duration", "outcome", "command")
        rows = "".join(self.run_rows(i, run) for i, run in enumerate(h.runs))
        return (
            head
            + "<table><thead><tr>"
            + "".join(f"<th>{_e(self.t(c))}</th>" for c in columns)
            + f'<th class="num">{_e(self.t("subjects"))}</th>'
            f'<th class="num">{_e(self.t("rows"))}</th></tr></thead>'
            f"<tbody>{rows}</tbody></table>"
        )

    def run_rows(self, index: int, run: Run) -> str:
        zone = self.r.timezone
        outcome = self.t("o_" + run.outcome) if lb.has("o_" + run.outcome) else run.outcome
        tone = _TONES.get(run.outcome, "")
        took = lb.duration(run.ended_at - run.started_at) if run.ended_at else "—"
        started = lb.moment(run.started_at, self.lang, zone, seconds=True)
        out = [
            f"<tr><td>{_e(started)}</td><td>{_e(took)}</td>"
            f'<td><span class="badge {tone}">{_e(outcome)}</span></td>'
            f"<td><code>{_e(run.command)}</code></td>"
            + self.fig(f"/history/runs/{index}/subjects", run.subjects, "td", "num")
            + self.fig(f"/history/runs/{index}/rows", run.rows, "td", "num")
            + "</tr>"
        ]
        for work in run.work:
            rows = " · ".join(f"{t} {self.n(n)}" for t, n in sorted(work.rows.items()) if n)
            out.append(
                f'<tr class="work"><td colspan="4">{_e(work.policy)} / {_e(work.phase)} '
                f"({_e(self.t('a_' + work.action) if lb.has('a_' + work.action) else work.action)})"
                f" — {_e(rows or '0')}</td>"
                f'<td class="num">{_e(self.n(work.subjects))}</td>'
                f'<td class="num">{_e(self.n(sum(work.rows.values())))}</td></tr>'
            )
        return "".join(out)

    def incidents(self) -> str:
        found = self.r.history.incidents
        head = f"<h3>{_e(self.t('incidents'))}</h3>"
        if not found:
            return head + f'<p class="muted">{_e(self.t("no_incidents"))}</p>'
        rows = "".join(
            f"<tr><td>{_e(lb.moment(i.recorded_at, self.lang, self.r.timezone))}</td>"
            f"<td>{_e(self.t('e_' + i.event) if lb.has('e_' + i.event) else i.event)}</td>"
            f"<td>{_e('/'.join(x for x in (i.policy, i.phase) if x) or '—')}</td>"
            f"<td>{_e(i.message or '')}</td><td class='num'>#{i.seq}</td></tr>"
            for i in found
        )
        columns = ("date", "event", "policy", "message")
        return (
            head
            + "<table><thead><tr>"
            + "".join(f"<th>{_e(self.t(c))}</th>" for c in columns)
            + f'<th class="num">{_e(self.t("entry"))}</th></tr></thead>'
            f"<tbody>{rows}</tbody></table>"
        )

    def versions(self) -> str:
        h = self.r.history
        zone = self.r.timezone
        rows = []
        for v in h.versions:
            state = self.t("current") if v.current else self.t("former")
            if v.first_seen and v.last_seen and v.batches:
                acted = self.t(
                    "batches_between",
                    n=self.n(v.batches),
                    first=lb.moment(v.first_seen, self.lang, zone),
                    last=lb.moment(v.last_seen, self.lang, zone),
                )
            else:
                acted = self.t("never_acted")
            approvals = "<br>".join(
                f"{_e(a.by)} <span class='muted'>({_e(a.role)}, "
                f"{_e(lb.moment(a.at, self.lang, zone))})</span>"
                + (f" <span class='badge warn'>{_e(a.problem)}</span>" if a.problem else "")
                for a in v.approvals
            ) or _e(self.t("none"))
            rows.append(
                f"<tr><td>{_e(v.policy)}</td><td><code>{_e(v.sha256)}</code><br>"
                f'<span class="badge {"good" if v.current else ""}">{_e(state)}</span></td>'
                f"<td>{_e(acted)}</td><td>{approvals}</td></tr>"
            )
        return (
            f"<h3>{_e(self.t('versions'))}</h3>"
            f'<p class="intro">{_e(self.t("versions_intro", n=h.required_approvals))}</p>'
            f"<table><thead><tr><th>{_e(self.t('policy'))}</th><th>{_e(self.t('version'))}</th>"
            f"<th>{_e(self.t('acted'))}</th><th>{_e(self.t('approvals'))}</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>"
        )


_SECTIONS = (
    ("exposure", "s_exposure"),
    ("inventory", "s_inventory"),
    ("forecast", "s_forecast"),
    ("history", "s_history"),
)
_STATUS_TONE = {"covered": "good", "kept": "", "gap": "bad"}


def _tone(value: int | None, when_positive: str) -> str:
    if value is None:
        return ""
    return when_positive if value > 0 else "good"


def _ptr(*parts: object) -> str:
    """A JSON pointer (RFC 6901) to a figure of the JSON report."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def _ident(text: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in text)


__all__ = ["CSP", "render_html"]
