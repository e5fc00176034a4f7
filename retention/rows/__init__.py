"""The rows of a subject's record, in SQL: the builders the plan, the actions, the archives and
the report share.

`subjects` (how a related row reaches its subject key, and slices of subject keys), `members`
(which rows belong to a set of subjects, which an action would still change, which subjects are
due with work left), `values` (what a column action leaves in a column, and whether a row is
still pending), `records` (a batch's record, found once per batch through its links, and its
deletion, children first).

It sits between `policy` (the bound policy it reads) and `plan`: the plan counts with it, the
actions and the archives change rows with it, the report measures with it; it imports none of
them.
"""
