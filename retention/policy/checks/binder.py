"""What every check reads (the policy, the catalogue) and writes (its problems, each with its
file position), and the look-ups they share: tables and columns with a hint when unknown,
expressions parsed and typed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from retention.catalog.introspect import Catalog, Column, Table
from retention.errors import Problem
from retention.policy.expr import Expr, ExprError, ExprType, parse, typecheck
from retention.policy.load import LoadedPolicy
from retention.policy.source import PathKey


@dataclass
class Binder:
    """One policy being bound to the catalogue, and every problem found so far."""

    loaded: LoadedPolicy
    catalog: Catalog
    problems: list[Problem] = field(default_factory=list)

    def error(self, path: PathKey, message: str, hint: str | None = None) -> None:
        self.problems.append(Problem(self.loaded.location(path), message, hint))

    def warn(self, path: PathKey, message: str, hint: str | None = None) -> None:
        self.problems.append(Problem(self.loaded.location(path), message, hint, "warning"))

    @property
    def has_errors(self) -> bool:
        return any(p.severity == "error" for p in self.problems)

    def table(self, name: str, path: PathKey) -> Table | None:
        table = self.catalog.find(name)
        if table is None and self.catalog.is_view(name):
            self.error(
                path,
                f"'{name}' is a view: a policy acts on the tables that hold the rows",
                "name the table the view reads the subjects from (a view's rows cannot be "
                "locked, purged or archived one by one)",
            )
            return None
        if table is None:
            close = self.catalog.suggest_table(name)
            hint = f"did you mean '{close}'?" if close else "check the table name and schema"
            self.error(path, f"unknown table '{name}'", hint)
        return table

    def column(self, table: Table, name: str, path: PathKey) -> Column | None:
        column = table.columns.get(name)
        if column is None:
            close = table.suggest_column(name)
            hint = f"did you mean '{close}'?" if close else f"columns: {', '.join(table.columns)}"
            self.error(path, f"unknown column '{name}' in table {table.name}", hint)
        return column

    def expression(
        self, text: str, path: PathKey, names: Mapping[str, ExprType], want: ExprType
    ) -> Expr | None:
        try:
            expr = parse(text)
            got = typecheck(expr, names)
        except ExprError as exc:
            where = self.loaded.document.text_location(path, exc.line or 1, exc.column or 1)
            self.problems.append(Problem(where, exc.message, exc.hint))
            return None
        if got not in (want, ExprType.NULL):
            hint = (
                "a date stored as text is read with 'format: DD/MM/YYYY' (or YYYY-MM-DD, "
                "YYYYMMDD) on this date"
                if (got, want) == (ExprType.TEXT, ExprType.DATE)
                else None
            )
            self.error(
                path,
                f"this expression gives {got.label}, {want.label} is needed",
                hint,
            )
            return None
        return expr
