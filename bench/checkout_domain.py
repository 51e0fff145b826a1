"""Checkout domain benchmark: catalog of 100,000 items, lookups, cart totals, memory.

Run: .venv/bin/python bench/checkout_domain.py [--rounds N] — prints a table and writes
bench/results/checkout_domain.json. Timings use perf_counter_ns; money stays in ints. Each
figure is measured once per round (default 5, ``bench/rounds.py``: the catalog is built again
and every lookup repeated) and reported as the median of the rounds with their spread.

``python -m bench.checkout_domain --appliance FILE`` (from the repository root) is the appliance
as the "store checkout" issue means it: a fresh process with the register's imports that loads a
snapshot file the way the register does, then scans; it prints its RSS, load time and lookup
percentiles as one JSON line. ``bench/checkout.py`` runs it for its catalog figures; it lives here
because this module imports nothing the register does not.
"""

from __future__ import annotations

import gc
import json
import random
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

from edge.checkout.barcodes import gs1_check_digit, parse_barcode
from edge.checkout.cart import Cart, CartPolicy, PercentOff
from edge.checkout.catalog import Catalog, Item, SoldBy
from edge.checkout.money import CHF
from edge.checkout.staff import Approval, Role
from edge.checkout.tax import TaxClass, TaxPolicy

if TYPE_CHECKING:  # the appliance mode imports nothing the register does not
    from bench.rounds import Rounds

N_ITEMS = 100_000
N_LOOKUPS = 100_000
N_CARTS = 2_000
LINES_PER_CART = 30
MANAGER = Approval(approver_id="bench", role=Role.MANAGER)
RESULTS = Path(__file__).parent / "results" / "checkout_domain.json"


def gtin13(n: int) -> str:
    body = f"76{n:010d}"
    return body + str(gs1_check_digit(body))


def items() -> list[Item]:
    return [
        Item(
            id=f"item-{n}",
            name=f"Product {n} {'apple' if n % 3 else 'pear'}",
            price_minor=100 + n % 5000,
            tax_class="A" if n % 4 else "B",
            department=f"dept-{n % 40}",
            gtins=(gtin13(n),),
            plu=f"{n:05d}" if n < 10_000 else None,
            sku=f"SKU{n:07d}",
            sold_by=SoldBy.WEIGHT if n % 50 == 0 else SoldBy.PIECE,
        )
        for n in range(N_ITEMS)
    ]


def percentile(samples_ns: list[int], q: float) -> float:
    ordered = sorted(samples_ns)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] / 1000  # µs


def peak_rss_mb() -> float | None:
    """This process's peak RSS (Linux's VmHWM; ``ru_maxrss`` would count the parent's too)."""
    status = Path("/proc/self/status")
    lines = status.read_text().splitlines() if status.exists() else []
    peak = [int(line.split()[1]) for line in lines if line.startswith("VmHWM:")]
    return round(peak[0] / 2**10, 1) if peak else None


def appliance(snapshot: Path) -> dict[str, Any]:
    """RSS with the register's imports, with ``snapshot`` loaded and at its peak; load time; scans.

    The snapshot's items are ``bench/checkout.py``'s: item ``n`` has GTIN ``gtin13(n)``.
    """
    process = psutil.Process()
    import edge.register.compose  # noqa: F401 — what the register process brings in
    from edge.pos.catalog_source import load_snapshot_file

    rss_imports = process.memory_info().rss
    start = time.perf_counter_ns()
    catalog = load_snapshot_file(snapshot)
    load_ns = time.perf_counter_ns() - start
    rss_loaded = process.memory_info().rss
    lookup_ns: list[int] = []
    for code in [gtin13((n * 7919) % len(catalog)) for n in range(N_LOOKUPS)]:
        start = time.perf_counter_ns()
        catalog.lookup(parse_barcode(code))
        lookup_ns.append(time.perf_counter_ns() - start)
    return {
        "items": len(catalog),
        "rss_mb_imports": round(rss_imports / 2**20, 1),
        "rss_mb": round(rss_loaded / 2**20, 1),
        "rss_mb_peak": peak_rss_mb(),
        "load_s": round(load_ns / 1e9, 3),
        "lookup_ms": {
            "n": len(lookup_ns),
            "p50_ms": round(percentile(lookup_ns, 0.5) / 1000, 4),
            "p99_ms": round(percentile(lookup_ns, 0.99) / 1000, 4),
            "max_ms": round(max(lookup_ns) / 1e6, 4),
        },
    }


