"""What the kiosk app holds: the register (once enrolled), the hub of open screens, the link.

``enrolled`` starts as the app factory was told and can be flipped by the enrolment flow with
:meth:`Screen.set_enrolled`; every open screen redraws at once. On a fresh appliance the
``first_boot`` desk runs enrolment and its progress is part of the state document.
"""

from __future__ import annotations

import asyncio
from typing import Any

from edge.kiosk.enrolment_desk import EnrolmentDesk
from edge.kiosk.live import Hub, LinkWatch
from edge.pos.printer import printer_problem
from edge.pos.register import Register
from edge.pos.view import register_view


class Screen:
    """The state behind the kiosk page."""

    def __init__(
        self,
        *,
        register: Register | None,
        enrolled: bool,
        link: LinkWatch,
        first_boot: EnrolmentDesk | None = None,
    ) -> None:
        self.register = register
        self.enrolled = enrolled
        self.link = link
        self.first_boot = first_boot
        self.hub = Hub()
        if register is not None:
            register.listeners.append(self.hub.poke)
        if first_boot is not None:
            first_boot.on_change = self.hub.poke

    def set_enrolled(self, enrolled: bool, *, connected: asyncio.Event | None = None) -> None:
        """Switch to selling (or back); ``connected`` is the replicator started for it."""
        if connected is not None:
            self.link.connected = connected
        self.enrolled = enrolled
        self.hub.poke()

    def state(self) -> dict[str, Any]:
        """The document every screen renders."""
        link = self.link.state()
        self.link.shown = link
        doc: dict[str, Any] = {
            "enrolled": self.enrolled and self.register is not None,
            "link": {"online": link.online, "backlog": link.backlog},
            "printer": None,
            # enrolled, but no store configuration applied yet: nothing to sell as (never the
            # demo store); the fleet agent restarts the register when the first one arrives
            "waiting_for_config": self.enrolled and self.register is None,
        }
        if self.first_boot is not None:
            doc["first_boot"] = self.first_boot.state()
        if doc["enrolled"] and self.register is not None:
            doc["printer"] = printer_problem(self.register.printer)
            doc["register"] = register_view(self.register)
            # the name the console shows for this register, from the store document
            doc["register"]["register_name"] = self.register.config.register_name(
                self.register.register_id
            )
        return doc
