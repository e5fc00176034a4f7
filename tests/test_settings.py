"""Settings: environment, TOML file, secret files; every problem listed; secrets never shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from retention.errors import SettingsError
from retention.settings import load_settings

SECRET = "postgresql://app:s3cr3t-Pa55@db.example/hop"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("RETENTION_") or name == "CREDENTIALS_DIRECTORY":
            monkeypatch.delenv(name)


def test_environment_overrides_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "retention.toml"
    config.write_text('[retention]\nbatch_size = 500\ntimezone = "Europe/Paris"\n')
    monkeypatch.setenv("RETENTION_BATCH_SIZE", "700")
    settings = load_settings(config)
    assert settings.batch_size == 700
    assert settings.timezone == "Europe/Paris"


def test_toml_value_is_used_without_environment(tmp_path: Path) -> None:
    config = tmp_path / "retention.toml"
    config.write_text("batch_size = 500\n")
    assert load_settings(config).batch_size == 500


def test_secret_from_systemd_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "database-url").write_text(SECRET + "\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    settings = load_settings()
    assert settings.require_database_url() == SECRET
    assert "s3cr3t" not in repr(settings) and "s3cr3t" not in str(settings)


def test_secret_from_named_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "url").write_text(SECRET)
    monkeypatch.setenv("RETENTION_DATABASE_URL_FILE", str(tmp_path / "url"))
    assert load_settings().require_database_url() == SECRET


def test_missing_secret_file_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETENTION_DATABASE_URL_FILE", str(tmp_path / "nope"))
    with pytest.raises(SettingsError, match="does not exist"):
        load_settings()


def test_a_binary_secret_file_is_an_error_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "key").write_bytes(bytes([0x9F, 0xDF, 0x00, 0xFF]) * 12)  # not UTF-8
    monkeypatch.setenv("RETENTION_AUDIT_KEY_FILE", str(tmp_path / "key"))
    with pytest.raises(SettingsError, match="is not text") as caught:
        load_settings()
    assert str(tmp_path / "key") in str(caught.value)


def test_every_problem_is_listed_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "retention.toml"
    config.write_text('batch_sise = 3\nlog_level = "LOUD"\n')
    monkeypatch.setenv("RETENTION_TIMEZONE", "Mars/Olympus")
    monkeypatch.setenv("RETENTION_DATABASE_URL", SECRET)
    monkeypatch.setenv("RETENTION_CONNECT_TIMEOUT", "-1")
    with pytest.raises(SettingsError) as caught:
        load_settings(config)
    problems = caught.value.problems
    assert len(problems) == 4
    assert any(p.startswith("batch_sise: unknown setting") for p in problems)
    assert any(p.startswith("timezone:") for p in problems)
    assert caught.value.exit_code == 2
    assert "s3cr3t" not in caught.value.render()


def test_each_bad_value_names_where_it_came_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A value from the environment is not blamed on the TOML file: the title names the file
    only when every bad value came from it."""
    config = tmp_path / "retention.toml"
    config.write_text("batch_size = -3\nworkers = 2\n")
    monkeypatch.setenv("RETENTION_TIMEZONE", "Mars/Olympus")
    monkeypatch.setenv("RETENTION_WORKERS", "0")  # over the file's 2
    with pytest.raises(SettingsError) as caught:
        load_settings(config)
    message = caught.value.render()
    assert message.startswith("error: invalid settings:\n")
    assert "(from environment variable RETENTION_TIMEZONE)" in message
    assert "(from environment variable RETENTION_WORKERS)" in message
    assert f"batch_size: Input should be greater than or equal to 1 (from {config})" in message
    monkeypatch.delenv("RETENTION_TIMEZONE")
    monkeypatch.delenv("RETENTION_WORKERS")
    with pytest.raises(SettingsError) as caught:
        load_settings(config)
    assert caught.value.render().startswith(f"error: invalid settings in {config}:\n")
    assert "(from" not in caught.value.render()


def test_invalid_toml_is_reported_with_its_file(tmp_path: Path) -> None:
    config = tmp_path / "retention.toml"
    config.write_text("batch_size = = 3\n")
    with pytest.raises(SettingsError, match="not valid TOML"):
        load_settings(config)


