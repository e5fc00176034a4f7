"""Where archive files go: a small interface, and a local directory implementing it.

`put` is the only way in and is durable before it returns: written under a temporary name,
flushed (fsync) file then directory, renamed, the directory flushed again, then the file is
opened again and read back so the caller can compare the size and SHA-256 of what is on disk
with what it produced. An object store fits the same interface (put-if-absent, read, delete,
list); nothing else of the archive code touches the file system.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Protocol

from retention.archive.errors import ArchiveConfigError, ArchiveStorageError

TEMP_SUFFIX = ".tmp"


@dataclass(frozen=True)
class Written:
    """What a storage holds under a name after `put`, as read back."""

    name: str
    size: int
    sha256: str
    data: bytes


class Storage(Protocol):
    """Names are relative POSIX paths ("dossier-medical/2026/....tar")."""

    def put(self, name: str, data: bytes) -> Written: ...
    def read(self, name: str) -> bytes: ...
    def delete(self, name: str) -> None: ...
    def names(self) -> list[str]: ...
    def describe(self) -> str: ...


class LocalStorage:
    """A directory on a local (or mounted) file system."""

    def __init__(self, root: Path) -> None:
        self.root = root
        # batches side by side create a month's folder once, each waiting until it is durable
        self._folders = threading.Lock()

    @classmethod
    def open(cls, root: Path) -> LocalStorage:
        """The directory must exist: an unmounted volume must not fill the system disk."""
        if not root.is_dir():
            raise ArchiveConfigError(
                f"archive_dir {root} does not exist or is not a directory",
                hint="create it (owned by the service user, mode 0700) or mount the archive "
                "volume; nothing was deleted",
            )
        return cls(root)

    def describe(self) -> str:
        return str(self.root)

    def _path(self, name: str) -> Path:
        parts = PurePosixPath(name).parts
        if not parts or PurePosixPath(name).is_absolute() or ".." in parts:
            raise ValueError(f"invalid archive name {name!r}")
        return self.root.joinpath(*parts)

    def put(self, name: str, data: bytes) -> Written:
        path = self._path(name)
        temp = path.with_name(path.name + TEMP_SUFFIX)
        try:
            self._make_dirs(path.parent)
            self._write(temp, data)
            os.replace(temp, path)
            _fsync_dir(path.parent)
            on_disk = path.read_bytes()
        except OSError as exc:
            _remove_quietly(temp)
            raise _storage_error("cannot write", name, self, exc) from None
        return Written(name, len(on_disk), hashlib.sha256(on_disk).hexdigest(), on_disk)

    def read(self, name: str) -> bytes:
        try:
            return self._path(name).read_bytes()
        except OSError as exc:
            raise _storage_error("cannot read", name, self, exc) from None

    def delete(self, name: str) -> None:
        path = self._path(name)
        try:
            path.unlink(missing_ok=True)
            _fsync_dir(path.parent)
        except OSError as exc:
            raise _storage_error("cannot delete", name, self, exc) from None

    def names(self) -> list[str]:
        if not self.root.is_dir():
            raise ArchiveStorageError(f"archive_dir {self.root} is not a directory any more")
        return sorted(
            path.relative_to(self.root).as_posix()
            for path in self.root.rglob("*")
            if path.is_file()
        )

    def exists(self, name: str) -> bool:
        return self._path(name).is_file()

    def _make_dirs(self, folder: Path) -> None:
        """Create missing folders one by one, flushing each parent so they survive a crash.
        One thread at a time: another batch finding a folder made must find it durable."""
        with self._folders:
            missing = []
            current = folder
            while not current.exists():
                missing.append(current)
                current = current.parent
            for item in reversed(missing):
                try:
                    item.mkdir(mode=0o700)
                except FileExistsError:  # made meanwhile by another process: flushed below
                    if not item.is_dir():
                        raise
                _fsync_dir(item.parent)

    @staticmethod
    def _write(temp: Path, data: bytes) -> None:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        _fsync_dir(temp.parent)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_quietly(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)


def _storage_error(what: str, name: str, storage: Storage, exc: OSError) -> ArchiveStorageError:
    reasons = {
        errno.ENOSPC: "no space left on the archive destination",
        errno.EDQUOT: "the disk quota of the archive destination is exceeded",
        errno.EROFS: "the archive destination is read-only",
        errno.EACCES: "permission denied",
        errno.EPERM: "operation not permitted",
    }
    reason = reasons.get(exc.errno or 0, exc.strerror or type(exc).__name__)
    return ArchiveStorageError(
        f"{what} archive {name} in {storage.describe()}: {reason}",
        hint="the batch was rolled back: no row was deleted; free space or fix the "
        "destination, then run again",
    )
