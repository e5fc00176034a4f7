"""Both copies must end in the same state: otherwise the comparison means nothing."""

from __future__ import annotations

from dataclasses import dataclass

from bench.db import connect, table_counts

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
