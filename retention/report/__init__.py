"""The compliance report: what a breach would expose today, the inventory, the forecast, the
history, as one offline HTML page (or JSON).

    exposure.py    the exposure figures, per subject table (SQL, one snapshot)
    snapshots.py   exposure snapshots stored at the end of every run (the trend)
    inventory.py   the heat map data: personal columns by table and kind, and their coverage
    forecast.py    the subjects each phase will act on at each of the next 24 month ends
    history.py     runs, rows per policy and action, incidents, audit verification, versions
    build.py       the report as plain data, from one database
    labels.py      French and English labels, numbers and dates
    svg.py         the charts, as inline SVG written by hand (no dependency, no script)
    html.py        the self-contained HTML page
    text.py        the exposure figures for a terminal

Nothing here writes to the hospital's tables; no personal value enters a report: counts,
table and column names, policy names and hashes only.
"""
