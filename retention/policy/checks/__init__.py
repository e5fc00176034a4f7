"""The checks of a policy against the catalogue, one module per thing they check.

Each check reads the policy and the catalogue through a :class:`~.binder.Binder` and adds
its problems to it (file, line, hint); retention.policy.bind runs them in order and builds
the bound policy. The checks that read the data, not only the catalogue, are in
retention.policy.data_checks.

- binder.py: the policy, the catalogue and the problems found; names looked up with hints,
  expressions parsed and typed
- subject.py: the subject table, its key, the names of the record's tables
- links.py: declared links and exclusions, and the relation graph they give
- dates.py: the clock's dates, their columns, joins, cycles and indexes
- columns.py: each phase's due date and target columns, against its action's spec
- cascades.py: what a statement sets off through the foreign keys' ON UPDATE / ON DELETE, and
  every table a phase changes
- deletes.py: foreign keys outside the record's links that break deleting it
- hooks.py: the triggers and rules a phase's statements set off, and those it accepts
- transactions.py: tables without transactions a phase changes, and those it accepts
- row_keys.py: tables a phase addresses row by row without a key, on an engine without a row
  address
- versioning.py: system-versioned tables a phase changes (their history keeps the old rows)
- on_update.py: clock dates read from a column the server rewrites on every update
- clock_inputs.py: phases that write a column a clock reads, across the policies bound together
  (retention.policy.check runs it once they are all bound)
"""
