"""A record the cloud cannot store flags the device with the reason; it never loops unacked.

The defect: an appliance with ``STOREFLEET_EDGE_CURRENCY=EURO`` committed sales whose currency did
not fit PostgreSQL's 3-character column. SQLite stored them, PostgreSQL refused the batch; the
error was logged, the batch never acked, the appliance resent it for ever, and the console showed
the chain green. Both stores now refuse exactly the same records, before the insert, and the
device is flagged with the reason; an ack carrying ``error`` stops the appliance's resending.
"""

from __future__ import annotations

from typing import Any

import aiomqtt
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import String

from control_plane.devices.service import get_device
from control_plane.devices.tables import devices
from control_plane.ingest.tables import journal
from control_plane.sales.tables import sales
from protocols.chain import GENESIS
from protocols.codec import decode
from protocols.journal_wire import batch_bytes, record_json
from protocols.limits import CURRENCY_LENGTH, ID_LENGTH
from protocols.messages import JournalAck
from protocols.topics import Channel, device_topic
from protocols.vocabulary import JournalKind
from tests.harness.cloud import Cloud
from tests.harness.services import Mosquitto

pytestmark = pytest.mark.services


def sale(sale_id: str, /, **changes: Any) -> tuple[str, dict[str, Any]]:
    """A ``sale.completed`` body as the ledger writes it, with ``changes`` applied."""
    body: dict[str, Any] = {
        "sale_id": sale_id,
        "register_id": "1",
        "receipt_no": int(sale_id.rsplit("-", 1)[-1]),
        "currency": "EUR",
        "total_minor": 258,
        "tendered_minor": 300,
        "change_minor": 42,
        "lines": [
            {
                "sku": "4006381333931",
                "description": "Stabilo pen",
                "quantity": "2",
                "unit_price_minor": 129,
                "amount_minor": 258,
            }
        ],
        "tenders": [{"kind": "cash", "amount_minor": 300, "reference": None}],
    }
    body.update(changes)
    return JournalKind.SALE_COMPLETED, body