def one_round(rng: random.Random) -> dict[str, Any]:
    """Build the catalog, then time lookups, searches and cart totals against it."""
    process = psutil.Process()
    gc.collect()
    rss_before = process.memory_info().rss
    source = items()
    t0 = time.perf_counter_ns()
    catalog = Catalog.from_snapshot(source, version=1)
    load_ms = (time.perf_counter_ns() - t0) / 1e6
    del source
    gc.collect()
    # 100k long-lived items otherwise make every full collection walk them, which shows up as
    # millisecond pauses in the p99 below (the appliance figures in bench/checkout.py do without)
    gc.freeze()
    rss_catalog = process.memory_info().rss

    codes = [gtin13(rng.randrange(N_ITEMS)) for _ in range(N_LOOKUPS)]
    scan_ns: list[int] = []
    for code in codes:
        start = time.perf_counter_ns()
        parsed = parse_barcode(code)
        catalog.by_gtin(parsed.gtin14)  # type: ignore[union-attr]
        scan_ns.append(time.perf_counter_ns() - start)
    sku_ns: list[int] = []
    for _ in range(N_LOOKUPS):
        sku = f"SKU{rng.randrange(N_ITEMS):07d}"
        start = time.perf_counter_ns()
        catalog.by_sku(sku)
        sku_ns.append(time.perf_counter_ns() - start)
    search_ns: list[int] = []
    for _ in range(200):
        start = time.perf_counter_ns()
        catalog.search(f"product {rng.randrange(1000)}", limit=20)
        search_ns.append(time.perf_counter_ns() - start)

    policy = CartPolicy(
        currency=CHF,
        tax=TaxPolicy((TaxClass("A", Decimal("0.081")), TaxClass("B", Decimal("0.026")))),
    )
    totals_ns: list[int] = []
    for n in range(N_CARTS):
        cart = Cart(policy=policy, cart_id=f"c{n}")
        for _ in range(LINES_PER_CART):
            item = catalog.by_id(f"item-{rng.randrange(N_ITEMS)}")
            qty: int | Decimal = Decimal("0.734") if item.sold_by is SoldBy.WEIGHT else 2
            cart = cart.add_item(item, qty)
        discounted = cart.discount_basket(PercentOff(Decimal(5)), approval=MANAGER)
        assert isinstance(discounted, Cart)
        start = time.perf_counter_ns()
        discounted.totals()
        totals_ns.append(time.perf_counter_ns() - start)

    gc.unfreeze()  # the next round builds its own catalog and collects this one
    return {
        "catalog_load_ms": load_ms,
        "scan_lookup_us": {"p50": percentile(scan_ns, 0.5), "p99": percentile(scan_ns, 0.99)},
        "sku_lookup_us": {"p50": percentile(sku_ns, 0.5), "p99": percentile(sku_ns, 0.99)},
        "name_search_us": {"p50": percentile(search_ns, 0.5), "p99": percentile(search_ns, 0.99)},
        "cart_totals_us": {"p50": percentile(totals_ns, 0.5), "p99": percentile(totals_ns, 0.99)},
        "rss_mb": {
            "before": round(rss_before / 2**20, 1),
            "with_catalog": round(rss_catalog / 2**20, 1),
            "catalog": round((rss_catalog - rss_before) / 2**20, 1),
        },
    }


def main(rounds: Rounds) -> None:
    rng = random.Random(7)
    per_round = []
    for _ in rounds.each():
        result = one_round(rng)
        per_round.append(result)
        rounds.add(
            "catalog_load_ms",
            result["catalog_load_ms"],
            label=f"catalog load ({N_ITEMS:,} items)",
            unit="ms",
        )
        for key, label in [
            ("scan_lookup_us", "scan: parse + GTIN lookup"),
            ("sku_lookup_us", "SKU lookup"),
            ("name_search_us", "name search (limit 20)"),
            ("cart_totals_us", f"cart totals ({LINES_PER_CART} lines)"),
        ]:
            for stat in ("p50", "p99"):
                rounds.add(f"{key}_{stat}", result[key][stat], label=f"{label} {stat}", unit="µs")
        rss = result["rss_mb"]
        rounds.add("rss_with_catalog_mb", rss["with_catalog"], label="RSS with catalog", unit="MB")
        # after the first round the allocator reuses the freed catalog's memory: a lower figure
        rounds.add("rss_catalog_mb", rss["catalog"], label="RSS of catalog (delta)", unit="MB")
    print()
    print(rounds.table())
    rounds.write(RESULTS, items=N_ITEMS, per_round=per_round)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--appliance"]:
        print(json.dumps(appliance(Path(sys.argv[2]))))
    else:
        import argparse

        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from bench.rounds import Rounds, add_rounds_argument

        parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
        add_rounds_argument(parser)
        main(Rounds("checkout_domain", rounds=parser.parse_args().rounds))
