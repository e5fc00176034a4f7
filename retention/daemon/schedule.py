"""When runs fire: a cron expression in the legal calendar's time zone, DST-safe.

Five fields (minute hour day month weekday), or six with seconds last (for tests). When clocks
go back, a wall-clock time that happens twice fires once; when they go forward, a time that does
not exist fires at the first instant after it (croniter's behaviour).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import CroniterBadCronError, croniter

from retention.errors import SettingsError


@dataclass(frozen=True)
class Schedule:
    """A validated cron expression in a time zone, with an optional random delay."""

    expression: str
    zone: ZoneInfo
    random_delay: timedelta = timedelta(0)

    @classmethod
    def parse(cls, expression: str, zone: str, random_delay_seconds: float = 0) -> Schedule:
        try:
            croniter(expression)
        except (CroniterBadCronError, ValueError, KeyError) as exc:
            raise SettingsError(
                [f"schedule: '{expression}' is not a cron expression ({exc})"]
            ) from None
        return cls(expression, ZoneInfo(zone), timedelta(seconds=random_delay_seconds))

    def next_after(self, moment: datetime) -> datetime:
        """The first fire strictly after `moment` (aware), never twice at one wall-clock time."""
        local = moment.astimezone(self.zone)
        it = croniter(self.expression, local)
        candidate: datetime = it.get_next(datetime)
        while candidate.fold == 1:  # the second pass of an hour repeated when clocks go back
            candidate = it.get_next(datetime)
        return candidate

    def previous_before(self, moment: datetime) -> datetime:
        """The last fire at or before `moment`."""
        it = croniter(self.expression, moment.astimezone(self.zone))
        result: datetime = it.get_prev(datetime)
        return result

    def upcoming(self, moment: datetime, count: int) -> list[datetime]:
        fires = []
        for _ in range(count):
            moment = self.next_after(moment)
            fires.append(moment)
        return fires

    def delay(self) -> float:
        """Seconds of random delay before a run (spreads load across servers)."""
        return random.uniform(0, self.random_delay.total_seconds())  # noqa: S311
