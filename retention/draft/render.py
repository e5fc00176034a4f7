"""The draft as YAML text: a policy file whose every guess carries its evidence as a comment.

What only the compliance officer can decide (the dates the law counts from, `retain_until`,
the phases) is written as comments: the file is refused by `check` until they are written,
so a draft can never run as it stands.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, date

from retention.catalog.introspect import Catalog
from retention.catalog.references import PolymorphicPair
from retention.draft.columns import Minimisation, PersonalColumn
from retention.draft.dates import DateCandidate
from retention.draft.graph import Doubt, DraftGraph, Found, percent
from retention.draft.model import Draft
from retention.policy.schema import MODELINE

QName = tuple[str, str]
_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_RESERVED = {"true", "false", "null", "yes", "no", "on", "off", "y", "n", "~"}
_COMMENT = 40  # column where evidence comments start


def scalar(text: str) -> str:
    """A YAML scalar: plain when safe, else double-quoted (JSON's quoting is YAML's)."""
    if _PLAIN.fullmatch(text) and text.lower() not in _RESERVED:
        return text
    return json.dumps(text, ensure_ascii=False)


def table_ref(catalog: Catalog, table: QName) -> str:
    """The table as a policy names it: bare when the search path finds it, else qualified."""
    found = catalog.find(table[1])
    return table[1] if found is not None and found.qname == table else f"{table[0]}.{table[1]}"


def _line(text: str, comment: str | None = None) -> str:
    if comment is None:
        return text
    return f"{text.ljust(_COMMENT - 1)} # {comment}"


def policy_name(table: QName) -> str:
    name = re.sub(r"[^a-z0-9_-]+", "-", table[1].lower()).strip("-_") or "subject"
    return name[:62]


def core_yaml(catalog: Catalog, graph: DraftGraph) -> str:
    """name, subject and related: the part of the draft a policy keeps as it is."""
    subject = graph.subject
    lines = [
        f"name: {policy_name(subject.qname)}",
        f"title: {scalar(f'Draft: records of {subject.label}')}",
        "",
        "subject:",
        f"  table: {scalar(table_ref(catalog, subject.qname))}",
        _line(f"  key: {scalar(graph.key)}", _key_note(graph)),
        "",
    ]
    lines += _related(catalog, graph)
    return "\n".join(lines) + "\n"


def _key_note(graph: DraftGraph) -> str:
    if graph.subject.primary_key == (graph.key,):
        return "primary key"
    return "unique key"


def _related(catalog: Catalog, graph: DraftGraph) -> list[str]:
    fks = [f for f in graph.links if f.kind == "foreign key"]
    declared = graph.declared()
    lines = ["related:"]
    if fks:
        lines.append("  # Followed by themselves (foreign keys), listed for review:")
        lines += [f"  #   {_fk_line(f)}" for f in fks]
    if not declared:
        lines.append(_line("  links: []", "no reference without a foreign key found"))
    else:
        lines.append(_line("  links:", "references without a foreign key"))
    columns = [f for f in declared if f.kind == "column"]
    for link in columns:
        lines.append(_line(f"    - table: {scalar(table_ref(catalog, link.child))}", link.evidence))
        lines.append(f"      column: {scalar(link.column)}")
        if link.parent != graph.subject.qname:
            lines.append(f"      references: {scalar(table_ref(catalog, link.parent))}")
    groups: dict[tuple[QName, str, str], list[Found]] = defaultdict(list)
    for link in declared:
        if link.kind == "polymorphic" and link.class_column is not None:
            groups[(link.child, link.class_column, link.column)].append(link)
    for (child, class_column, id_column), links in groups.items():
        lines += [
            f"    - table: {scalar(table_ref(catalog, child))}",
            "      polymorphic:",
            f"        class_column: {scalar(class_column)}",
            f"        id_column: {scalar(id_column)}",
            "        classes:",
        ]
        for link in sorted(links, key=lambda f: f.class_value or ""):
            parent = scalar(table_ref(catalog, link.parent))
            entry = f"          {scalar(link.class_value or '')}: {parent}"
            lines.append(_line(entry, link.evidence))
        lines += _undecided(catalog, [d for d in graph.doubts if _same_pair(d, links[0])])
    if graph.excluded:
        lines.append(_line("  exclude:", "tables a foreign key reaches that may not belong"))
        lines += [
            _line(f"    - {scalar(table_ref(catalog, table))}", f"{why}, nullable")
            for table, why in graph.excluded
        ]
    written = {(f.child, f.class_column, f.column) for f in declared if f.kind == "polymorphic"}
    doubts = [d for d in graph.doubts if d.pair is None or _key(d.pair) not in written]
    if doubts:
        lines.append("  # Not linked, for a human to decide (add a link, or leave the rows out):")
        lines += [f"  #   {d.what}: {d.evidence}" for d in doubts]
    return lines


def _key(pair: PolymorphicPair) -> tuple[QName, str | None, str]:
    return (pair.table, pair.class_column, pair.id_column)


def _same_pair(doubt: Doubt, link: Found) -> bool:
    return doubt.pair is not None and _key(doubt.pair) == (
        link.child,
        link.class_column,
        link.column,
    )


def _undecided(catalog: Catalog, doubts: list[Doubt]) -> list[str]:
    """The classes of a written link that the data did not settle, as commented choices:
    `check` refuses a purge or archive while one is in neither `classes` nor
    `unrelated_classes`, so the officer uncomments one of the two for each."""
    if not doubts:
        return []
    lines = [
        "          # TO DECIDE, each class below: map it (uncomment its line) or keep it out",
        "          # of the record under unrelated_classes, with the reason:",
    ]
    for doubt in doubts:
        value = scalar(doubt.value or "")
        if doubt.target is not None:
            entry = f"          # {value}: {scalar(table_ref(catalog, doubt.target))}"
        else:
            entry = f"          # {value}: <table>"
        lines.append(_line(entry, doubt.evidence))
    lines.append("        # unrelated_classes:")
    lines += [
        f'        #   {scalar(d.value or "")}: "<why its rows are not part of the record>"'
        for d in doubts
    ]
    return lines


def _fk_line(link: Found) -> str:
    return f"{link.child[1]}.{link.column} -> {link.parent[1]}.{link.parent_key} ({link.evidence})"


def trial_phase(column: str, option: Minimisation) -> str:
    """A policy's end with one phase acting on `column`: to ask `check` whether it fits."""
    return "retain_until: today\nphases:\n" + "\n".join(_phase("essai", [(column, option)], ""))


