"""The policy expression language: parse, type, evaluate in Python, compile to SQL.

Compliance officers read these expressions in policy files; DBAs write them::

    if deces is not null and deces >= derniere_visite and deces < derniere_visite + 10 years
    then deces + 10 years
    else greatest(derniere_visite + 20 years, naissance + 28 years)

PostgreSQL is the reference: `evaluate` computes exactly what the SQL from `compile_sql` does.
"""

from retention.engines.sql import Params
from retention.policy.expr.compile import compile_sql
from retention.policy.expr.evaluate import evaluate
from retention.policy.expr.nodes import Expr, ExprError, Name, to_text
from retention.policy.expr.parser import parse
from retention.policy.expr.types import ExprType, Interval, typecheck

__all__ = [
    "Expr",
    "ExprError",
    "ExprType",
    "Interval",
    "Name",
    "Params",
    "compile_sql",
    "evaluate",
    "parse",
    "to_text",
    "typecheck",
]
