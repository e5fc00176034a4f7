"""OpenSSH signatures (`ssh-keygen -Y sign`, the SSHSIG format) and `allowed_signers` files,
verified in this process with `cryptography`.

The format is OpenSSH's PROTOCOL.sshsig; the file is the one `ssh-keygen -Y verify -f` and git's
`gpg.ssh.allowedSignersFile` read: one line per key, `principals [options] keytype base64
[comment]`, options `namespaces="..."`, `valid-after="YYYYMMDD[HHMM[SS]][Z]"`, `valid-before=...`.
Ed25519, ECDSA (NIST curves) and RSA (SHA-2) keys are verified; certificate authorities and
security-key (`sk-`) signatures are refused with a clear reason.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_ssh_public_key,
)

from retention.errors import UsageError

MAGIC = b"SSHSIG"
_ARMOR_BEGIN = "-----BEGIN SSH SIGNATURE-----"
_ARMOR_END = "-----END SSH SIGNATURE-----"
_HASHES = {"sha256": hashlib.sha256, "sha512": hashlib.sha512}
KEY_TYPES = (
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
)
_ECDSA_HASH: dict[str, type[hashes.HashAlgorithm]] = {
    "ecdsa-sha2-nistp256": hashes.SHA256,
    "ecdsa-sha2-nistp384": hashes.SHA384,
    "ecdsa-sha2-nistp521": hashes.SHA512,
}
_RSA_HASH: dict[str, type[hashes.HashAlgorithm]] = {
    "rsa-sha2-256": hashes.SHA256,
    "rsa-sha2-512": hashes.SHA512,
}


class SignatureFormatError(ValueError):
    """Text that is not an SSH signature."""


@dataclass(frozen=True)
class Signature:
    """A parsed SSHSIG: the signer's public key (wire blob), the namespace, the hash algorithm
    and the raw signature."""

    public_key: bytes
    namespace: str
    hash_algorithm: str
    signature: bytes

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public_key)

    def problem(self, namespace: str, message: bytes) -> str | None:
        """Why this is not a valid signature of `message` in `namespace`; None if it is."""
        if self.namespace != namespace:
            return f"made for another purpose (namespace {self.namespace!r})"
        if self.hash_algorithm not in _HASHES:
            return f"unsupported hash algorithm {self.hash_algorithm!r}"
        signed = (
            MAGIC
            + _string(namespace.encode())
            + _string(b"")
            + _string(self.hash_algorithm.encode())
            + _string(_HASHES[self.hash_algorithm](message).digest())
        )
        return _check(self.public_key, self.signature, signed)


def fingerprint(blob: bytes) -> str:
    """The key's fingerprint as `ssh-keygen -l` prints it (SHA256:base64, unpadded)."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def parse_signature(text: str) -> Signature:
    """An armored SSH signature (`-----BEGIN SSH SIGNATURE-----` ...)."""
    body = text.strip()
    if not (body.startswith(_ARMOR_BEGIN) and body.endswith(_ARMOR_END)):
        raise SignatureFormatError("not an SSH signature (-----BEGIN SSH SIGNATURE----- ...)")
    try:
        raw = base64.b64decode("".join(body[len(_ARMOR_BEGIN) : -len(_ARMOR_END)].split()))
    except (binascii.Error, ValueError):
        raise SignatureFormatError("the SSH signature is not valid base64") from None
    reader = _Reader(raw)
    if reader.take(6) != MAGIC or reader.uint32() != 1:
        raise SignatureFormatError("not an SSHSIG version 1 signature")
    public_key = reader.string()
    namespace = reader.string().decode("utf-8", errors="replace")
    reader.string()  # reserved
    hash_algorithm = reader.string().decode("ascii", errors="replace")
    signature = reader.string()
    reader.end()
    return Signature(public_key, namespace, hash_algorithm, signature)


