"""Evaluation of discovery and scrub on a labelled hospital database (``python -m eval.run``).

- :mod:`eval.texts`: free texts with planted names, phones, e-mails, NIRs and medical terms, and
  their positions;
- :mod:`eval.generate`: a French hospital database *different from the demo* (another
  software's schema: abbreviations, mixed-case identifiers, JSON change logs, English tables),
  with the truth: which columns are personal and their entity family;
- :mod:`eval.baseline`: Presidio's own tabular analysis (presidio-structured) as the baseline;
- :mod:`eval.run`: generate, scan with both tools, scrub, measure, write ``eval/RESULTS.md``.

Generated values stay in memory and in the evaluation database; nothing printed or written to
``RESULTS.md`` holds one.
"""
