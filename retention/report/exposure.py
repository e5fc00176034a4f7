"""Exposure: what a breach of the live database would reveal today, as counts per population.

A *population* is a subject table of the policies with its key (``public.patients``). It is a
population of *persons* unless its table is itself a related table of another policy (a change
log purged on its own is a set of records about patients, not of people). For each one, at the
date ``at`` and from one snapshot:

- ``subjects``: rows of the subject table.
- ``with_direct_identifiers``: subjects whose row, or a row related to them by a policy's relation
  graph, holds a non-empty value in a column the last scan classed as a name, NIR/INS, phone,
  e-mail or postal address, a value no minimisation has replaced yet (not a pseudonym, not the
  value an erase leaves). ``None`` without a scan.
- ``past_retention``: subjects a purge or archive phase would act on (due, determinable, not
  held): records that should have left the live base. ``None`` without such a phase.
- ``contact_beyond_minimisation``: subjects a minimisation phase (erase, pseudonymize,
  generalize, scrub) of contact columns is due for, still holding one of those columns.
  ``None`` without a scan or without such a phase.
- ``archived``: subjects in archive segments not destroyed yet (distinct per policy); 0 with a
  note while the archive catalogue is not installed.
- ``held``: subjects under an active legal hold of one of the population's policies.
- ``undeterminable``: subjects whose clock cannot be computed for at least one phase (kept), and
  how many for each reason.

Each phase's clock is materialised once in a temporary table (dropped at commit), then the
figures are unions of subject keys, so a subject counts once however many phases concern it.
A clock's table holds only the subjects some figure reads: the undeterminable ones, and the due
ones when one of its phases counts in `past_retention` or `contact_beyond_minimisation` (after a
minimisation run, its due subjects are those it just minimised: writing them, for no figure, took
0.15 s of the snapshot's 1.2 s of CPU at 189,728 patients).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from functools import partial
from typing import Any

from retention.discovery.inventory import installed as inventory_installed
from retention.discovery.inventory import last_scan_id, latest_inventory
from retention.discovery.model import ColumnVerdict
from retention.engines import Connection, engine_of, sql
from retention.engines.clock import clock_sql
from retention.plan.clock import AggregateKey, aggregate_key, aggregate_statement, clock_query
from retention.plan.slices import (
    EVERY_KEY,
    Helpers,
    Slice,
    counted_cut,
    export_snapshot,
    sliceable,
    spread,
)
from retention.policy.actions import ROW_ACTIONS, spec_of
from retention.policy.bound import BoundColumn, BoundDate, BoundPhase, BoundPolicy
from retention.policy.expr import Params
from retention.policy.relations import QName
from retention.report.moments import iso
from retention.report.stored import instant
from retention.rows.members import still_to_change
from retention.rows.subjects import path_sql
from retention.rows.values import not_pseudonym, pending
from retention.store.holds import Person, covers
from retention.store.schema import holds_table

DIRECT_ENTITIES = ("PERSON", "FR_NIR", "FR_INS", "PHONE_NUMBER", "EMAIL_ADDRESS", "ADDRESS")
CONTACT_ENTITIES = ("PHONE_NUMBER", "EMAIL_ADDRESS", "ADDRESS")
FIGURES = (
    "subjects",
    "with_direct_identifiers",
    "past_retention",
    "contact_beyond_minimisation",
    "archived",
    "held",
    "undeterminable",
)
# Notes explain a figure that is 0 or unknown for a reason (codes, translated by the report).
NO_SCAN = "no_scan"
NO_ROW_PHASE = "no_row_phase"
NO_MINIMISATION = "no_minimisation_phase"
NO_ARCHIVE = "no_archive_catalogue"
NO_HOLDS = "no_holds_table"

_temp_names = itertools.count(1)


@dataclass(frozen=True)
class Population:
    """The exposure figures of one subject table."""

    table: str
    key: str
    policies: tuple[str, ...]
    persons: bool
    subjects: int
    with_direct_identifiers: int | None
    past_retention: int | None
    contact_beyond_minimisation: int | None
    archived: int
    held: int
    undeterminable: int
    undeterminable_reasons: dict[str, int] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def figure(self, name: str) -> int | None:
        value = getattr(self, name)
        return None if value is None else int(value)

    def to_json(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "key": self.key,
            "policies": list(self.policies),
            "persons": self.persons,
            **{name: self.figure(name) for name in FIGURES},
            "undeterminable_reasons": dict(self.undeterminable_reasons),
            "notes": list(self.notes),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Population:
        return cls(
            table=str(data["table"]),
            key=str(data["key"]),
            policies=tuple(data.get("policies", ())),
            persons=bool(data.get("persons", True)),
            subjects=int(data["subjects"]),
            with_direct_identifiers=data.get("with_direct_identifiers"),
            past_retention=data.get("past_retention"),
            contact_beyond_minimisation=data.get("contact_beyond_minimisation"),
            archived=int(data.get("archived") or 0),
            held=int(data.get("held") or 0),
            undeterminable=int(data.get("undeterminable") or 0),
            undeterminable_reasons={
                str(k): int(v) for k, v in dict(data.get("undeterminable_reasons", {})).items()
            },
            notes=tuple(data.get("notes", ())),
        )


@dataclass(frozen=True)
class Exposure:
    """Every population's figures at `at`, and the scan the identifier figures rely on."""

    at: date
    populations: tuple[Population, ...]
    scan_id: int | None = None
    scanned_at: datetime | None = None

    @property
    def persons(self) -> tuple[Population, ...]:
        return tuple(p for p in self.populations if p.persons)

    def population(self, table: str) -> Population | None:
        return next((p for p in self.populations if p.table == table), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "scan": None
            if self.scan_id is None
            else {
                "scan_id": self.scan_id,
                "scanned_at": iso(self.scanned_at),
            },
            "populations": [p.to_json() for p in self.populations],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Exposure:
        scan = data.get("scan") or {}
        scanned = scan.get("scanned_at")
        return cls(
            at=date.fromisoformat(data["at"]),
            populations=tuple(Population.from_json(p) for p in data.get("populations", ())),
            scan_id=scan.get("scan_id"),
            scanned_at=datetime.fromisoformat(scanned) if scanned else None,
        )


@dataclass(frozen=True)
class _Group:
    """The policies sharing one subject table and key."""

    policies: tuple[BoundPolicy, ...]
    persons: bool

    @property
    def first(self) -> BoundPolicy:
        return self.policies[0]

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.policies]


