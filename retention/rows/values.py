"""What each column action leaves in a column, and whether a row is still pending, in SQL.

Shared by the actions (which write the new value) and the plan (which counts pending rows only),
so a plan never counts work that is already done and a second pass changes nothing.
"""

from __future__ import annotations

from retention.engines import sql
from retention.policy.actions import POSTAL_CODE_SHAPE, TEXT_DATE_SHAPE
from retention.policy.bound import BoundColumn
from retention.policy.expr import Params
from retention.store.ledger import TABLE as LEDGER_TABLE

PSEUDONYM_PATTERN = "^PSN-[A-Z2-7]{8,28}$"  # what retention.actions.pseudonymize writes


def not_pseudonym(text: sql.Composable) -> sql.Composable:
    """True when the non-NULL text expression `text` does not match PSEUDONYM_PATTERN.

    The same test, written for speed: PostgreSQL's regular expressions expand a bounded repeat
    such as `{8,28}` into automaton states, and `!~` with it took 441 ms over three columns of
    189,728 pseudonymised patients against 106 ms for `+` and a length check. Most values do not
    start with `PSN-` and are decided by that prefix alone. `COLLATE "C"`: pattern matching
    refuses nondeterministic collations, and the pattern is ASCII.
    """
    c = sql.SQL('({}::text COLLATE "C")').format(text)
    return sql.SQL(
        "(left({c}, 4) <> 'PSN-' OR {c} !~ '^PSN-[A-Z2-7]+$' "
        "OR char_length({c}) NOT BETWEEN 12 AND 32)"
    ).format(c=c)


def new_value(
    action: str,
    item: BoundColumn,
    ref: sql.Composable,
    params: Params,
    *,
    in_expression: bool = False,
) -> sql.Composable:
    """The value a column takes once the action is done. `in_expression`: usable inside an
    expression, where `DEFAULT` is not allowed (the column's default expression instead)."""
    column = item.column
    if action == "erase":
        if item.spec.value is not None:
            return sql.SQL("{}::{}").format(params.add(item.spec.value), sql.SQL(column.type))
        if not column.not_null:
            return sql.SQL("NULL")
        if in_expression and column.default is not None:
            # the expression the catalogue holds (pg_get_expr), as `pending` compares with it
            return sql.SQL("({})").format(default_sql(column.default))
        return sql.SQL("DEFAULT")
    if action == "generalize":
        return _generalized(item, ref, params)
    raise ValueError(f"no SQL value for action {action}")


def pending(action: str, item: BoundColumn, ref: sql.Composable, params: Params) -> sql.Composable:
    """True while the column still differs from what the action leaves."""
    if action == "erase":
        if item.spec.value is not None:
            return sql.SQL("{} IS DISTINCT FROM {}::{}").format(
                ref, params.add(item.spec.value), sql.SQL(item.column.type)
            )
        if item.column.not_null:
            return sql.SQL("{} IS DISTINCT FROM {}").format(
                ref, default_sql(item.column.default or "NULL")
            )
        return sql.SQL("{} IS NOT NULL").format(ref)
    if action == "generalize":
        return sql.SQL("{} IS DISTINCT FROM {}").format(ref, _generalized(item, ref, params))
    if action == "pseudonymize":
        return sql.SQL("({} IS NOT NULL AND {})").format(ref, not_pseudonym(ref))
    if action == "scrub" and item.ledger is not None:
        # not a text this analyser already left clean in this column (retention.store.ledger)
        return sql.SQL(
            "({r} IS NOT NULL AND NOT EXISTS (SELECT FROM {ledger} AS l WHERE l.target = {t} "
            "AND l.analyser = {a} AND l.digest = sha256(convert_to({r}::text, 'UTF8'))))"
        ).format(
            r=ref,
            ledger=sql.Identifier(item.ledger.schema, LEDGER_TABLE),
            t=params.add(ledger_target(item)),
            a=params.add(item.ledger.analyser),
        )
    return sql.SQL("{} IS NOT NULL").format(ref)


def ledger_target(item: BoundColumn) -> str:
    """How the scrub ledger names a column: schema.table.column."""
    return ".".join((*item.table.qname, item.column.name))


def default_sql(expression: str) -> sql.Composable:
    """A column default from the catalogue (`pg_get_expr`), as SQL. `%` is doubled: the queries
    it goes into are run with parameters, where a lone `%` would read as a placeholder (a
    default of `'0%'`). They must then be run with a parameter mapping, even an empty one."""
    return sql.SQL(expression.replace("%", "%%"))


def _generalized(item: BoundColumn, ref: sql.Composable, params: Params) -> sql.Composable:
    column, to = item.column, item.spec.to
    if to in ("year", "month") and column.is_date:
        return sql.SQL("date_trunc({}, {})::{}").format(params.add(to), ref, sql.SQL(column.type))
    if to in ("year", "month"):
        # Text dates keep their shape with zeros for the parts removed ('1975-00-00'),
        # the convention of French hospital software for partial dates.
        keep, suffix = (4, "-00-00") if to == "year" else (7, "-00")
        return sql.SQL(
            "(CASE WHEN {r} ~ {pattern} THEN substr({r}, 1, {keep}) || {suffix} ELSE {r} END)"
        ).format(
            r=ref,
            pattern=params.add(TEXT_DATE_SHAPE),
            keep=params.add(keep),
            suffix=params.add(suffix),
        )
    if to == "department":
        return sql.SQL(
            "(CASE WHEN {r} ~ {overseas} THEN substr({r}, 1, 3) "
            "WHEN {r} ~ {corsica} THEN (CASE WHEN {r} < {split} THEN {a} ELSE {b} END) "
            "WHEN {r} ~ {mainland} THEN substr({r}, 1, 2) ELSE {r} END)"
        ).format(
            r=ref,
            overseas=params.add("^9[78][0-9]{3}$"),
            corsica=params.add("^20[0-9]{3}$"),
            split=params.add("20200"),
            a=params.add("2A"),
            b=params.add("2B"),
            mainland=params.add(POSTAL_CODE_SHAPE),
        )
    width = params.add(item.spec.width)
    return sql.SQL("(floor({r} / {w}::numeric) * {w})::{t}").format(
        r=ref, w=width, t=sql.SQL(column.type)
    )
