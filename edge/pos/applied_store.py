"""The applied store configuration as the register uses it: identity, receipt, money, staff, keys.

The fleet agent validates and applies the control plane's document (:mod:`protocols.store_config`,
``docs/agent-register-contract.md``); this turns it into the register's :class:`StoreConfig`.
The receipt opens with the store's name, address and tax number, then the configured header;
staff PINs stay argon2id hashes (:class:`~edge.checkout.staff.Argon2Pin`), checked offline.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from edge.checkout.cart import CartPolicy
from edge.checkout.money import Currency
from edge.checkout.staff import Argon2Pin, Employee, IdlePolicy, LockoutPolicy, Role
from edge.checkout.tax import PricingMode, TaxClass, TaxPolicy, TaxRounding
from edge.pos.store_config import QuickKey, QuickKeyTab, StoreConfig
from protocols import store_config as schema
from protocols.store_config import RESTART_SECTIONS, key_hashes


def receipt_header(doc: schema.StoreConfig) -> tuple[str, ...]:
    """Name, address, tax number, then the configured header lines."""
    store = doc.store
    town = " ".join(p for p in (store.address.postcode, store.address.city) if p)
    lines = [store.name, *store.address.lines, town, store.tax_number, *doc.receipt.header]
    return tuple(line for line in lines if line)


def restart_hashes(doc: schema.StoreConfig) -> tuple[tuple[str, str], ...]:
    """The hashes of the sections a running register cannot take without a restart."""
    return tuple(sorted((k, h) for k, h in key_hashes(doc).items() if k in RESTART_SECTIONS))


def store_config_from_document(doc: schema.StoreConfig, *, version: int) -> StoreConfig:
    """The register's store rules from an applied configuration ``version``."""
    policy = CartPolicy(
        currency=Currency(
            doc.currency.code, doc.currency.exponent, doc.currency.cash_increment_minor
        ),
        tax=TaxPolicy(
            classes=tuple(TaxClass(c.code, c.rate_decimal, c.label) for c in doc.tax.classes),
            pricing=PricingMode(doc.tax.pricing),
            rounding=TaxRounding(doc.tax.rounding),
        ),
        discount_limit_percent=Decimal(doc.discounts.limit_percent),
        discount_limit_minor=doc.discounts.limit_minor,
    )
    return StoreConfig(
        store_name=doc.store.name,
        policy=policy,
        employees=tuple(
            Employee(id=m.id, name=m.name, role=Role[m.role.upper()], pin=Argon2Pin(m.pin_hash))
            for m in doc.staff.members
        ),
        receipt_header=receipt_header(doc),
        receipt_footer=tuple(doc.receipt.footer),
        lockout=LockoutPolicy(
            max_attempts=doc.staff.lockout.max_attempts,
            lock_for=timedelta(seconds=doc.staff.lockout.lock_seconds),
        ),
        idle=IdlePolicy(lock_after=timedelta(seconds=doc.kiosk.idle_lock_seconds)),
        register_names=tuple(sorted(doc.registers.items())),
        quick_keys=tuple(
            QuickKeyTab(
                name=c.name,
                colour=c.colour,
                keys=tuple(QuickKey(label=k.label, colour=k.colour, sku=k.sku) for k in c.keys),
            )
            for c in doc.quick_keys.categories
        ),
        config_version=version,
        restart_hashes=restart_hashes(doc),
        card_terminal=None
        if doc.card_terminal is None
        else (doc.card_terminal.host, doc.card_terminal.port),
        log_level=doc.log_level,
        catalog_sync_s=float(doc.catalog.sync_interval_seconds),
        loyalty=doc.loyalty,
    )