def compute_exposure(
    conn: Connection,
    policies: Sequence[BoundPolicy],
    at: date,
    *,
    schema: str = "retention",
    work_mem_mb: int = 64,
    helpers: Sequence[Connection] = (),
) -> Exposure:
    """The exposure figures of every population at `at`, from one consistent snapshot.

    Reads only; the clocks are materialised in temporary tables dropped at commit. `helpers`:
    idle connections to the same database; each materialises the clocks of a slice of a large
    subject table, reading the same snapshot (see retention.plan.slices)."""
    engine = engine_of(conn)
    # read-write: the clocks' temporary tables (MariaDB refuses them in a read-only one)
    with engine.snapshots.transaction(conn, read_only=False):
        engine.session.whole_tables(conn, work_mem_mb)
        snapshot = export_snapshot(conn) if helpers else ""
        scan_id, scanned_at, inventory = last_scan(conn, schema)
        context = _Context(conn, list(policies), at, schema, inventory)
        context.helpers = Helpers(list(helpers), snapshot, work_mem_mb)
        populations = tuple(context.population(group) for group in groups(policies))
    return Exposure(at, populations, scan_id, scanned_at)


def groups(policies: Iterable[BoundPolicy]) -> list[_Group]:
    """Policies grouped by subject table and key, in table order."""
    chosen = list(policies)
    related = {t for p in chosen for t in p.graph.tables if t != p.subject.qname}
    by_subject: dict[tuple[QName, str], list[BoundPolicy]] = {}
    for policy in chosen:
        by_subject.setdefault((policy.subject.qname, policy.key.name), []).append(policy)
    return [
        _Group(tuple(sorted(found, key=lambda p: p.name)), subject not in related)
        for (subject, _), found in sorted(by_subject.items())
    ]


def last_scan(
    conn: Connection, schema: str
) -> tuple[int | None, datetime | None, list[ColumnVerdict] | None]:
    """The last scan's id and time, and the inventory of record (None: nothing scanned)."""
    if not inventory_installed(conn, schema):
        return None, None, None
    scan_id = last_scan_id(conn, schema=schema)
    if scan_id is None:
        return None, None, None
    row = conn.execute(
        sql.SQL("SELECT scanned_at FROM {} WHERE scan_id = %s").format(
            sql.Identifier(schema, "scans")
        ),
        (scan_id,),
    ).fetchone()
    return scan_id, instant(row[0]) if row else None, latest_inventory(conn, schema=schema)


