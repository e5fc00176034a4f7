"""`retention daemon`: run the due phases on a schedule (systemd `Type=notify` service)."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from retention.settings import Settings


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "daemon",
        description="Run the due phases at each fire of the cron schedule (settings: "
        "schedule, timezone). SIGTERM stops after the batches under way; SIGHUP "
        "reloads settings and policies.",
    )
    parser.add_argument(
        "--print-schedule",
        type=int,
        nargs="?",
        const=10,
        default=None,
        metavar="N",
        help="print the next N fire times and exit",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from retention.daemon.loop import Daemon, load_config

    config = load_config(args.config)
    if args.print_schedule is not None:
        zone = config.schedule.zone
        print(f"schedule '{config.settings.schedule}' in {zone.key}:")
        for fire in config.schedule.upcoming(datetime.now(UTC), args.print_schedule):
            print(f"  {fire.isoformat()}  ({fire.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC)")
        return 0
    daemon = Daemon(config, args.config)
    daemon.install_signals()
    return daemon.serve()