def _check(public_key: bytes, signature: bytes, signed: bytes) -> str | None:
    try:
        key_type = _Reader(public_key).string().decode("ascii", errors="replace")
        sig = _Reader(signature)
        sig_type = sig.string().decode("ascii", errors="replace")
        blob = sig.string()
        sig.end()  # as ssh-keygen: one signature has one encoding
    except SignatureFormatError as exc:
        return str(exc)
    if key_type.startswith("sk-"):
        return f"security-key signatures ({key_type}) are not supported"
    try:
        key = load_ssh_public_key(
            f"{key_type} {base64.b64encode(public_key).decode()}".encode("ascii")
        )
    except (ValueError, UnsupportedAlgorithm):
        return f"unsupported or malformed public key ({key_type})"
    try:
        if isinstance(key, ed25519.Ed25519PublicKey) and sig_type == "ssh-ed25519":
            key.verify(blob, signed)
        elif isinstance(key, rsa.RSAPublicKey) and sig_type in _RSA_HASH:
            key.verify(blob, signed, padding.PKCS1v15(), _RSA_HASH[sig_type]())
        elif isinstance(key, ec.EllipticCurvePublicKey) and sig_type == key_type:
            parts = _Reader(blob)
            der = encode_dss_signature(parts.mpint(), parts.mpint())
            parts.end()
            key.verify(der, signed, ec.ECDSA(_ECDSA_HASH[key_type]()))
        else:
            return f"unsupported signature type {sig_type!r} for a {key_type} key"
    except (InvalidSignature, SignatureFormatError, ValueError):
        return "the signature does not match"
    return None


def sign_ed25519(key: ed25519.Ed25519PrivateKey, namespace: str, message: bytes) -> str:
    """An armored SSHSIG of `message` by an Ed25519 key, as `ssh-keygen -Y sign` writes it
    (used where no ssh-keygen is at hand: the demo's generated approvers)."""
    public = public_blob(key.public_key())
    digest = hashlib.sha512(message).digest()
    signed = MAGIC + _string(namespace.encode()) + _string(b"") + _string(b"sha512")
    raw_sig = key.sign(signed + _string(digest))
    raw = (
        MAGIC
        + struct.pack(">I", 1)
        + _string(public)
        + _string(namespace.encode())
        + _string(b"")
        + _string(b"sha512")
        + _string(_string(b"ssh-ed25519") + _string(raw_sig))
    )
    lines = textwrap.wrap(base64.b64encode(raw).decode(), 70)
    return "\n".join([_ARMOR_BEGIN, *lines, _ARMOR_END]) + "\n"


def public_blob(key: ed25519.Ed25519PublicKey) -> bytes:
    """The wire blob of an Ed25519 public key."""
    return _string(b"ssh-ed25519") + _string(key.public_bytes(Encoding.Raw, PublicFormat.Raw))


def openssh_line(blob: bytes) -> str:
    """`keytype base64` as in a .pub file."""
    key_type = _Reader(blob).string().decode("ascii")
    return f"{key_type} {base64.b64encode(blob).decode()}"


# --- allowed_signers --------------------------------------------------------------------------


@dataclass(frozen=True)
class AllowedSigner:
    """One line of an allowed_signers file."""

    principals: tuple[str, ...]
    key: bytes
    namespaces: tuple[str, ...] | None
    valid_after: datetime | None
    valid_before: datetime | None
    line: int

    def names(self, principal: str) -> bool:
        return _matches(principal, self.principals)

    def allows(self, namespace: str) -> bool:
        return self.namespaces is None or _matches(namespace, self.namespaces)

    def validity_problem(self, at: datetime) -> str | None:
        if self.valid_before is not None and at >= self.valid_before:
            return f"its key is no longer valid (valid-before {self.valid_before:%Y-%m-%d %H:%M})"
        if self.valid_after is not None and at < self.valid_after:
            return f"its key is not valid yet (valid-after {self.valid_after:%Y-%m-%d %H:%M})"
        return None


def _matches(value: str, patterns: Sequence[str]) -> bool:
    """OpenSSH's pattern lists (match_pattern_list): `*` and `?` wildcards only, and a
    pattern `!p` that matches refuses whatever else matches."""
    found = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        glob = pattern[1:] if negated else pattern
        regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in glob)
        if re.fullmatch(regex, value, re.DOTALL):
            if negated:
                return False
            found = True
    return found


