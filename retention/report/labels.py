"""French and English labels, numbers and dates for the report and `retention exposure`.

French is the default: the report is read by French hospitals' compliance officers, directors
and auditors. `--lang en` gives the same page in English.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from retention.engines.binlog import BinaryLog
from retention.plan.clock import UNKNOWN_DUE

LANGUAGES = ("fr", "en")
DEFAULT_LANGUAGE = "fr"

_MONTHS = {
    "fr": (
        "janv.", "févr.", "mars", "avr.", "mai", "juin",
        "juil.", "août", "sept.", "oct.", "nov.", "déc.",
    ),
    "en": ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
}  # fmt: skip
_LONG_MONTHS_FR = (
    "janvier", "février", "mars", "avril", "mai", "juin",
    "juillet", "août", "septembre", "octobre", "novembre", "décembre",
)  # fmt: skip

_T: dict[str, tuple[str, str]] = {
    # page
    "title": ("Rapport de conformité : exposition des données", "Compliance report: data exposure"),
    "eyebrow": (
        "retention · conservation des données de santé",
        "retention · health data retention",
    ),
    "database": ("Base", "Database"),
    "as_of": ("situation au", "as of"),
    "generated": ("généré le", "generated on"),
    "policies_count": ("politique(s)", "policy(ies)"),
    "toc": ("Sommaire", "Contents"),
    "no_personal": (
        "Ce rapport ne contient aucune valeur personnelle : uniquement des comptes, des noms de "
        "tables, de colonnes et de politiques, et des empreintes SHA-256.",
        "This report holds no personal value: only counts, table, column and policy names, and "
        "SHA-256 digests.",
    ),
    "footer_method": (
        "Définitions et méthode : docs/REPORT.md. Chiffres calculés sur un instantané unique de "
        "la base, sans rien y écrire.",
        "Definitions and method: docs/REPORT.md. Figures computed from one snapshot of the "
        "database, writing nothing to it.",
    ),
    # exposure
    "s_exposure": ("Exposition aujourd'hui", "Exposure now"),
    "exposure_intro": (
        "Ce qu'une personne qui volerait la base active aujourd'hui emporterait.",
        "What someone stealing the live database today would take away.",
    ),
    "headline": (
        "Si la base était dérobée aujourd'hui : {subjects} personnes exposées, dont {past} qui "
        "ne devraient plus y figurer.",
        "If the database were stolen today: {subjects} people exposed, {past} of whom should no "
        "longer be there.",
    ),
    "population": ("Population", "Population"),
    "policies": ("politiques", "policies"),
    "f_subjects": ("Personnes dans la base active", "People in the live database"),
    "f_subjects_records": ("Enregistrements dans la base active", "Records in the live database"),
    "f_with_direct_identifiers": (
        "Porteuses d'identifiants directs",
        "Carrying direct identifiers",
    ),
    "f_with_direct_identifiers_sub": (
        "nom, NIR/INS, téléphone, e-mail ou adresse, selon le dernier scan",
        "name, NIR/INS, phone, e-mail or address, according to the last scan",
    ),
    "f_past_retention": ("Au-delà de la durée légale", "Past their legal retention"),
    "f_past_retention_sub": (
        "devraient avoir quitté la base active (0 attendu après chaque exécution)",
        "should have left the live database (0 expected after every run)",
    ),
    "f_contact_beyond_minimisation": (
        "Coordonnées gardées après minimisation",
        "Contact data kept beyond minimisation",
    ),
    "f_contact_beyond_minimisation_sub": (
        "la phase de minimisation est échue, les coordonnées sont encore là",
        "the minimisation phase is due, the contact data is still there",
    ),
    "f_archived": ("Dans les archives", "In archives"),
    "f_archived_sub": (
        "chiffrées, illisibles par le serveur",
        "encrypted, unreadable by the host",
    ),
    "f_held": ("Sous mise en attente légale", "Under a legal hold"),
    "f_held_sub": ("réclamation en cours : délai suspendu", "claim open: clock suspended"),
    "f_undeterminable": ("Indéterminables", "Undeterminable"),
    "f_undeterminable_sub": (
        "délai impossible à calculer : conservées et signalées",
        "clock cannot be computed: kept and reported",
    ),
    "of_subjects": ("{pct} de la population", "{pct} of the population"),
    "why": ("Pourquoi", "Why"),
    "reason_unknown_due": (
        "aucune date d'échéance (p. ex. aucune venue enregistrée)",
        "no due date (e.g. no recorded visit)",
    ),
    "reason_date": (
        "date « {name} » illisible ou absente",
        "date '{name}' unreadable or missing",
    ),
    "other_populations": (
        "Autres enregistrements soumis à une politique",
        "Other records under a policy",
    ),
    "other_populations_intro": (
        "Tables dont les lignes se rattachent déjà à une population ci-dessus (par exemple un "
        "journal des modifications) : comptées ici en lignes, pas en personnes.",
        "Tables whose rows already belong to a population above (e.g. a change log): counted "
        "here in rows, not people.",
    ),
    "table": ("Table", "Table"),
    "note_no_scan": (
        "Aucun scan enregistré : lancez « retention scan » pour compter les identifiants.",
        "No scan stored: run 'retention scan' to count identifiers.",
    ),
    "note_no_row_phase": (
        "Aucune phase de destruction ou d'archivage : pas de durée légale à dépasser.",
        "No purge or archive phase: no legal retention to exceed.",
    ),
    "note_no_minimisation_phase": (
        "Aucune phase de minimisation ne vise des coordonnées.",
        "No minimisation phase targets contact data.",
    ),
    "note_no_archive_catalogue": (
        "Archives : catalogue non installé (retention init), compté 0.",
        "Archives: catalogue not installed (retention init), counted as 0.",
    ),
    "note_no_holds_table": (
        "Mises en attente légales : table non installée (retention init).",
        "Legal holds: table not installed (retention init).",
    ),
    "outside_tables": ("Hors des tables", "Outside the tables"),
    "binlog_expires": (
        "Journaux binaires (binlog) actifs : les valeurs purgées ou pseudonymisées y restent "
        "{days} jour(s) après chaque exécution, lisibles par qui accède à ces fichiers ou les "
        "rejoue.",
        "Binary logs on: purged and pseudonymised values stay in them for {days} day(s) after "
        "each run, readable by whoever can read or replay these files.",
    ),
    "binlog_forever": (
        "Journaux binaires (binlog) actifs sans expiration : les valeurs purgées ou "
        "pseudonymisées y restent jusqu'à leur suppression manuelle (PURGE BINARY LOGS).",
        "Binary logs on with no expiry: purged and pseudonymised values stay in them until "
        "they are removed by hand (PURGE BINARY LOGS).",
    ),
    "wal_archive": (
        "Archivage des WAL actif : les valeurs purgées ou pseudonymisées restent dans les WAL "
        "archivés aussi longtemps que l'archive les garde (durée fixée dans l'outil de "
        "sauvegarde, pas dans PostgreSQL).",
        "WAL archiving on: purged and pseudonymised values stay in the archived WAL for as long "
        "as the archive keeps it (set in the backup tool, not in PostgreSQL).",
    ),
    "wal_archive_nowhere": (
        "Archivage des WAL actif sans destination : PostgreSQL garde tous les segments WAL dans "
        "pg_wal, avec les valeurs purgées ou pseudonymisées, jusqu'à ce qu'une commande soit "
        "définie.",
        "WAL archiving on with nowhere to archive to: PostgreSQL keeps every WAL segment in "
        "pg_wal, purged and pseudonymised values with them, until one is set.",
    ),
    "trend": ("Évolution après chaque exécution", "Trend after each run"),
    "trend_intro": (
        "Les mêmes chiffres, enregistrés à la fin de chaque exécution.",
        "The same figures, stored at the end of every run.",
    ),
    "trend_empty": (
        "Aucun instantané enregistré : le premier le sera à la fin de la prochaine exécution.",
        "No snapshot stored yet: the first one is stored at the end of the next run.",
    ),
    "snapshot": ("Instantané", "Snapshot"),
    "before_runs": ("avant exécution", "before a run"),
    "after_run": ("après exécution", "after run"),
    "now": ("aujourd'hui", "now"),
    "date": ("Date", "Date"),
    # inventory
    "s_inventory": ("Inventaire des données personnelles", "Inventory of personal data"),
    "inventory_intro": (
        "Colonnes personnelles trouvées par le dernier scan, par table et par nature, la "
        "politique et la phase qui les couvrent, et la confiance du scan (en %, la plus basse "
        "des colonnes de la case).",
        "Personal columns found by the last scan, by table and kind, the policy and phase "
        "covering them, and the scan's confidence (in %, the lowest of the cell's columns).",
    ),
    "inventory_none": (
        "Aucun scan enregistré : lancez « retention scan ».",
        "No scan stored: run 'retention scan'.",
    ),
    "scan_of": ("Scan n° {id} du {date}", "Scan #{id} of {date}"),
    "covered": ("couvert", "covered"),
    "kept": ("conservé volontairement", "kept on purpose"),
    "gap": ("non couvert", "not covered"),
    "gaps_title": (
        "Lacunes : colonnes qu'aucune politique ne couvre",
        "Gaps: columns no policy covers",
    ),
    "no_gaps": (
        "Aucune lacune : chaque colonne personnelle est couverte.",
        "No gap: every personal column is covered.",
    ),
    "covered_count": (
        "{covered} colonne(s) personnelle(s) sur {total} couvertes, {gaps} lacune(s)",
        "{covered} of {total} personal column(s) covered, {gaps} gap(s)",
    ),
    "column": ("Colonne", "Column"),
    "kind": ("Nature", "Kind"),
    "confidence": ("Confiance", "Confidence"),
    "covered_by": ("Couverte par", "Covered by"),
    "details": ("Détail des colonnes", "Columns in detail"),
    "k_name": ("Nom, prénom", "Name"),
    "k_nir": ("NIR / INS", "NIR / INS"),
    "k_birth": ("Naissance", "Birth date"),
    "k_phone": ("Téléphone", "Phone"),
    "k_email": ("E-mail", "E-mail"),
    "k_address": ("Adresse, lieu", "Address, place"),
    "k_identifier": ("Identifiant", "Identifier"),
    "k_professional": ("Id. professionnel", "Professional ID"),
    "k_free_text": ("Texte libre", "Free text"),
    "k_other": ("Autre", "Other"),
    # forecast
    "s_forecast": ("Prévisions sur 24 mois", "24-month forecast"),
    "forecast_intro": (
        "Personnes ou lignes que chaque phase traitera, mois par mois, si rien ne change "
        "(calcul de « retention plan --at » à chaque fin de mois).",
        "Subjects or rows each phase will act on, month by month, if nothing changes (what "
        "'retention plan --at' says at each month end).",
    ),
    "newly_due": ("Nouvellement échus chaque mois", "Becoming due each month"),
    "due_today": ("échus aujourd'hui", "due today"),
    "due_today_note": (
        "traités à la prochaine exécution",
        "acted on at the next run",
    ),
    "in_months": ("d'ici {n} mois", "within {n} months"),
    "approval_pending": (
        "En attente d'approbation ({given}/{required}) : la phase ne s'exécutera pas",
        "Awaiting approval ({given}/{required}): the phase will not run",
    ),
    "approval_ok": ("Approuvée ({given}/{required})", "Approved ({given}/{required})"),
    "approval_off": ("Approbation non exigée", "Approval not required"),
    "holds_active": (
        "{n} sous mise en attente légale (exclus)",
        "{n} under a legal hold (excluded)",
    ),
    "held_due": (
        "{n} échus mais retenus par une mise en attente légale",
        "{n} due but kept by a legal hold",
    ),
    "cumulative": (
        "Total échu à chaque date (ce que dirait « retention plan --at »)",
        "Total due at each date (what 'retention plan --at' would say)",
    ),
    "phase": ("Phase", "Phase"),
    "today": ("Aujourd'hui", "Today"),
    "plus_months": ("+{n} mois", "+{n} months"),
    "held_col": ("Retenus (attente légale)", "Held (legal hold)"),
    "a_purge": ("destruction", "purge"),
    "a_archive": ("archivage", "archive"),
    "a_erase": ("effacement", "erase"),
    "a_pseudonymize": ("pseudonymisation", "pseudonymize"),
    "a_generalize": ("généralisation", "generalize"),
    "a_scrub": ("nettoyage du texte libre", "scrub"),
    # history
    "s_history": ("Historique", "History"),
    "history_intro": (
        "Exécutions, lignes traitées par politique et action, incidents, et intégrité du journal "
        "d'audit vérifiée au moment du rapport.",
        "Runs, rows per policy and action, incidents, and the audit trail's integrity verified "
        "when the report was made.",
    ),
    "history_none": (
        "Schéma de l'outil non installé : aucune exécution (retention init).",
        "The tool's schema is not installed: no run yet (retention init).",
    ),
    "audit_ok": (
        "Journal d'audit intègre : {n} entrées vérifiées (chaîne SHA-256)",
        "Audit trail intact: {n} entries verified (SHA-256 chain)",
    ),
    "audit_broken_anchored": (
        "Journal d'audit ROMPU à partir de l'entrée n° {seq} : {problem}",
        "Audit trail BROKEN from entry #{seq}: {problem}",
    ),
    "audit_head_file": (
        "Vérifié aussi contre le fichier de tête, hors de la base.",
        "Also checked against the head file, outside the database.",
    ),
    "audit_no_head_file": (
        "Non vérifié contre un enregistrement hors de la base (audit_head_file) : la "
        "suppression des dernières entrées ne se verrait pas.",
        "Not checked against a record outside the database (audit_head_file): removing the "
        "last entries would not show.",
    ),
    "audit_broken": (
        "Journal d'audit ROMPU à l'entrée n° {seq} : {problem} ({n} entrées vérifiées avant)",
        "Audit trail BROKEN at entry #{seq}: {problem} ({n} entries verified before it)",
    ),
    "runs": ("Exécutions", "Runs"),
    "runs_summary": ("{n} exécution(s) au total", "{n} run(s) in all"),
    "runs_shown": ("les {n} plus récentes ci-dessous", "the latest {n} below"),
    "no_runs": ("Aucune exécution.", "No run yet."),
    "started": ("Début", "Started"),
    "duration": ("Durée", "Duration"),
    "ended": ("Fin", "Ended"),
    "outcome": ("Résultat", "Outcome"),
    "command": ("Commande", "Command"),
    "subjects": ("Sujets", "Subjects"),
    "rows": ("Lignes", "Rows"),
    "work": ("Par politique et action", "Per policy and action"),
    "o_completed": ("terminée", "completed"),
    "o_interrupted": ("interrompue", "interrupted"),
    "o_failed": ("en échec", "failed"),
    "o_abandoned": ("abandonnée", "abandoned"),
    "o_running": ("en cours", "running"),
    "incidents": ("Interruptions, erreurs et refus", "Interruptions, errors and refusals"),
    "no_incidents": ("Aucun incident.", "No incident."),
    "event": ("Événement", "Event"),
    "message": ("Message", "Message"),
    "entry": ("Entrée", "Entry"),
    "e_run_interrupted": ("exécution interrompue", "run interrupted"),
    "e_run_failed": ("exécution en échec", "run failed"),
    "e_run_abandoned": ("exécution abandonnée (processus arrêté)", "run abandoned (process died)"),
    "e_batch_failed": ("lot en erreur (rien modifié)", "batch failed (nothing changed)"),
    "e_batch_skipped": ("lot reporté (verrou ou délai)", "batch skipped (lock or timeout)"),
    "e_phase_not_approved": (
        "phase non exécutée : approbations insuffisantes",
        "phase not run: not enough approvals",
    ),
    "e_phase_refused": (
        "phase non exécutée : refusée (classes polymorphes non rattachées, ou tables sans "
        "transactions)",
        "phase not run: refused (unmapped polymorphic classes, or tables without transactions)",
    ),
    "e_limit_override": (
        "limite de sécurité dépassée sur décision (motif dans le journal d'audit)",
        "safety limit overridden (reason in the audit trail)",
    ),
    "e_limits_refused": (
        "exécution refusée : limites de sécurité dépassées (rien modifié)",
        "run refused: safety limits exceeded (nothing changed)",
    ),
    "e_archive_reconciled": (
        "archive réconciliée après une interruption",
        "archive reconciled after an interruption",
    ),
    "e_archive_expiry_failed": (
        "échec de destruction d'archives expirées",
        "expired archives could not be destroyed",
    ),
    "versions": ("Versions des politiques et approbations", "Policy versions and approvals"),
    "versions_intro": (
        "Chaque contenu de fichier de politique est identifié par son empreinte SHA-256 ; "
        "modifier le fichier retire ses approbations. Approbations exigées : {n}.",
        "Each content of a policy file is identified by its SHA-256; editing the file withdraws "
        "its approvals. Approvals required: {n}.",
    ),
    "policy": ("Politique", "Policy"),
    "version": ("Version (SHA-256)", "Version (SHA-256)"),
    "current": ("actuelle", "current"),
    "former": ("ancienne", "former"),
    "acted": ("Actions", "Activity"),
    "batches_between": ("{n} lot(s), du {first} au {last}", "{n} batch(es), {first} to {last}"),
    "never_acted": ("aucune action", "no action"),
    "approvals": ("Approbations", "Approvals"),
    "none": ("aucune", "none"),
    # terminal
    "exposure_as_of": ("Exposition au {date}", "Exposure as of {date}"),
    "scan_line": ("dernier scan : n° {id} du {date}", "last scan: #{id} of {date}"),
    "no_scan_line": ("aucun scan enregistré", "no scan stored"),
}


def t(key: str, lang: str, **values: object) -> str:
    """The label `key` in `lang`, with `{name}` fields filled from `values`."""
    text = _T[key][0 if lang == "fr" else 1]
    return text.format(**values) if values else text


def has(key: str) -> bool:
    return key in _T


def number(value: int | None, lang: str) -> str:
    """5 000 in French (narrow no-break space), 5,000 in English; — for unknown."""
    if value is None:
        return "—"
    text = f"{value:,}"
    return text.replace(",", "\u202f") if lang == "fr" else text


def percent(part: int | None, whole: int, lang: str) -> str:
    if part is None or whole <= 0:
        return "—"
    value = 100 * part / whole
    if 0 < value < 0.1:
        text = "< 0.1"
    elif 99.9 < value < 100:
        text = "> 99.9"
    else:
        text = f"{value:.0f}" if value >= 10 or value == 0 else f"{value:.1f}"
    return (text.replace(".", ",") + "\u202f%") if lang == "fr" else f"{text}%"


def day(value: date, lang: str) -> str:
    if lang == "fr":
        return f"{value.day} {_LONG_MONTHS_FR[value.month - 1]} {value.year}"
    return f"{value.day} {_MONTHS['en'][value.month - 1]} {value.year}"


def short_day(value: date, lang: str) -> str:
    if lang == "fr":
        return f"{value.day:02d}/{value.month:02d}/{value.year}"
    return value.isoformat()


def moment(value: datetime, lang: str, zone: str, *, seconds: bool = False) -> str:
    local = value.astimezone(ZoneInfo(zone))
    return (
        f"{short_day(local.date(), lang)} {local:%H:%M:%S}"
        if seconds
        else (f"{short_day(local.date(), lang)} {local:%H:%M}")
    )


def duration(value: timedelta) -> str:
    """'42 s', '3 min 05 s', '2 h 10 min'."""
    total = max(0, round(value.total_seconds()))
    if value.total_seconds() < 1:
        return "< 1 s"
    if total < 60:
        return f"{total} s"
    if total < 3600:
        return f"{total // 60} min {total % 60:02d} s"
    return f"{total // 3600} h {total % 3600 // 60:02d} min"


def month(value: date, lang: str) -> str:
    """Axis label: 'déc.' / 'Dec', with the year on January and on the first label."""
    return _MONTHS[lang if lang in _MONTHS else "en"][value.month - 1]


def reason(text: str, lang: str) -> str:
    """An undeterminable reason: the clock's sentence, or the name of a date."""
    if text == UNKNOWN_DUE:
        return t("reason_unknown_due", lang)
    return t("reason_date", lang, name=text)


def binary_log_label(log: BinaryLog) -> str:
    """The label saying what the server's log of changes keeps (when it is on)."""
    if log.kind == "wal_archive":
        return "wal_archive" if log.archives_somewhere else "wal_archive_nowhere"
    return "binlog_expires" if log.expires else "binlog_forever"
