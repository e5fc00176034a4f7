"""Settings: environment (`RETENTION_*`), an optional TOML file, and secrets from files.

Precedence, highest first: explicit overrides, environment variables, secret files
(`RETENTION_<NAME>_FILE`, then systemd's `$CREDENTIALS_DIRECTORY/<name>`), the TOML file, defaults.
Secrets are `SecretStr`: they never appear in `repr`, logs or error messages. Invalid settings
raise one :class:`SettingsError` listing every problem.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
import zoneinfo
from collections.abc import Mapping
from contextvars import ContextVar
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import unquote

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from pydantic_settings import SettingsError as SourceError

from retention.errors import SettingsError

DEFAULT_CONFIG = Path("/etc/retention/retention.toml")
DEFAULT_SCHEDULE = "30 2 * * *"
# pydantic-settings' message on a JSON value it cannot parse: 'error parsing value for field
# "approver_roles" from source "EnvSettingsSource"'
_SOURCE_FIELD = re.compile(r'field "([a-z_]+)"')
ENV_PREFIX = "RETENTION_"
# variables of the same prefix that are no setting: the test suite's, the evaluation's and the
# benchmarks' own databases
_NOT_SETTINGS = ("RETENTION_TEST_", "RETENTION_EVAL_", "RETENTION_BENCH_")
SECRET_FIELDS = ("database_url", "pseudonym_key", "audit_key", "audit_signing_key")
_toml_values: ContextVar[dict[str, Any]] = ContextVar("_toml_values", default={})  # noqa: B039


RECIPIENT_PREFIX = "age1"


def recipient_problem(text: str) -> str | None:
    """Why `text` is not an age X25519 public key, or None. The settings check the archive
    recipients with it (the encryption library is loaded only when some are set)."""
    if not text.startswith(RECIPIENT_PREFIX):
        return "is not an age X25519 public key (it must start with 'age1')"
    import pyrage

    try:
        pyrage.x25519.Recipient.from_str(text)
    except pyrage.RecipientError:
        return "is not a valid age X25519 public key (bad length or checksum)"
    return None


class Settings(BaseSettings):
    """Everything an operator can set. Field docs are the reference for the README."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="forbid", validate_default=True, frozen=True
    )

    database_url: SecretStr | None = Field(
        default=None, description="libpq URL or conninfo of the hospital database (a secret)."
    )
    policies_dir: Path = Field(default=Path("policies"), description="Folder of *.yaml policies.")
    timezone: str = Field(default="Europe/Paris", description="Zone of the legal calendar.")
    schema_name: str = Field(
        default="retention",
        pattern=r"^[a-z_][a-z0-9_]{0,62}$",
        description="The tool's own schema.",
    )
    search_path: str = Field(
        default="public",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*(, ?[A-Za-z_][A-Za-z0-9_]*)*$",
        description="Schemas searched for unqualified table names.",
    )
    application_name: str = Field(default="retention", description="Shown in pg_stat_activity.")
    connect_timeout: int = Field(default=10, ge=1, le=600, description="Seconds.")
    batch_size: int = Field(
        default=20_000, ge=1, le=100_000, description="Subjects per batch, at most."
    )
    batch_seconds: float = Field(
        default=0.5,
        ge=0,
        le=60,
        description="Target length of a batch's transaction: each batch takes as many subjects "
        "as the last ones processed in this time, at most batch_size (0: always batch_size).",
    )
    workers: int = Field(
        default=2,
        ge=1,
        le=16,
        description="Batches of a column or purge pass run side by side, each on its own "
        "connection (1: one after the other on the run's connection); `scan` samples as many "
        "tables side by side.",
    )
    lock_timeout_ms: int = Field(default=2000, ge=1, description="SET LOCAL lock_timeout.")
    statement_timeout_ms: int = Field(default=30_000, ge=1, description="SET LOCAL timeout.")
    max_subjects_per_phase: int = Field(
        default=50_000, ge=0, description="Safety limit: subjects one phase may act on per run."
    )
    max_share_per_phase: float = Field(
        default=0.10, gt=0, le=1, description="Safety limit: share of the subject table per run."
    )
    max_clock_skew_seconds: int = Field(
        default=300, ge=1, description="Refuse to run when database and host clocks differ more."
    )
    lock_wait_seconds: float = Field(
        default=0.0, ge=0, description="How long a run waits for another run to finish."
    )
    schedule: str = Field(
        default=DEFAULT_SCHEDULE,
        description="Cron expression of daemon runs (settings' time zone).",
    )
    random_delay_seconds: float = Field(default=0, ge=0, description="Random delay before runs.")
    retry_max_seconds: float = Field(
        default=300, ge=1, description="Ceiling of the back-off while the database is away."
    )
    metrics_listen: str | None = Field(
        default=None,
        pattern=r"^[0-9a-fA-F.:\[\]]+:[0-9]{1,5}$",
        description="host:port of the Prometheus endpoint (loopback), e.g. 127.0.0.1:9464.",
    )
    metrics_textfile: Path | None = Field(
        default=None, description="node exporter textfile written after each run (*.prom)."
    )
    required_approvals: int = Field(
        default=2,
        ge=0,
        description="Distinct signers whose valid signatures a purge/archive phase needs (0: off).",
    )
    approvers_file: Path | None = Field(
        default=None,
        description="OpenSSH allowed_signers file: who may sign approvals, with which key "
        "(namespace retention-approval; valid-before revokes a key).",
    )
    approver_roles: dict[str, str] = Field(
        default_factory=dict,
        description="Role of each approver (principal of approvers_file -> role), e.g. "
        '{"dr.martin" = "medecin-dim"}; JSON in the environment.',
    )
    required_roles: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(),
        description="Roles that must each be held by a distinct valid signer, e.g. "
        "'directeur,medecin-dim' (R1112-7); comma-separated in the environment.",
    )
    audit_log: Path | None = Field(
        default=None,
        description="File receiving every audit entry as a JSON line ('-': stderr, journald).",
    )
    audit_signing_key: SecretStr | None = Field(
        default=None,
        description="OpenSSH Ed25519 private key signing every audit entry (a secret: "
        "'ssh-keygen -t ed25519 -N \"\"'); the database never sees it.",
    )
    audit_public_keys: Path | None = Field(
        default=None,
        description="Public keys the audit entries are checked with, one OpenSSH line each, "
        "oldest first (key rotation: append the new key, keep the old ones).",
    )
    audit_signed_from: int | None = Field(
        default=None,
        ge=1,
        description="Sequence number of the first audit entry that must be signed: 1 on a new "
        "installation; on one upgraded from unsigned entries, the first signed entry ('audit "
        "verify' says how many came before). Kept outside the database, it makes 'audit "
        "verify' refuse a trail rewritten whole without signatures.",
    )
    audit_head_file: Path | None = Field(
        default=None,
        description="File to which each run appends the audit trail's last entry (sequence "
        "number and hash), outside the database: 'audit verify' then detects removed last "
        "entries or a rewritten chain.",
    )
    archive_dir: Path | None = Field(
        default=None, description="Local directory receiving encrypted archives (must exist)."
    )
    archive_recipients: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(),
        description="age X25519 public keys (age1...) archives are encrypted to; comma-separated "
        "in the environment. The host holds no private key.",
    )
    archive_group: Literal["month", "year"] = Field(
        default="month", description="Archives are grouped and expire by month (or year)."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["text", "json"] = "text"
    pseudonym_key: SecretStr | None = Field(default=None, description="HMAC key (a secret).")
    audit_key: SecretStr | None = Field(default=None, description="Audit HMAC key (a secret).")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r} (expected e.g. 'Europe/Paris')"
            ) from None
        return value

    @field_validator("required_roles", mode="before")
    @classmethod
    def _split_roles(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(r.strip() for r in value.split(",") if r.strip())
        return value

    @field_validator("archive_recipients", mode="before")
    @classmethod
    def _split_recipients(cls, value: Any) -> Any:
        return tuple(value.replace(",", " ").split()) if isinstance(value, str) else value

    @field_validator("archive_recipients")
    @classmethod
    def _valid_recipients(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:  # none: the archive code (and its encryption library) is not needed
            return value
        problems = [
            f"item {i + 1} {problem}"
            for i, text in enumerate(value)
            if (problem := recipient_problem(text)) is not None
        ]
        if problems:
            raise ValueError("; ".join(problems))
        return value

    @field_validator(
        "metrics_textfile", "audit_log", "audit_head_file", "archive_dir", mode="before"
    )
    @classmethod
    def _not_empty_path(cls, value: Any, info: ValidationInfo) -> Any:
        # an empty value would be the current directory: never what is meant
        if isinstance(value, str) and not value.strip():
            what = "a directory" if info.field_name == "archive_dir" else "a file"
            raise ValueError(f"is empty: name {what}, or leave the setting out to turn it off")
        return value

    @field_validator("metrics_textfile", "audit_log", "audit_head_file")
    @classmethod
    def _not_a_directory(cls, value: Path | None) -> Path | None:
        if value is not None and value.is_dir():
            raise ValueError(f"{value} is a directory: name a file in it")
        return value

    @field_validator("schedule")
    @classmethod
    def _a_cron_expression(cls, value: str) -> str:
        """Checked by every command, as every other setting (an outside review: only the
        daemon said a schedule was no cron expression). The default is not: croniter and
        dateutil cost every command's start 10-17 ms."""
        if value == DEFAULT_SCHEDULE:
            return value
        from croniter import CroniterBadCronError, croniter

        try:
            croniter(value)
        except (CroniterBadCronError, ValueError, KeyError) as exc:
            raise ValueError(f"'{value}' is not a cron expression ({exc})") from None
        return value

    @field_validator("metrics_listen")
    @classmethod
    def _a_port(cls, value: str | None) -> str | None:
        if value is not None and int(value.rpartition(":")[2]) > 65535:
            raise ValueError("the port is over 65535")
        return value

    @field_validator("database_url")
    @classmethod
    def _not_blank(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return value
        text = value.get_secret_value()
        if not text.strip():
            raise ValueError("is empty")
        try:  # bytes of another encoding in the environment arrive as lone surrogates
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("holds bytes that are not UTF-8 text") from None
        if "\x00" in unquote(text):
            raise ValueError("holds a NUL character (%00)")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = _TomlSource(settings_cls)
        return (init_settings, env_settings, _SecretFilesSource(settings_cls), toml)

    def today(self) -> date:
        """Today in the legal calendar's time zone."""
        return datetime.now(zoneinfo.ZoneInfo(self.timezone)).date()

    def require_database_url(self) -> str:
        """The database URL, or a clear error saying how to set it."""
        if self.database_url is None:
            raise SettingsError(
                [
                    "database_url is not set: set RETENTION_DATABASE_URL, "
                    "RETENTION_DATABASE_URL_FILE, a 'database-url' systemd credential, "
                    "or database_url in the TOML file"
                ]
            )
        return self.database_url.get_secret_value()


class _SecretFilesSource(PydanticBaseSettingsSource):
    """Secrets read from `RETENTION_<NAME>_FILE` or `$CREDENTIALS_DIRECTORY/<name>`."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return _read_secret(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        found = {name: _read_secret(name) for name in SECRET_FIELDS}
        return {name: value for name, value in found.items() if value is not None}


class _TomlSource(PydanticBaseSettingsSource):
    """The `[retention]` table (or top level) of the TOML file given to :func:`load_settings`."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return _toml_values.get().get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(_toml_values.get())


def _read_secret(name: str) -> str | None:
    explicit = os.environ.get(f"{ENV_PREFIX}{name.upper()}_FILE")
    candidates = [Path(explicit)] if explicit else []
    creds = os.environ.get("CREDENTIALS_DIRECTORY")
    if creds:
        candidates += [Path(creds) / name.replace("_", "-"), Path(creds) / name]
    for path in candidates:
        if path.is_file():
            try:
                return path.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise SettingsError(
                    [f"{name}: cannot read secret file {path}: {exc.strerror}"]
                ) from None
            except UnicodeDecodeError:
                raise SettingsError(
                    [
                        f"{name}: secret file {path} is not text (UTF-8): write the secret as "
                        "text, e.g. `openssl rand -base64 48 > FILE`"
                    ]
                ) from None
        if explicit and path == Path(explicit):
            raise SettingsError([f"{name}: secret file {path} does not exist"])
    return None


def load_settings(config: Path | None = None, **overrides: Any) -> Settings:
    """Load settings; `config` defaults to /etc/retention/retention.toml when present."""
    path = config or (DEFAULT_CONFIG if DEFAULT_CONFIG.is_file() else None)
    toml = _read_toml(path) if path else {}
    token = _toml_values.set(toml)
    given = {k: v for k, v in overrides.items() if v is not None}
    unknown = unknown_variables(os.environ)
    if unknown:
        raise SettingsError(unknown)
    try:
        return Settings(**given)
    except SourceError as exc:  # a JSON setting (approver_roles...) that is not JSON
        field = _SOURCE_FIELD.search(str(exc))
        name = field.group(1) if field else "a setting"
        raise SettingsError(
            [
                f"{name}: not valid JSON (RETENTION_{name.upper()} takes a JSON object, e.g. "
                '{"alice@example.org": "dpo"})'
            ]
        ) from None
    except ValidationError as exc:
        origins = [_origin(error["loc"], given, toml, path) for error in _errors(exc)]
        # the file named in the title only when every bad value came from it
        from_file = path is not None and all(o == str(path) for o in origins)
        problems = [
            p if from_file or o is None else f"{p} (from {o})"
            for p, o in zip(_describe(exc), origins, strict=True)
        ]
        raise SettingsError(problems, source=str(path) if from_file else None) from None
    finally:
        _toml_values.reset(token)


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """A problem for each `RETENTION_*` variable that is no setting: a misspelt
    `RETENTION_REQUIRED_APPROVAL` would otherwise be ignored, and a destructive phase run without
    the approvals the DBA meant to require. The value is never shown (it may be a secret)."""
    known = {f"{ENV_PREFIX}{name.upper()}" for name in Settings.model_fields}
    known |= {f"{ENV_PREFIX}{name.upper()}_FILE" for name in SECRET_FIELDS}
    problems = []
    for variable in sorted(environ):
        name = variable.upper()  # pydantic-settings reads them without regard to case
        if not name.startswith(ENV_PREFIX) or name in known or name.startswith(_NOT_SETTINGS):
            continue
        close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.75)
        hint = f"did you mean {close[0]}?" if close else "see `retention --help` and the README"
        problems.append(
            f"environment variable {variable}: no such setting ({hint}); correct its name or "
            "unset it"
        )
    return problems


def _errors(exc: ValidationError) -> list[Any]:
    return list(exc.errors(include_input=False, include_url=False))


def _origin(
    loc: tuple[int | str, ...], given: dict[str, Any], toml: dict[str, Any], path: Path | None
) -> str | None:
    """Where a setting's bad value came from, as the sources' order decides (arguments, then
    the environment and secret files, then the TOML file)."""
    name = str(loc[0]) if loc else ""
    if name in given:
        return "the command line"
    variable = f"{ENV_PREFIX}{name.upper()}"
    environ = {key.upper(): key for key in os.environ}  # names read without regard to case
    if variable in environ:
        return f"environment variable {environ[variable]}"
    if f"{variable}_FILE" in environ:
        return f"secret file {os.environ[environ[f'{variable}_FILE']]}"
    credentials = os.environ.get("CREDENTIALS_DIRECTORY")
    if credentials and name in SECRET_FIELDS:
        for candidate in (Path(credentials) / name.replace("_", "-"), Path(credentials) / name):
            if candidate.is_file():
                return f"secret file {candidate}"
    if path is not None and name in toml:
        return str(path)
    return None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise SettingsError([f"configuration file {path} does not exist"]) from None
    except OSError as exc:
        raise SettingsError([f"cannot read {path}: {exc.strerror}"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError([f"not valid TOML: {exc}"], source=str(path)) from None
    except UnicodeDecodeError:
        raise SettingsError(["not valid TOML: not UTF-8 text"], source=str(path)) from None
    section = data.get("retention", data)
    if not isinstance(section, dict):
        raise SettingsError(["[retention] must be a table"], source=str(path))
    return dict(section)


def _describe(exc: ValidationError) -> list[str]:
    """Every problem, without ever echoing the value (it may be a secret)."""
    problems = []
    for error in _errors(exc):
        name = ".".join(str(part) for part in error["loc"]) or "settings"
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = f"unknown setting (known: {', '.join(sorted(Settings.model_fields))})"
        problems.append(f"{name}: {message}")
    return problems
