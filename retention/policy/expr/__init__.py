"""The policy expression language: parse, type, evaluate in Python, compile to SQL.

Compliance officers read these expressions; DBAs write them. PostgreSQL is the reference:
`evaluate` mirrors exactly what the SQL from `compile_sql` computes.
"""

from retention.policy.expr.nodes import Expr, ExprError, Name
from retention.policy.expr.parser import parse
from retention.policy.expr.types import ExprType, Interval, typecheck

__all__ = ["Expr", "ExprError", "ExprType", "Interval", "Name", "parse", "typecheck"]