def read_allowed_signers(path: Path) -> tuple[AllowedSigner, ...]:
    """Every line of an allowed_signers file; an unreadable file or line is a clear error."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        raise UsageError(
            f"cannot read the approvers file {path}: {reason}",
            hint="setting approvers_file: an OpenSSH allowed_signers file",
        ) from None
    out = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip() and not line.lstrip().startswith("#"):
            try:
                out.append(_signer_line(line, number))
            except SignatureFormatError as exc:
                raise UsageError(
                    f"{path}, line {number}: {exc}",
                    hint='format: \'principal[,principal] [namespaces="retention-approval"] '
                    "ssh-ed25519 AAAA...' (as ssh-keygen -Y verify reads it)",
                ) from None
    return tuple(out)


def _signer_line(line: str, number: int) -> AllowedSigner:
    fields = _split(line.strip(), " \t")
    if len(fields) < 3:
        raise SignatureFormatError("expected principals, key type and key")
    principals = tuple(p.strip('"') for p in _split(fields[0].strip('"'), ","))
    rest = fields[1:]
    options: dict[str, str | None] = {}
    if rest[0] not in KEY_TYPES:
        for option in _split(rest[0], ","):
            name, _, value = option.partition("=")
            options[name.lower()] = value.strip('"') if value else None
        rest = rest[1:]
    if len(rest) < 2 or rest[0] not in KEY_TYPES:
        raise SignatureFormatError(f"unknown key type {rest[0] if rest else '(none)'!r}")
    if "cert-authority" in options:
        raise SignatureFormatError("cert-authority lines are not supported: list each key")
    unknown = set(options) - {"namespaces", "valid-after", "valid-before"}
    if unknown:
        raise SignatureFormatError(f"unknown option(s) {', '.join(sorted(unknown))}")
    try:
        key = base64.b64decode(rest[1], validate=True)
    except (binascii.Error, ValueError):
        raise SignatureFormatError("the key is not valid base64") from None
    if _Reader(key).string().decode("ascii", errors="replace") != rest[0]:
        raise SignatureFormatError(f"the key is not a {rest[0]} key")
    namespaces = options.get("namespaces")
    return AllowedSigner(
        principals,
        key,
        tuple(namespaces.split(",")) if namespaces is not None else None,
        _time(options.get("valid-after")),
        _time(options.get("valid-before")),
        number,
    )


def _time(value: str | None) -> datetime | None:
    """ssh-keygen's YYYYMMDD[HHMM[SS]][Z]: UTC with a Z, else the host's local time."""
    if value is None:
        return None
    text, utc = (value[:-1], True) if value.upper().endswith("Z") else (value, False)
    formats = {8: "%Y%m%d", 12: "%Y%m%d%H%M", 14: "%Y%m%d%H%M%S"}
    if len(text) not in formats:
        raise SignatureFormatError(f"bad time {value!r} (YYYYMMDD[HHMM[SS]][Z])")
    try:
        parsed = datetime.strptime(text, formats[len(text)])
    except ValueError:
        raise SignatureFormatError(f"bad time {value!r} (YYYYMMDD[HHMM[SS]][Z])") from None
    if utc:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone()


def _split(text: str, separators: str) -> list[str]:
    """Split on separators outside double quotes (quotes kept)."""
    parts, current, quoted = [], "", False
    for char in text:
        if char == '"':
            quoted = not quoted
        if char in separators and not quoted:
            if current:
                parts.append(current)
            current = ""
        else:
            current += char
    if quoted:
        raise SignatureFormatError("unbalanced double quote")
    if current:
        parts.append(current)
    return parts


def find_signer(
    signers: Sequence[AllowedSigner], principal: str, key: bytes
) -> AllowedSigner | None:
    return next((s for s in signers if s.key == key and s.names(principal)), None)


# --- SSH wire format ----------------------------------------------------------------------------


def _string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def take(self, n: int) -> bytes:
        if self.at + n > len(self.data):
            raise SignatureFormatError("the signature is cut short")
        out = self.data[self.at : self.at + n]
        self.at += n
        return out

    def uint32(self) -> int:
        return int(struct.unpack(">I", self.take(4))[0])

    def string(self) -> bytes:
        return self.take(self.uint32())

    def mpint(self) -> int:
        return int.from_bytes(self.string(), "big", signed=True)

    def end(self) -> None:
        if self.at != len(self.data):
            raise SignatureFormatError("trailing bytes after the signature")