def _spec(column: str, option: Minimisation) -> str:
    if option.to is None:
        return scalar(column)
    return f"{{column: {scalar(column)}, to: {option.to}}}"


def _phase(
    name: str,
    columns: list[tuple[str, Minimisation]],
    indent: str,
    notes: Iterable[str | None] = (),
) -> list[str]:
    action = columns[0][1].action
    lines = [
        f"{indent}  - name: {name}",
        _line(f"{indent}    due: retain_until", "when? e.g. derniere_venue + 3 years"),
        f"{indent}    action: {action}",
        f"{indent}    columns:",
    ]
    given: list[str | None] = [*notes]
    for (column, option), note in zip(columns, given or [None] * len(columns), strict=True):
        lines.append(_line(f"{indent}      - {_spec(column, option)}", note))
    return lines


R1112_7 = """\
# Example, the medical record (CSP art. R1112-7): kept 20 years after the last stay or
# outpatient consultation; until the 28th birthday if that comes later; 10 years after a death
# that came less than 10 years after the last visit. Replace each <...> with a candidate date
# above (and check that the law that applies to THIS data is this one):
#
# dates:
#   naissance: {column: <birth date column of the subject>}
#     (with format: YYYY-MM-DD, DD/MM/YYYY or YYYYMMDD when it is stored as text)
#   deces: {column: <death date column of the subject>, if_missing: "null"}
#   derniere_venue: {latest: "coalesce(<date column>, today)", over: <related table>}
#     (a related row without a date, a stay still open, is otherwise undeterminable;
#     with format: DD/MM/YYYY, YYYY-MM-DD or YYYYMMDD when the column is text)
# retain_until: |
#   if derniere_venue is null then null
#   else if deces is not null and deces >= derniere_venue and deces < derniere_venue + 10 years
#     then deces + 10 years
#   else greatest(derniere_venue + 20 years, naissance + 28 years)
"""