def without(key: str, kind_body: tuple[str, dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    kind, body = kind_body
    return kind, {k: v for k, v in body.items() if k != key}


def chain(items: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """Wire records with a valid hash chain: what an appliance (of any image) would send."""
    records, prev = [], GENESIS
    for seq, (kind, body) in enumerate(items, start=1):
        prev, wire = record_json(
            seq=seq, kind=kind, ts=1_700_000_000_000 + seq, prev_hash=prev, body=body
        )
        records.append(wire)
    return records


def refused(reason: str) -> float:
    return (
        REGISTRY.get_sample_value("storefleet_ingest_records_refused_total", {"reason": reason})
        or 0.0
    )


async def device_row(cloud: Cloud, device_id: str) -> dict[str, Any]:
    assert cloud.engine is not None
    return dict(await get_device(cloud.engine, device_id=device_id))


async def send_and_read_ack(mosquitto: Mosquitto, device_id: str, records: list[str]) -> JournalAck:
    """Publish one batch as the device and return the ack the cloud answers with."""
    async with aiomqtt.Client("127.0.0.1", mosquitto.port, identifier=device_id) as device:
        ack_topic = device_topic(device_id, Channel.JOURNAL_ACK)
        await device.subscribe(ack_topic, qos=1)
        await device.publish(
            device_topic(device_id, Channel.JOURNAL), batch_bytes(records, sent_at=0), qos=1
        )
        async for message in device.messages:
            ack = decode(ack_topic, bytes(message.payload)).message  # type: ignore[arg-type]
            assert isinstance(ack, JournalAck)
            return ack
    raise AssertionError("no ack")


UNSTORABLE = [
    pytest.param(
        sale("sale-3", currency="EURO"),
        "invalid at currency",
        id="currency-EURO",
    ),
    pytest.param(
        without("total_minor", sale("sale-3")),
        "invalid at total_minor: Field required",
        id="no-total",
    ),
    pytest.param(
        sale("sale-3", sale_id="s" * (ID_LENGTH + 1)),
        "invalid at sale_id: String should have at most 64 characters",
        id="sale-id-past-the-column",
    ),
    pytest.param(
        sale("sale-3", sale_id="sale\x003"),
        "invalid at sale_id",
        id="nul-in-sale-id",
    ),
    pytest.param(
        sale("sale-3", receipt_no=2**63),
        "invalid at receipt_no",
        id="receipt-past-bigint",
    ),
    pytest.param(
        sale("sale-3", total_minor=9999),
        "total_minor 9999 is not the sum of the lines 258",
        id="total-does-not-add-up",
    ),
]


@pytest.mark.parametrize(("bad", "reason"), UNSTORABLE)
async def test_a_record_the_cloud_cannot_store_flags_the_device_on_both_stores(
    cloud: Cloud, mosquitto: Mosquitto, bad: tuple[str, dict[str, Any]], reason: str
) -> None:
    await cloud.register("reg-limits")
    records = chain([sale("sale-1"), sale("sale-2"), bad, sale("sale-4")])
    before = refused("invalid")

    ack = await send_and_read_ack(mosquitto, "reg-limits", records)

    # the records before it are stored, it and the rest are not, and the appliance is told why
    assert (ack.hwm, ack.resend_from) == (2, 3)
    assert ack.error is not None
    assert ack.error.startswith("seq 3: the cloud cannot store it: sale.completed body")
    assert reason in ack.error
    assert ack.error.endswith("have support repair the appliance's ledger (never wipe it)")
    assert await cloud.hwm("reg-limits") == 2
    assert sorted(await cloud.sale_ids("reg-limits")) == ["sale-1", "sale-2"]
    row = await device_row(cloud, "reg-limits")
    assert (row["chain_ok"], row["chain_alerts"], row["chain_detail"]) == (False, 1, ack.error)
    assert refused("invalid") == before + 1
    assert (await cloud.audit("reg-limits")).ok


async def test_a_sale_without_a_total_is_never_booked_as_zero(
    cloud: Cloud, mosquitto: Mosquitto
) -> None:
    await cloud.register("reg-no-total")

    ack = await send_and_read_ack(
        mosquitto, "reg-no-total", chain([without("total_minor", sale("sale-1"))])
    )

    assert ack.hwm == 0
    assert await cloud.sale_ids("reg-no-total") == []


async def test_a_record_the_database_refuses_is_found_and_flagged_not_resent_for_ever(
    cloud: Cloud, mosquitto: Mosquitto
) -> None:
    # seq 5 repeats seq 2's sale id: each body is a sale, but UNIQUE(device_id, sale_id) refuses
    await cloud.register("reg-dup")
    items = [sale(f"sale-{n}") for n in range(1, 5)]
    items += [sale("sale-5", sale_id="sale-2"), sale("sale-6"), sale("sale-7")]
    before = refused("database")

    ack = await send_and_read_ack(mosquitto, "reg-dup", chain(items))

    assert (ack.hwm, ack.resend_from) == (4, 5)
    assert ack.error is not None
    assert ack.error.startswith("seq 5: the cloud's database refused it (IntegrityError")
    assert await cloud.hwm("reg-dup") == 4
    assert sorted(await cloud.sale_ids("reg-dup")) == [f"sale-{n}" for n in range(1, 5)]
    row = await device_row(cloud, "reg-dup")
    assert (row["chain_ok"], row["chain_detail"]) == (False, ack.error)
    assert refused("database") == before + 1
    assert (await cloud.audit("reg-dup")).ok


async def test_a_refused_record_resent_is_refused_again_and_the_records_after_it_wait(
    cloud: Cloud, mosquitto: Mosquitto
) -> None:
    await cloud.register("reg-again")
    records = chain([sale("sale-1"), sale("sale-2", currency="EURO"), sale("sale-3")])

    first = await send_and_read_ack(mosquitto, "reg-again", records)
    again = await send_and_read_ack(mosquitto, "reg-again", records[1:])

    assert first.error == again.error
    assert (again.hwm, await cloud.hwm("reg-again")) == (1, 1)
    assert (await device_row(cloud, "reg-again"))["chain_alerts"] == 2


def test_the_clouds_columns_are_the_contracts_limits() -> None:
    """One table of limits: the columns a record fills are sized from protocols.limits."""
    sized = [
        (sales.c.currency, CURRENCY_LENGTH),
        (sales.c.sale_id, ID_LENGTH),
        (sales.c.device_id, ID_LENGTH),
        (journal.c.kind, ID_LENGTH),
        (journal.c.device_id, ID_LENGTH),
        (devices.c.id, ID_LENGTH),
    ]

    assert [(str(column), type(column.type), column.type.length) for column, _ in sized] == [
        (str(column), String, limit) for column, limit in sized
    ]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_reason_quoting_hostile_keys_still_fits_the_ack(
    cloud: Cloud, mosquitto: Mosquitto
) -> None:
    # pydantic names the offending key in the reason: here NULs and 3,000 characters of it
    await cloud.register("reg-hostile")
    kind, body = sale("sale-1")
    body["lines"] = [{**body["lines"][0], "\x00" * 3000: 1}]

    ack = await send_and_read_ack(mosquitto, "reg-hostile", chain([(kind, body)]))

    assert ack.error is not None
    assert ack.error.startswith("seq 1: the cloud cannot store it: sale.completed body invalid")
    assert len(ack.error) <= 1000
    assert "\x00" not in ack.error
    assert (await device_row(cloud, "reg-hostile"))["chain_detail"] == ack.error
