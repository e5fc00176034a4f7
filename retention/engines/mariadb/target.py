"""Where to connect: a `mariadb://` or `mysql://` URL read, its password kept out of sight.

`mariadb://user:password@host:3306/dbname` (or `mysql://`); the database is the session's
default one (a "schema" is a database in MariaDB). Options in the query string: `unix_socket`,
`ssl`, `ssl_ca`, `ssl_cert`, `ssl_key`, `ssl_verify_cert`. A URL that cannot be read is a clear
error that never quotes it (it holds the password).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from retention.errors import DatabaseError

SCHEMES = ("mariadb", "mysql")
DEFAULT_PORT = 3306
_TEXT_OPTIONS = ("unix_socket", "ssl_ca", "ssl_cert", "ssl_key")
_FLAG_OPTIONS = ("ssl", "ssl_verify_cert")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")
_EXAMPLE = (
    "e.g. mariadb://user:password@host:3306/dbname; percent-encode @ : / ? # in the user name "
    "or the password"
)


@dataclass(frozen=True)
class Target:
    """Where to connect, from the URL; the password never appears in `repr` or `dsn()`."""

    scheme: str
    host: str
    port: int
    user: str | None
    password: str | None = field(repr=False)
    database: str
    options: tuple[tuple[str, str | bool], ...] = ()

    def driver_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"host": self.host, "port": self.port, **dict(self.options)}
        if self.user is not None:
            kwargs["user"] = self.user
        if self.password is not None:
            kwargs["password"] = self.password
        if self.database:
            kwargs["database"] = self.database
        return kwargs

    @property
    def asks_for_tls(self) -> bool:
        """`ssl=true`, `ssl_verify_cert=true`, or a CA, certificate or key given."""
        return any(
            value is True or (name in ("ssl_ca", "ssl_cert", "ssl_key") and value)
            for name, value in self.options
        )

    def dsn(self) -> str:
        """The URL without its password (what `conn.info.dsn` shows)."""
        user = f"{quote(self.user, safe='')}@" if self.user is not None else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        query = "&".join(f"{name}={_option_text(value)}" for name, value in self.options)
        dsn = f"{self.scheme}://{user}{host}:{self.port}/{quote(self.database, safe='')}"
        return f"{dsn}?{query}" if query else dsn


def parse_url(url: str) -> Target:
    """The target of a `mariadb://` or `mysql://` URL; a clear error that never quotes it."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise _malformed("its host or port cannot be read") from None
    scheme = parts.scheme.lower().split("+", 1)[0]
    if scheme not in SCHEMES:
        raise _malformed("it does not start with mariadb:// or mysql://")
    if parts.fragment:
        raise _malformed("it has a #fragment")
    return Target(
        scheme=scheme,
        host=parts.hostname or "localhost",
        port=port or DEFAULT_PORT,
        user=unquote(parts.username) if parts.username is not None else None,
        password=unquote(parts.password) if parts.password is not None else None,
        database=_database(parts.path),
        options=_options(parts.query),
    )


def _database(path: str) -> str:
    name = unquote(path[1:] if path.startswith("/") else path)
    if "/" in name:
        raise _malformed("its path holds more than a database name")
    return name


def _options(query: str) -> tuple[tuple[str, str | bool], ...]:
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise _malformed("its query string cannot be read") from None
    names = [name for name, _ in pairs]
    if len(set(names)) != len(names):
        raise _malformed("an option appears twice in its query string")
    return tuple((name, _option(name, value)) for name, value in pairs)


def _option(name: str, value: str) -> str | bool:
    if name in _TEXT_OPTIONS:
        return value
    if name in _FLAG_OPTIONS and value.lower() in _TRUE + _FALSE:
        return value.lower() in _TRUE
    if name in _FLAG_OPTIONS:
        raise _malformed(f"the option {name} must be true or false")
    known = ", ".join(_TEXT_OPTIONS + _FLAG_OPTIONS)
    raise _malformed(f"its query string has an unknown option (known: {known})")


def _option_text(value: str | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return quote(value, safe="/")


def _malformed(reason: str) -> DatabaseError:
    return DatabaseError(f"database_url is not a valid MariaDB/MySQL URL: {reason}", hint=_EXAMPLE)
