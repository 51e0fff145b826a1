"""When a device may be updated: its store's maintenance window, and which rule gives it.

How it works: :func:`window_for` picks the first of these that the device has (precedence):

1. ``override`` — the store's own ``store_windows`` row (``HH:MM-HH:MM`` daily, in the time
   zone of its opening hours, else ``stores.timezone``, else UTC). It is an explicit
   operator choice for a store whose quiet time is not simply "closed" (night stock counts,
   a cleaning crew on the registers), so it beats what the opening hours say.
2. ``opening_hours`` — "outside opening hours" from the device's effective configuration (the
   ``hours`` key: an IANA time zone and spans per weekday, ``protocols/store_config.py``):
   the window is open whenever no span of the local weekday covers the local time. A day with
   no spans is closed all day, so the whole day is a window. Local time is the zone's own
   (DST included: 08:30 on the morning the clocks go forward is 08:30 EDT, not EST).
3. ``rollout`` — the rollout's ``maintenance_window`` (``HH:MM-HH:MM`` in the store's zone),
   for devices with neither: no complete effective document yet and no override.
4. None — any time.

A rollout's ``force`` ignores all of them (the driver checks that). The effective documents
are read here, not through ``control_plane.configuration`` (another domain's internals): one
query per chunk of devices about to be notified, the ``hours`` key parsed with the schema
both sides validate with. A :class:`HoursCache` keeps each device's parsed hours with the
version of the document they came from, so a device waiting for its window costs one small
version lookup a tick, and its document is read and parsed again only when it changed. A
document whose hours do not parse (it passed the configuration's checks when stored, so this
means a schema change) is counted, logged with what to do (once per version), and treated as
having no hours: the next rule applies, nothing waits forever.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from prometheus_client import Counter
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from control_plane.configuration.tables import config_effective
from control_plane.rollouts import model
from protocols.store_config import OpeningHours, Weekday

log = logging.getLogger(__name__)

UNREADABLE_HOURS = Counter(
    "storefleet_rollout_unreadable_hours_total",
    "Effective documents whose opening hours the rollout driver could not read",
)

Source = Literal["override", "opening_hours", "rollout"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
CHUNK = 500  # device ids per query (well under every driver's bound-parameter limit)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def outside_opening_hours(hours: OpeningHours, now_ms: int) -> bool:
    """Whether the store is closed at ``now_ms`` by its opening hours (its local weekday/time)."""
    local = datetime.fromtimestamp(now_ms / 1000, _zone(hours.time_zone))
    clock = local.strftime("%H:%M")  # zero-padded: compares like the spans ("24:00" is last)
    spans = hours.week.get(WEEKDAYS[local.weekday()], [])
    return not any(span.opens <= clock < span.closes for span in spans)


@dataclass(frozen=True, slots=True)
class Window:
    """A device's maintenance window and the rule it came from."""

    source: Source
    zone: str
    daily: str | None = None  # HH:MM-HH:MM (override, rollout)
    hours: OpeningHours | None = None  # (opening_hours)

    def is_open(self, now_ms: int) -> bool:
        """Whether an update may start at ``now_ms``."""
        if self.hours is not None:
            return outside_opening_hours(self.hours, now_ms)
        if self.daily is None:
            raise RuntimeError(f"a {self.source} window without its daily times")
        return model.in_window(self.daily, self.zone, now_ms)

    def describe(self) -> str:
        """What an operator reads on a waiting device."""
        if self.source == "opening_hours":
            return f"waits until its store is closed (opening hours, {self.zone})"
        whose = "store's maintenance window" if self.source == "override" else "rollout's window"
        return f"waits for its {whose} {self.daily} ({self.zone})"

    def label(self) -> str:
        """The window as the desired release names it (``DesiredRelease.window``, ≤ 100)."""
        what = "outside opening hours" if self.daily is None else self.daily
        return f"{what}@{self.zone}"[:100]


def window_for(
    *,
    store_window: str | None,
    store_zone: str | None,
    hours: OpeningHours | None,
    rollout_window: str | None,
) -> Window | None:
    """The device's window by the precedence in the module's docstring; None: any time."""
    if store_window:
        zone = hours.time_zone if hours is not None else store_zone or "UTC"
        return Window(source="override", zone=zone, daily=store_window)
    if hours is not None:
        return Window(source="opening_hours", zone=hours.time_zone, hours=hours)
    if rollout_window:
        return Window(source="rollout", zone=store_zone or "UTC", daily=rollout_window)
    return None


def _chunks(ids: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(ids), CHUNK):
        yield ids[start : start + CHUNK]


def _hours_of(device_id: str, text: str) -> OpeningHours | None:
    try:
        document: Any = json.loads(text)
        value = document.get("hours") if isinstance(document, dict) else None
        return None if value is None else OpeningHours.model_validate(value)
    except (ValueError, ValidationError) as err:  # JSONDecodeError is a ValueError
        UNREADABLE_HOURS.inc()
        log.warning(
            "rollout: the opening hours in %s's effective configuration do not parse (%s); "
            "its store's maintenance window or the rollout's applies instead. Set the store's "
            "hours again (PUT /api/config/stores/{id}/settings/hours) to store today's schema",
            device_id,
            str(err).splitlines()[0],
        )
        return None


@dataclass(slots=True)
class HoursCache:
    """Parsed opening hours by device, each with its effective document's version.

    A stored effective document never changes under the same version (a recompute writes a
    new one), so hours parsed from a version stay right until the version moves.
    """

    entries: dict[str, tuple[int, OpeningHours | None]] = field(default_factory=dict)


async def opening_hours(
    conn: AsyncConnection, device_ids: Sequence[str], cache: HoursCache | None = None
) -> Mapping[str, OpeningHours]:
    """The opening hours in each device's effective configuration (devices with some).

    With ``cache``, only the documents whose version it does not hold are read and parsed.
    """
    cache = HoursCache() if cache is None else cache
    found: dict[str, OpeningHours] = {}
    for chunk in _chunks(sorted(set(device_ids))):
        found_versions = await conn.execute(
            select(config_effective.c.device_id, config_effective.c.version).where(
                config_effective.c.device_id.in_(chunk)
            )
        )
        versions: dict[str, int] = {device_id: version for device_id, version in found_versions}
        stale = [d for d, v in versions.items() if cache.entries.get(d, (None, None))[0] != v]
        if stale:
            rows = await conn.execute(
                select(
                    config_effective.c.device_id,
                    config_effective.c.version,
                    config_effective.c.document,
                ).where(config_effective.c.device_id.in_(stale))
            )
            for device_id, version, text in rows:
                cache.entries[device_id] = (version, _hours_of(device_id, text))
                versions[device_id] = version  # recomputed meanwhile: the newer one counts
        for device_id, version in versions.items():
            cached_version, hours = cache.entries.get(device_id, (None, None))
            if hours is not None and cached_version == version:
                found[device_id] = hours
    return found