def render_draft(draft: Draft, *, database: str, today: date) -> str:
    """The whole draft policy file."""
    graph = draft.graph
    head = [
        MODELINE,
        f"# DRAFT written by `retention draft` on {today.isoformat()} from database {database}:",
        "# a proposal to confirm line by line, not a policy. Each guess says its evidence. The",
        "# dates, retain_until and the phases are left to the compliance officer: `retention",
        "# check` refuses this file until they are written (see the examples at the end).",
        "",
    ]
    body = core_yaml(draft.catalog, graph)
    return "\n".join(head) + "\n" + body + "\n" + "\n".join(_tail(draft)) + "\n"


def _tail(draft: Draft) -> list[str]:
    lines = ["# Candidate event dates (years of the readable values; share of nulls):"]
    # years only, whatever the table: the first or last day of a column is one person's day
    # (the oldest patient's birth, from a parent table joined; a death; a first visit), and
    # a scan need not have classed the column as personal (an outside review saw exact birth
    # and death dates of a joined `person` table)
    for dated in draft.dated:
        where = dated.table[1] + (f" (joined from {dated.via})" if dated.via else "")
        lines.append(f"#   {where}:")
        for d in dated.dates:
            lines.append(f"#     {_date_line(d)}")
    if not draft.dated:
        lines.append("#   none found: no date column in the tables of this record")
    lines += ["#", *R1112_7.splitlines(), ""]
    lines += _phases(draft)
    return lines


def _date_line(d: DateCandidate) -> str:
    kind = d.column.type + (f" read as {d.format}" if d.format else "")
    if d.first is None or d.last is None:
        span = "no readable value"
    else:
        span = f"years {d.first.year} .. {d.last.year}"
    # unreadable: text that is no calendar day in its format, or a date no calendar has
    # (MariaDB's zero dates, '0000-00-00', which Mediboard writes for "unknown")
    extra = f", unreadable {percent(d.share(d.unreadable))}" if d.format or d.unreadable else ""
    sampled = ", sampled" if d.sampled else ""
    return f"{d.column.name} ({kind}): {span}; null {percent(d.share(d.nulls))}{extra}{sampled}"


def _phases(draft: Draft) -> list[str]:
    lines = [
        "# Phases, to decide. Suggested from the personal columns of the last scan: each action",
        "# is one that `check` accepts for its column; choose when each is due.",
        "# phases:",
        "#   - name: destruction                # the whole record, the day after retain_until",
        "#     due: retain_until",
        "#     action: purge",
    ]
    if draft.scan is None:
        lines.append("#   (no scan stored: run `retention scan`, then draft again for the columns)")
        return lines
    scan_id, when = draft.scan
    by_action: dict[str, list[PersonalColumn]] = defaultdict(list)
    for column in draft.personal:
        if column.choice is not None:
            by_action[column.choice.action].append(column)
    for action, columns in by_action.items():
        notes = [_column_note(c) for c in columns]
        chosen = [(c.ref, c.choice) for c in columns if c.choice is not None]
        lines += [f"# {line}" for line in _phase(f"minimisation-{action}", chosen, "", notes)]
    # in UTC: the same instant reads the same whichever engine and session zone stored it
    at = when.astimezone(UTC).isoformat(timespec="minutes")
    lines.append(f"# (personal columns of scan #{scan_id}, {at})")
    kept = [c for c in draft.personal if c.kept is not None]
    if kept:
        lines.append("# keep:")
        for column in kept:
            lines.append(
                f"#   - {{column: {scalar(column.ref)}, reason: {scalar(column.kept or '')}}}"
            )
    stuck = [c for c in draft.personal if c.choice is None and c.kept is None]
    for column in stuck:
        lines.append(
            f"# {column.ref}: {_column_note(column)}; no action fits: {'; '.join(column.refused)}"
        )
    if draft.outside:
        lines.append("# Personal columns outside this record (another policy, or keep):")
        lines += [f"#   {v.table}.{v.column}: {v.entity} {v.score:.2f}" for v in draft.outside]
    return lines


def _column_note(column: PersonalColumn) -> str:
    v = column.verdict
    examples = ", ".join(column.examples) if column.examples else "no value"
    note = f"{v.entity} {v.score:.2f}, e.g. {examples}"
    if v.entity == "DATE_OF_BIRTH" and column.choice is not None:
        # check refuses a phase writing a column a clock reads (policy/checks/clock_inputs.py)
        note += "; not if a clock reads it (R1112-7's 28th birthday does)"
    return note
