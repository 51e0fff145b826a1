"""What a register needs to know about its store: currency, tax, staff, limits, receipt header.

Two sources, one shape: a store file (the demo ships ``edge/pos/demo_store.json``; PINs as
scrypt hashes) or, in production, the configuration the fleet agent applied from the control plane
(:mod:`edge.pos.applied_store`; PINs as argon2id hashes). A PIN is never stored as text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from edge.checkout.cart import CartPolicy
from edge.checkout.money import Currency
from edge.checkout.staff import Employee, IdlePolicy, LockoutPolicy, PinHash, Role
from edge.checkout.tax import PricingMode, TaxClass, TaxPolicy, TaxRounding
from edge.pos.catalog_source import parse_json
from protocols.loyalty import LoyaltyRules

DEMO_STORE = Path(__file__).with_name("demo_store.json")
DEMO_CATALOG = Path(__file__).with_name("demo_catalog.json")


@dataclass(frozen=True, slots=True)
class QuickKey:
    """A key of the touch grid: a tap adds one of the catalog item with this ``sku``."""

    label: str
    colour: str
    sku: str


@dataclass(frozen=True, slots=True)
class QuickKeyTab:
    """A category of the touch grid."""

    name: str
    colour: str
    keys: tuple[QuickKey, ...]


@dataclass(frozen=True, slots=True)
class StoreConfig:
    """The store's rules as the register applies them."""

    store_name: str
    policy: CartPolicy
    employees: tuple[Employee, ...]
    receipt_header: tuple[str, ...] = ()
    receipt_width: int = 42
    lockout: LockoutPolicy = field(default_factory=LockoutPolicy)
    idle: IdlePolicy = field(default_factory=IdlePolicy)
    register_names: tuple[tuple[str, str], ...] = ()  # (register id, name people call it)
    receipt_footer: tuple[str, ...] = ("Thank you!",)
    quick_keys: tuple[QuickKeyTab, ...] = ()
    # the applied configuration this came from (0: a store file) and the hashes of its restart
    # sections, which a running register cannot change without starting again
    config_version: int = 0
    restart_hashes: tuple[tuple[str, str], ...] = ()
    card_terminal: tuple[str, int] | None = None  # (host, port) the configuration names
    log_level: str | None = None  # the configuration's; None: the settings'
    catalog_sync_s: float | None = None  # seconds between catalog polls; None: the settings'
    loyalty: LoyaltyRules = field(default_factory=LoyaltyRules)  # earning, tiers, offline limits

    @property
    def currency(self) -> Currency:
        return self.policy.currency

    def register_name(self, register_id: str) -> str:
        """What people call the register (``"Till 1"``): the name the console shows too."""
        return dict(self.register_names).get(register_id, f"Register {register_id}")

    def employee(self, employee_id: str) -> Employee | None:
        """The employee with this id, if any."""
        for employee in self.employees:
            if employee.id == employee_id:
                return employee
        return None


def _employee(raw: dict[str, Any]) -> Employee:
    pin = raw["pin"]
    return Employee(
        id=str(raw["id"]),
        name=str(raw["name"]),
        role=Role[str(raw["role"]).upper()],
        pin=PinHash(
            salt=bytes.fromhex(pin["salt"]),
            digest=bytes.fromhex(pin["digest"]),
            n=int(pin.get("n", 2**14)),
            r=int(pin.get("r", 8)),
            p=int(pin.get("p", 1)),
        ),
    )


def store_config_from_json(raw: dict[str, Any]) -> StoreConfig:
    """Parse the store document; a missing key raises ``KeyError`` naming it."""
    cur = raw["currency"]
    currency = Currency(
        str(cur["code"]), int(cur.get("exponent", 2)), int(cur.get("cash_increment_minor", 1))
    )
    tax = raw["tax"]
    policy = CartPolicy(
        currency=currency,
        tax=TaxPolicy(
            classes=tuple(
                TaxClass(str(c["code"]), Decimal(str(c["rate"])), str(c.get("label", "")))
                for c in tax["classes"]
            ),
            pricing=PricingMode(tax.get("pricing", "inclusive")),
            rounding=TaxRounding(tax.get("rounding", "per_total")),
        ),
        discount_limit_percent=Decimal(str(raw.get("discount_limit_percent", "10"))),
        discount_limit_minor=int(raw.get("discount_limit_minor", 2000)),
    )
    return StoreConfig(
        store_name=str(raw.get("store_name", "")),
        policy=policy,
        employees=tuple(_employee(e) for e in raw["employees"]),
        receipt_header=tuple(str(h) for h in raw.get("receipt_header", ())),
        receipt_width=int(raw.get("receipt_width", 42)),
        lockout=LockoutPolicy(
            max_attempts=int(raw.get("lockout_attempts", 5)),
            lock_for=timedelta(seconds=int(raw.get("lockout_seconds", 900))),
        ),
        idle=IdlePolicy(lock_after=timedelta(seconds=int(raw.get("idle_lock_seconds", 120)))),
        register_names=tuple(
            (str(rid), str(name)) for rid, name in dict(raw.get("registers", {})).items()
        ),
    )


def load_store_config(path: Path | str = DEMO_STORE) -> StoreConfig:
    """The store document at ``path``."""
    return store_config_from_json(parse_json(Path(path).read_bytes()))
