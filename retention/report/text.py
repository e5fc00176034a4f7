"""The exposure figures for a person at a terminal (`retention exposure`, the demo)."""

from __future__ import annotations

from retention.report import labels as lb
from retention.report.exposure import FIGURES, Exposure, Population

ROWS = FIGURES

# Figures shown with their share of the population (archived subjects are not in it).
SHARES = (
    "with_direct_identifiers",
    "past_retention",
    "contact_beyond_minimisation",
    "held",
    "undeterminable",
)


def render_exposure(exposure: Exposure, lang: str = lb.DEFAULT_LANGUAGE, zone: str = "UTC") -> str:
    """Every population's figures, one per line, with the reasons and notes."""
    lines = [lb.t("exposure_as_of", lang, date=lb.day(exposure.at, lang))]
    if exposure.scan_id is None:
        lines.append("  " + lb.t("no_scan_line", lang))
    else:
        when = lb.moment(exposure.scanned_at, lang, zone) if exposure.scanned_at else "?"
        lines.append("  " + lb.t("scan_line", lang, id=exposure.scan_id, date=when))
    for population in exposure.populations:
        lines.append("")
        lines += _population(population, lang)
    return "\n".join(lines)


def _population(p: Population, lang: str) -> list[str]:
    lines = [f"{p.table}  ({lb.t('policies', lang)}: {', '.join(p.policies)})"]
    width = max(len(_label(name, p, lang)) for name in ROWS)
    for name in ROWS:
        value = p.figure(name)
        share = f"  ({lb.percent(value, p.subjects, lang)})" if name in SHARES else ""
        lines.append(f"  {_label(name, p, lang):<{width}}  {lb.number(value, lang):>9}{share}")
        if name == "undeterminable":
            for reason, count in sorted(p.undeterminable_reasons.items()):
                colon = " :" if lang == "fr" else ":"
                lines.append(f"      {lb.reason(reason, lang)}{colon} {lb.number(count, lang)}")
    lines += [f"  * {lb.t('note_' + note, lang)}" for note in p.notes]
    return lines


def _label(name: str, p: Population, lang: str) -> str:
    if name == "subjects" and not p.persons:
        return lb.t("f_subjects_records", lang)
    return lb.t("f_" + name, lang)


def render_comparison(
    before: Exposure, after: Exposure, lang: str = "en", titles: tuple[str, str] = ("", "")
) -> str:
    """Two exposures side by side (the demo: before and after its run)."""
    first, second = titles or ("before", "after")
    lines = []
    for now in after.populations:
        then = before.population(now.table)
        lines.append(f"{now.table}")
        width = max(len(_label(name, now, lang)) for name in ROWS)
        lines.append(f"  {'':<{width}}  {first:>9}  {second:>9}")
        for name in ROWS:
            old = then.figure(name) if then else None
            lines.append(
                f"  {_label(name, now, lang):<{width}}  {lb.number(old, lang):>9}  "
                f"{lb.number(now.figure(name), lang):>9}"
            )
    return "\n".join(lines)