@dataclass(frozen=True)
class _Clock:
    """One phase's clock, materialised: its temporary table (`name`, and `table` as
    statements name it) and undeterminable reasons. `keeps_due`: the table holds the due
    subjects too, not only the undeterminable ones."""

    policy: BoundPolicy
    phase: BoundPhase
    name: str
    table: sql.Composable
    reasons: tuple[str, ...]
    keeps_due: bool


class _Context:
    """What every population's computation shares: connection, date, inventory, holds."""

    def __init__(
        self,
        conn: Connection,
        policies: list[BoundPolicy],
        at: date,
        schema: str,
        inventory: list[ColumnVerdict] | None,
    ) -> None:
        self.conn = conn
        self.dialect = engine_of(conn).dialect
        self.helpers = Helpers([], "", 0)  # none unless given (see retention.plan.slices)
        self.policies = policies
        self.at = at
        self.schema = schema
        self.inventory = inventory
        self.holds = holds_table(conn, schema)
        self.aggregates: list[str] = []  # the shared aggregates' tables made on `conn`

    def population(self, group: _Group) -> Population:
        sliced = bool(self.helpers.conns) and all(sliceable(p) for p in group.policies)
        subjects, slices = counted_cut(
            self.conn, group.first, 1 + len(self.helpers.conns) if sliced else 1
        )
        made: dict[tuple[str, object, frozenset[str]], _Clock] = {}
        clocks = []
        for policy in group.policies:
            sharing = _sharing_clocks(policy)
            for phase in policy.phases:
                same = made.get((policy.name, phase.due, phase.depends))
                if same is None:  # phases sharing a due date share their clock
                    name = _temp_name()
                    due = any(map(self._reads_due, sharing[(phase.due, phase.depends)]))
                    same = made[(policy.name, phase.due, phase.depends)] = _Clock(
                        policy, phase, name, self.dialect.temporary(name), (), due
                    )
                clocks.append(replace(same, phase=phase))
        why = self._materialise_all(group, list(made.values()), slices)
        clocks = [replace(c, reasons=why[c.name]) for c in clocks]
        population = self._figures(group, clocks, subjects)
        for name in [c.name for c in made.values()] + self.aggregates:
            self.conn.execute(self.dialect.drop_temporary(name))  # MariaDB keeps them
        self.aggregates = []
        return population

    def _figures(self, group: _Group, clocks: list[_Clock], subjects: int) -> Population:
        """The population's figures, its clocks materialised."""
        notes: list[str] = []
        past = self._union_count([c for c in clocks if c.phase.action in ROW_ACTIONS], "is_due")
        if past is None:
            notes.append(NO_ROW_PHASE)
        undeterminable = self._union_count(clocks, "undeterminable") or 0
        reasons = {
            reason: self._reason_count(clocks, reason)
            for reason in dict.fromkeys(r for c in clocks for r in c.reasons)
        }
        if self.inventory is None:
            notes.append(NO_SCAN)
            direct = contact = None
        else:
            direct = self._direct(group)
            contact = self._contact(clocks)
            if contact is None:
                notes.append(NO_MINIMISATION)
        archived = self._archived(group)
        if archived is None:
            notes.append(NO_ARCHIVE)
        if self.holds is None:
            notes.append(NO_HOLDS)
        return Population(
            table=group.first.subject.label,
            key=group.first.key.name,
            policies=tuple(group.names),
            persons=group.persons,
            subjects=subjects,
            with_direct_identifiers=direct,
            past_retention=past,
            contact_beyond_minimisation=contact,
            archived=archived or 0,
            held=self._held(group),
            undeterminable=undeterminable,
            undeterminable_reasons={r: n for r, n in reasons.items() if n},
            notes=tuple(notes),
        )

    def _reads_due(self, phase: BoundPhase) -> bool:
        """Whether a figure reads the due subjects of `phase`'s clock: past_retention for a
        row action, contact_beyond_minimisation for a minimisation of contact columns."""
        return phase.action in ROW_ACTIONS or bool(self._contact_columns(phase))

    # -- clocks -------------------------------------------------------------------------------
    def _materialise_all(
        self, group: _Group, clocks: list[_Clock], slices: list[Slice]
    ) -> dict[str, tuple[str, ...]]:
        """Materialise `clocks` (their tables named, not made yet) on this connection, or
        a slice of the subjects on each connection at once (this one taking the slices of
        helpers that could not join), the helpers' rows then copied here; returns each
        table's undeterminable reasons, by table name."""
        work = partial(self._clocks, group=group, clocks=clocks)
        found = spread(self.conn, self.helpers, slices, work, [c.table for c in clocks])
        return {c.name: r for c, r in zip(clocks, found[0], strict=True)}

    def _clocks(
        self,
        conn: Connection,
        slices: Iterable[Slice],
        *,
        group: _Group,
        clocks: list[_Clock],
    ) -> list[tuple[str, ...]]:
        """Materialise `clocks` over the subjects of `slices` on `conn`; their reasons."""
        reasons: list[tuple[str, ...]] = []
        for i, within in enumerate(slices):
            aggregates = self._shared_aggregates(conn, group, within)
            reasons = [self._materialise(conn, c, aggregates, within, i == 0) for c in clocks]
        return reasons

    def _shared_aggregates(
        self, conn: Connection, group: _Group, within: Slice
    ) -> dict[AggregateKey, sql.Composable]:
        """Aggregate dates that several clocks of the group use (e.g. the last stay, defined
        the same way by two policies), computed once into temporary tables. Phases sharing a
        due date share one clock (see `population`): they count once, since writing an
        aggregate of 690,000 patients to a table for a single reader only costs time."""
        found: dict[AggregateKey, dict[tuple[str, object, frozenset[str]], BoundDate]] = {}
        owners: dict[AggregateKey, BoundPolicy] = {}
        dialect = clock_sql(conn)
        for policy in group.policies:
            clocks = {(policy.name, p.due, p.depends) for p in policy.phases}
            for date_ in policy.dates.values():
                if date_.kind == "aggregate":
                    key = aggregate_key(policy, date_, self.at, dialect=dialect)
                    owners.setdefault(key, policy)
                    for clock in clocks:
                        found.setdefault(key, {})[clock] = date_
        shared: dict[AggregateKey, sql.Composable] = {}
        for key, users in found.items():
            if len(users) < 2:
                continue
            policy, date_ = owners[key], next(iter(users.values()))
            params = Params(prefix="g")
            statement = aggregate_statement(
                policy,
                date_,
                self.at,
                params,
                within.range(policy, params, engine_of(conn).dialect),
                dialect=dialect,
            )
            name = _temp_name()
            engine = engine_of(conn)
            tables = engine.dialect
            made = tables.temporary_as(name, statement, unique="k")
            if within is not EVERY_KEY:
                made = engine.session.grouped_at_once(conn, made)
            conn.execute(made, params.values)
            if conn is self.conn:
                self.aggregates.append(name)
            shared[key] = tables.temporary(name)
        return shared

    def _materialise(
        self,
        conn: Connection,
        clock: _Clock,
        aggregates: dict[AggregateKey, sql.Composable],
        within: Slice,
        create: bool = True,
    ) -> tuple[str, ...]:
        """Write the clock's subjects `within` to its table, made now (`create`) or filled
        further (another slice on the same connection)."""
        params = Params(prefix="w")
        query = clock_query(
            clock.policy,
            clock.phase,
            self.at,
            holds_table=self.holds,
            aggregates=aggregates,
            within=within.range(clock.policy, params, self.dialect),
            dialect=clock_sql(conn),
        )
        # only the subjects the figures count (every reason implies undeterminable): writing
        # the whole clock cost seconds at 758,912 patients
        kept = sql.SQL("is_due OR undeterminable" if clock.keeps_due else "undeterminable")
        rows = sql.SQL("SELECT * FROM ({}) AS c WHERE {}").format(query.query, kept)
        engine = engine_of(conn)
        statement = (
            engine.dialect.temporary_as(clock.name, rows, unique="k")
            if create
            else sql.SQL("INSERT INTO {} {}").format(clock.table, rows)
        )
        if within is not EVERY_KEY:  # a slice of the subjects: its aggregates at once
            statement = engine.session.grouped_at_once(conn, statement)
        conn.execute(statement, {**query.params, **params.values})
        return query.reasons

    def _union_count(self, clocks: list[_Clock], column: str) -> int | None:
        """Distinct subjects for which `column` is true in any of `clocks` (None: no clock)."""
        if not clocks:
            return None
        return self._count(_union_of([(c.name, c.table, column) for c in clocks]))

    def _reason_count(self, clocks: list[_Clock], reason: str) -> int:
        return self._count(
            _union_of(
                [
                    (c.name, c.table, f"why_{i}")
                    for c in clocks
                    for i, r in enumerate(c.reasons)
                    if r == reason
                ]
            )
        )

    # -- contact data beyond minimisation -----------------------------------------------------
    def _contact(self, clocks: list[_Clock]) -> int | None:
        params = Params(prefix="m")
        # phases sharing a clock read its table once, their conditions ORed: a statement
        # never names a temporary table twice (MySQL error 1137 "Can't reopen table")
        tables: dict[str, tuple[sql.Composable, list[sql.Composable]]] = {}
        for clock in clocks:
            kept = self._contact_columns(clock.phase)
            if not kept:
                continue
            restricted = replace(clock.phase, columns=kept)
            condition = still_to_change(clock.policy, restricted, params, dialect=self.dialect)
            tables.setdefault(clock.name, (clock.table, []))[1].append(condition)
        if not tables:
            return None
        parts = [
            sql.SQL("SELECT k FROM {} AS c WHERE is_due AND ({})").format(
                table, sql.SQL(" OR ").join(conditions)
            )
            for table, conditions in tables.values()
        ]
        union = sql.SQL(" UNION ").join(parts)
        return self._count(sql.SQL("SELECT count(*) FROM ({}) AS u").format(union), params.values)

    def _contact_columns(self, phase: BoundPhase) -> tuple[BoundColumn, ...]:
        """The contact columns (by the last scan) that a minimisation phase changes; none
        without a scan or for another action."""
        if self.inventory is None or not spec_of(phase.action).minimises:
            return ()
        contact = self._columns_of(CONTACT_ENTITIES)
        return tuple(c for c in phase.columns if _qcolumn(c) in contact)

    # -- direct identifiers -------------------------------------------------------------------
    def _direct(self, group: _Group) -> int:
        direct = self._columns_of(DIRECT_ENTITIES)
        params = Params(prefix="d")
        subject = group.first.subject
        key = sql.Identifier("s", group.first.key.name)
        branches: list[sql.Composable] = []
        for table, policy in _tables_of(group).items():
            columns = [c for c in sorted(direct) if (c[0], c[1]) == table]
            if not columns:
                continue
            found = sql.SQL(" OR ").join(
                self._identifier(policy, c, "t" if table != subject.qname else "s", params)
                for c in columns
            )
            if table == subject.qname:
                branches.append(
                    sql.SQL("SELECT {} FROM {} AS s WHERE {}").format(
                        key, sql.Identifier(*table), found
                    )
                )
                continue
            for path in policy.graph.paths_to_subject(table):
                walk = path_sql(policy, path, "t", params, dialect=self.dialect)
                branches.append(
                    sql.SQL("SELECT {} FROM {} AS t {} WHERE ({}) AND {}").format(
                        walk.key,
                        sql.Identifier(*table),
                        walk.joins,
                        found,
                        sql.SQL(" AND ").join([sql.SQL("true"), *walk.conditions]),
                    )
                )
        if not branches:
            return 0
        query = sql.SQL("SELECT count(*) FROM {} AS s WHERE {} IN ({})").format(
            sql.Identifier(*subject.qname), key, sql.SQL(" UNION ").join(branches)
        )
        return self._count(query, params.values)

    def _identifier(
        self, policy: BoundPolicy, column: tuple[str, str, str], alias: str, params: Params
    ) -> sql.Composable:
        """True when the column holds a value that still identifies someone."""
        ref = sql.Identifier(alias, column[2])
        parts: list[sql.Composable] = [
            sql.SQL("{} IS NOT NULL").format(ref),
            sql.SQL("trim({}) <> ''").format(self.dialect.as_text(ref)),
            not_pseudonym(ref, dialect=self.dialect),
        ]
        for action, item in self._minimisations(column):
            parts.append(pending(action, item, ref, params, dialect=self.dialect))
        return sql.SQL("({})").format(sql.SQL(" AND ").join(parts))

    def _minimisations(self, column: tuple[str, str, str]) -> list[tuple[str, BoundColumn]]:
        """(action, target) of every phase of any policy that minimises this column."""
        return [
            (phase.action, item)
            for policy in self.policies
            for phase in policy.phases
            if spec_of(phase.action).minimises
            for item in phase.columns
            if _qcolumn(item) == column
        ]

    def _columns_of(self, entities: Sequence[str]) -> set[tuple[str, str, str]]:
        return {v.key for v in self.inventory or () if v.entity in entities}

    # -- holds and archives -------------------------------------------------------------------
    def _held(self, group: _Group) -> int:
        if self.holds is None:
            return 0
        params = Params(prefix="h")
        person = Person.of(group.first.subject.qname, group.first.key.name)
        key = sql.Identifier("s", group.first.key.name)
        query = sql.SQL(
            "SELECT count(DISTINCT h.subject_key) FROM {holds} AS h WHERE h.released_at IS NULL "
            "AND {covers} AND {exists}"
        ).format(
            holds=self.holds,
            covers=covers(
                clock_sql(self.conn).any_of(sql.SQL("h.policy"), params, group.names),
                params.add(person.compared(self.dialect.holds_by_table_name)),
                params.add(person.column),
                alias="h",
                by_name=self.dialect.holds_by_table_name,
            ),
            exists=self.dialect.exists(
                sql.SQL("{} AS s WHERE {} = h.subject_key").format(
                    sql.Identifier(*group.first.subject.qname), self.dialect.as_text(key)
                )
            ),
        )
        return self._count(query, params.values)

    def _archived(self, group: _Group) -> int | None:
        if not archive_catalogue_installed(self.conn, self.schema):
            return None
        params = Params(prefix="a")
        rest = sql.SQL(
            "FROM {segments} AS s JOIN {files} AS f USING (file_id) {digests} "
            "WHERE s.destroyed_at IS NULL AND f.destroyed_at IS NULL AND {policies}"
        ).format(
            segments=sql.Identifier(self.schema, "archive_segments"),
            files=sql.Identifier(self.schema, "archive_files"),
            digests=self.dialect.segment_digests(self.schema, "s", "d"),
            policies=clock_sql(self.conn).any_of(sql.SQL("f.policy"), params, group.names),
        )
        columns = [sql.SQL("f.policy"), sql.SQL("d.digest")]
        return self._count(self.dialect.count_distinct(columns, rest), params.values)

    def _count(self, query: sql.Composed, params: dict[str, object] | None = None) -> int:
        row = self.conn.execute(query, params or {}).fetchone()
        return int(row[0]) if row and row[0] is not None else 0


