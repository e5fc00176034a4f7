"""`retention draft`: a commented policy proposed from the live database, for a human to confirm.

graph.py finds what belongs to a subject (foreign keys, plain columns holding a key, polymorphic
classes) with the evidence of each guess; dates.py the candidate event dates of those tables;
columns.py the personal columns of the last scan and a minimisation for each; render.py writes
the YAML. Nothing here writes to the database, and no value of a row reaches the draft.
"""
