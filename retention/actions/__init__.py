"""Actions: what a phase does to the rows of a batch of due subjects.

Every action is one class with `apply(conn, batch) -> rows per table`, called inside the
batch's transaction after the subjects were locked and re-checked. `scrub` and `archive` slot
in the same way.
"""

from retention.actions.base import Action, Batch, action_for

__all__ = ["Action", "Batch", "action_for"]