def test_missing_database_url_says_how_to_set_it() -> None:
    with pytest.raises(SettingsError, match="RETENTION_DATABASE_URL"):
        load_settings().require_database_url()


@pytest.mark.parametrize("length", [32, 64, 65, 200])
def test_key_digest_is_hmac_sha256(length: int) -> None:
    # Key.digest computes HMAC from the key's two pads hashed once (RFC 2104): it must equal
    # the standard library's, keys longer than SHA-256's block (64 bytes) included
    import hashlib
    import hmac
    import os

    from retention.keys import Key

    secret = os.urandom(length)
    key = Key(secret, "id")
    for message in (b"", b"dossier-medical\x0012345", os.urandom(1000)):
        assert key.digest(message) == hmac.new(secret, message, hashlib.sha256).digest()


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("mariadb://root:s3cr3t%00x@127.0.0.1:3306/hop", "holds a NUL character (%00)"),
        ("mariadb://root:s3cr3t\udce9@127.0.0.1/hop", "holds bytes that are not UTF-8 text"),
    ],
)
def test_a_url_no_driver_can_take_is_an_error_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, url: str, said: str
) -> None:
    """An outside review: a NUL in the URL (`%00`) or a Latin-1 byte in the environment (a
    lone surrogate once Python decodes it) reached the driver, which raised a traceback."""
    monkeypatch.setenv("RETENTION_DATABASE_URL", url)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert said in caught.value.render()
    assert "s3cr3t" not in caught.value.render()


def test_a_json_setting_that_is_not_json_is_an_error_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RETENTION_APPROVER_ROLES", "{bad json")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert caught.value.problems == [
        "approver_roles: not valid JSON (RETENTION_APPROVER_ROLES takes a JSON object, e.g. "
        '{"alice@example.org": "dpo"})'
    ]


def test_a_configuration_file_not_in_utf8_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    config = tmp_path / "retention.toml"
    config.write_bytes(b"\xff\xfe")
    with pytest.raises(SettingsError, match="not UTF-8 text") as caught:
        load_settings(config)
    assert str(config) in caught.value.render()


def test_a_metrics_port_over_65535_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETENTION_METRICS_LISTEN", "127.0.0.1:99999")
    with pytest.raises(SettingsError, match="the port is over 65535"):
        load_settings()


def test_a_schedule_that_is_no_cron_expression_stops_every_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An outside review: `plan` took any schedule; only the daemon said it was wrong."""
    monkeypatch.setenv("RETENTION_SCHEDULE", "61 * * *")
    with pytest.raises(SettingsError, match="'61 \\* \\* \\*' is not a cron expression"):
        load_settings()
    monkeypatch.setenv("RETENTION_SCHEDULE", "*/5 * * * *")
    assert load_settings().schedule == "*/5 * * * *"


def test_an_unknown_retention_variable_is_an_error_naming_the_setting_meant(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An outside review: `RETENTION_REQUIRED_APPROVAL=2` (one letter short) was ignored, and a
    purge ran with the default approvals. The value is never shown; the suite's and the
    evaluation's own variables are not settings and pass."""
    monkeypatch.setenv("RETENTION_REQUIRED_APPROVAL", "s3cr3t")
    monkeypatch.setenv("retention_bacth_size", "10")
    monkeypatch.setenv("RETENTION_TEST_DATABASE_URL", "postgresql://elsewhere/test")
    monkeypatch.setenv("RETENTION_DATABASE_URL_FILE", "/nonexistent")  # a secret's file: known
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert caught.value.problems == [
        "environment variable RETENTION_REQUIRED_APPROVAL: no such setting (did you mean "
        "RETENTION_REQUIRED_APPROVALS?); correct its name or unset it",
        "environment variable retention_bacth_size: no such setting (did you mean "
        "RETENTION_BATCH_SIZE?); correct its name or unset it",
    ]
    assert "s3cr3t" not in caught.value.render()
    monkeypatch.delenv("RETENTION_REQUIRED_APPROVAL")
    monkeypatch.delenv("retention_bacth_size")
    monkeypatch.setenv("RETENTION_REQUIRED_APPROVALS", "2")
    monkeypatch.delenv("RETENTION_DATABASE_URL_FILE")
    assert load_settings().required_approvals == 2
