"""systemd's notification protocol (sd_notify): READY, STATUS, WATCHDOG, STOPPING.

A few lines over a Unix datagram socket, so no dependency is needed (the PyPI packages for it
are unmaintained). Without `$NOTIFY_SOCKET` (not under systemd) every call does nothing.
"""

from __future__ import annotations

import os
import socket


class Notifier:
    """Sends notifications to systemd when run as a `Type=notify` service."""

    def __init__(self) -> None:
        address = os.environ.get("NOTIFY_SOCKET", "")
        self.address = "\0" + address[1:] if address.startswith("@") else address
        usec = os.environ.get("WATCHDOG_USEC", "")
        self.watchdog_seconds = int(usec) / 1_000_000 if usec.isdigit() else None

    def send(self, **fields: str | int) -> bool:
        if not self.address:
            return False
        message = "\n".join(f"{k.upper()}={v}" for k, v in fields.items()).encode()
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            try:
                sock.sendto(message, self.address)
            except OSError:
                return False
        return True

    def ready(self, status: str) -> None:
        self.send(ready=1, status=status)

    def status(self, text: str) -> None:
        self.send(status=text)

    def watchdog(self) -> None:
        self.send(watchdog=1)

    def stopping(self) -> None:
        self.send(stopping=1, status="stopping")
