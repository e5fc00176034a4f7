"""Both copies must end in the same state: otherwise the comparison means nothing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from bench.db import connect, table_counts

LEGAL_ZONE = "Europe/Paris"  # the engine's legal calendar (the settings' default)


def legal_today() -> date:
    """Today in the engine's legal calendar: what the hand-written side is given."""
    return datetime.now(ZoneInfo(LEGAL_ZONE)).date()


def warn_if_the_day_changed(today: date) -> bool:
    """`retention run` takes today's date when it starts; the hand-written side was given
    `today` earlier. Across midnight (Europe/Paris) the two sides used different days, and
    copies that differ say nothing about the engine. True (and a warning) when that happened."""
    if legal_today() == today:
        return False
    print(
        f"  WARNING: the date in {LEGAL_ZONE} changed during this measurement (the hand-written "
        f"side used {today}): the copies may differ for that reason; rerun"
    )
    return True


_IDS = "SELECT md5(coalesce(string_agg(patient_id::text, ',' ORDER BY patient_id), '')), " \
       "count(*) FROM patients WHERE {}"  # fmt: skip
_ERASED = "tel IS NULL AND tel_portable IS NULL AND email IS NULL AND adresse IS NULL"


@dataclass(frozen=True)
class Comparison:
    """Whether both copies agree, and what was compared."""

    same: bool
    details: dict[str, tuple[object, object]]


def _id_digest(url: str, condition: str) -> tuple[str, int]:
    with connect(url) as conn:
        row = conn.execute(_IDS.format(condition)).fetchone()
    assert row is not None
    return str(row[0]), int(row[1])


def compare_purge(hand_url: str, engine_url: str) -> Comparison:
    """Same rows left in every table, same patients left."""
    with connect(hand_url) as conn:
        hand = table_counts(conn)
    with connect(engine_url) as conn:
        engine = table_counts(conn)
    details: dict[str, tuple[object, object]] = {t: (hand[t], engine[t]) for t in hand}
    details["patient ids"] = (_id_digest(hand_url, "true"), _id_digest(engine_url, "true"))
    return Comparison(all(a == b for a, b in details.values()), details)


def compare_minimise(hand_url: str, engine_url: str) -> Comparison:
    """Same patients pseudonymised (PSH- by hand, PSN- by retention), same contacts erased."""
    details: dict[str, tuple[object, object]] = {
        "pseudonymised": (
            _id_digest(hand_url, "nom LIKE 'PSH-%'"),
            _id_digest(engine_url, "nom LIKE 'PSN-%' AND prenom LIKE 'PSN-%'"),
        ),
        "contacts erased": (_id_digest(hand_url, _ERASED), _id_digest(engine_url, _ERASED)),
    }
    return Comparison(all(a == b for a, b in details.values()), details)