def archive_catalogue_installed(conn: Connection, schema: str) -> bool:
    """True when the archive catalogue (files and their segments) exists."""
    catalogue = engine_of(conn).catalogue
    return all(
        catalogue.table_exists(conn, schema, t) for t in ("archive_files", "archive_segments")
    )


def _temp_name() -> str:
    """A new name for a temporary table of this process (`retention_`: see
    `Dialect.temporary`)."""
    return f"retention_exposure_{next(_temp_names)}"


def _sharing_clocks(policy: BoundPolicy) -> dict[tuple[object, frozenset[str]], list[BoundPhase]]:
    """The policy's phases by the clock they share (their due date and the dates it uses)."""
    found: dict[tuple[object, frozenset[str]], list[BoundPhase]] = {}
    for phase in policy.phases:
        found.setdefault((phase.due, phase.depends), []).append(phase)
    return found


def _tables_of(group: _Group) -> dict[QName, BoundPolicy]:
    """Every table related to the population, with the policy whose graph reaches it (the
    policy with the largest graph first)."""
    found: dict[QName, BoundPolicy] = {}
    for policy in sorted(group.policies, key=lambda p: -len(p.graph.tables)):
        for table in policy.graph.tables:
            found.setdefault(table, policy)
    return found


def _union_of(flags: list[tuple[str, sql.Composable, str]]) -> sql.Composed:
    """`SELECT count(*)` of the distinct keys of the clocks' tables with one of their flag
    columns true, given as (table's name, table, column); a table shared by phases (`made`) is
    read once, its columns ORed: a statement never names a temporary table twice (MySQL error
    1137 "Can't reopen table")."""
    tables: dict[str, tuple[sql.Composable, list[str]]] = {}
    for name, table, column in flags:
        columns = tables.setdefault(name, (table, []))[1]
        if column not in columns:
            columns.append(column)
    union = sql.SQL(" UNION ").join(
        sql.SQL("SELECT k FROM {} WHERE {}").format(
            table, sql.SQL(" OR ").join(map(sql.Identifier, columns))
        )
        for table, columns in tables.values()
    )
    return sql.SQL("SELECT count(*) FROM ({}) AS u").format(union)


def _qcolumn(item: BoundColumn) -> tuple[str, str, str]:
    return (item.table.schema, item.table.name, item.column.name)
