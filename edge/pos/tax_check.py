"""Items whose tax class the store's tax table lacks: a configuration fault the till cannot fix.

Why here: the cart refuses such an item when it is rung up (``UnknownTaxClass``), but the cashier
is the last to learn of it. So the register also looks when a catalog or a configuration arrives
and logs one warning naming the items, for whoever runs the store's console. It keeps the catalog
as it is: every other item still sells, and the item sells once its class is added.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from edge.checkout.catalog import Item
from edge.checkout.errors import UnknownTaxClass
from edge.checkout.tax import TaxPolicy
from edge.pos.metrics import UNKNOWN_TAX_CLASS, UNTAXABLE_ITEMS

log = logging.getLogger(__name__)

NAMED = 20  # items named in the warning; the rest are counted


def untaxable(items: Iterable[Item], policy: TaxPolicy) -> list[Item]:
    """Active items whose tax class ``policy`` does not know."""
    return [item for item in items if item.active and not policy.knows(item.tax_class)]


def warn_untaxable(items: Iterable[Item], policy: TaxPolicy, *, source: str) -> list[Item]:
    """Log one warning naming the untaxable items of ``items`` (if any); return them."""
    found = untaxable(items, policy)
    if not found:
        return found
    UNTAXABLE_ITEMS.inc(len(found))
    classes = sorted({item.tax_class for item in found})
    named = ", ".join(f"{item.id} {item.name!r} (class {item.tax_class})" for item in found[:NAMED])
    more = f" and {len(found) - NAMED} more" if len(found) > NAMED else ""
    log.warning(
        "%s: %d item(s) name a tax class the store's tax table lacks, the till will refuse them: "
        "%s%s; add tax class(es) %s to the store's tax table in the console",
        source,
        len(found),
        named,
        more,
        ", ".join(classes),
    )
    return found


def refused_at_till(err: UnknownTaxClass) -> None:
    """Count and log (one line, no traceback) an item the till refused for its tax class."""
    UNKNOWN_TAX_CLASS.labels(tax_class=err.tax_class).inc()
    log.warning(
        "refused %s %r: tax class %r is not in the store's tax table; add tax class %s to the "
        "store's tax table in the console",
        err.item_id,
        err.item_name,
        err.tax_class,
        err.tax_class,
    )
