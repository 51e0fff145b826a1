"""A sale's loyalty movements as the checkout journals them (its own module: the sale imports it).

The fields are :class:`protocols.loyalty.SaleLoyalty`'s, the contract the cloud validates; this
is the checkout's frozen record of them, encoded in the sale's journal record like every field.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SaleLoyalty:
    """The loyalty movements of a sale, as its journal record and the cloud's ledger read them."""

    tier: str
    points_earned: int
    points_burned: int
    point_value_minor: int
    store_credit_redeemed_minor: int

    def body(self) -> dict[str, object]:
        """The ``loyalty`` key of the ``sale.completed`` summary."""
        return {
            "tier": self.tier,
            "points_earned": self.points_earned,
            "points_burned": self.points_burned,
            "point_value_minor": self.point_value_minor,
            "store_credit_redeemed_minor": self.store_credit_redeemed_minor,
        }
