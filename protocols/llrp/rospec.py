"""ROSpec (16.2.4.1) and the parameters nested in it: what to inventory, on which antennas, when.

How it works: an ROSpec is ``ROSpecID u32, Priority u8, CurrentState u8`` then an
ROBoundarySpec (start and stop triggers), one or more AISpecs (antennas, stop trigger,
InventoryParameterSpecs) and an optional ROReportSpec. We model the immediate / duration
triggers a count uses; other trigger parameters ride along in ``extra``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from protocols.llrp.parameters import (
    AI_SPEC,
    AI_SPEC_STOP_TRIGGER,
    INVENTORY_PARAMETER_SPEC,
    RO_BOUNDARY_SPEC,
    RO_REPORT_SPEC,
    ROSPEC,
    ROSPEC_START_TRIGGER,
    ROSPEC_STOP_TRIGGER,
    Extra,
    ROReportSpec,
    decode_ro_report_spec,
)
from protocols.llrp.wire import Reader, encode_raw, tlv

START_NULL, START_IMMEDIATE = 0, 1
STOP_NULL, STOP_DURATION = 0, 1
PROTOCOL_EPC_C1G2 = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class InventoryParameterSpec:
    """InventoryParameterSpec (16.2.4.2.1): which air protocol to inventory with."""

    spec_id: int = 1
    protocol_id: int = PROTOCOL_EPC_C1G2
    extra: Extra = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class AISpec:
    """AISpec (16.2.4.2): an antenna inventory; antenna 0 means all antennas."""

    antenna_ids: tuple[int, ...] = (0,)
    stop_trigger: int = STOP_NULL
    stop_duration_ms: int = 0
    stop_extra: Extra = ()
    inventories: tuple[InventoryParameterSpec, ...] = (InventoryParameterSpec(),)
    extra: Extra = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ROSpec:
    """ROSpec (16.2.4.1)."""

    rospec_id: int
    priority: int = 0
    current_state: int = 0  # 0 disabled, 1 inactive, 2 active
    start_trigger: int = START_NULL
    start_extra: Extra = ()
    stop_trigger: int = STOP_NULL
    stop_duration_ms: int = 0
    stop_extra: Extra = ()
    ai_specs: tuple[AISpec, ...] = (AISpec(),)
    report: ROReportSpec | None = None


def encode_rospec(p: ROSpec) -> bytes:
    start = tlv(ROSPEC_START_TRIGGER, bytes((p.start_trigger,)) + encode_raw(p.start_extra))
    stop = tlv(
        ROSPEC_STOP_TRIGGER,
        struct.pack(">BI", p.stop_trigger, p.stop_duration_ms) + encode_raw(p.stop_extra),
    )
    body = struct.pack(">IBB", p.rospec_id, p.priority, p.current_state)
    body += tlv(RO_BOUNDARY_SPEC, start + stop)
    body += b"".join(_encode_ai_spec(a) for a in p.ai_specs)
    if p.report is not None:
        body += p.report.encode()
    return tlv(ROSPEC, body)


def _encode_ai_spec(a: AISpec) -> bytes:
    body = struct.pack(f">H{len(a.antenna_ids)}H", len(a.antenna_ids), *a.antenna_ids)
    body += tlv(
        AI_SPEC_STOP_TRIGGER,
        struct.pack(">BI", a.stop_trigger, a.stop_duration_ms) + encode_raw(a.stop_extra),
    )
    for inv in a.inventories:
        inv_body = struct.pack(">HB", inv.spec_id, inv.protocol_id) + encode_raw(inv.extra)
        body += tlv(INVENTORY_PARAMETER_SPEC, inv_body)
    return tlv(AI_SPEC, body + encode_raw(a.extra))


def decode_rospec(r: Reader) -> ROSpec:
    rospec_id, priority, state = r.u32(), r.u8(), r.u8()
    boundary = _expect(r, RO_BOUNDARY_SPEC)
    start = _expect(boundary, ROSPEC_START_TRIGGER)
    start_trigger, start_extra = start.u8(), start.raw_rest()
    stop = _expect(boundary, ROSPEC_STOP_TRIGGER)
    stop_trigger, stop_duration, stop_extra = stop.u8(), stop.u32(), stop.raw_rest()
    boundary.expect_end()
    ai_specs = []
    while r.peek_type() == AI_SPEC:
        ai_specs.append(_decode_ai_spec(_expect(r, AI_SPEC)))
    if not ai_specs:
        raise r.malformed("ROSpec needs at least one AISpec", ROSPEC)
    report = decode_ro_report_spec(_expect(r, RO_REPORT_SPEC)) if r.remaining() else None
    r.expect_end()
    return ROSpec(
        rospec_id=rospec_id,
        priority=priority,
        current_state=state,
        start_trigger=start_trigger,
        start_extra=start_extra,
        stop_trigger=stop_trigger,
        stop_duration_ms=stop_duration,
        stop_extra=stop_extra,
        ai_specs=tuple(ai_specs),
        report=report,
    )


def _decode_ai_spec(r: Reader) -> AISpec:
    count = r.u16()
    antennas = tuple(r.u16() for _ in range(count))
    stop = _expect(r, AI_SPEC_STOP_TRIGGER)
    stop_trigger, stop_duration, stop_extra = stop.u8(), stop.u32(), stop.raw_rest()
    inventories = []
    while r.peek_type() == INVENTORY_PARAMETER_SPEC:
        inv = _expect(r, INVENTORY_PARAMETER_SPEC)
        inventories.append(
            InventoryParameterSpec(spec_id=inv.u16(), protocol_id=inv.u8(), extra=inv.raw_rest())
        )
    if not inventories:
        raise r.malformed("AISpec needs an InventoryParameterSpec", AI_SPEC)
    return AISpec(
        antenna_ids=antennas,
        stop_trigger=stop_trigger,
        stop_duration_ms=stop_duration,
        stop_extra=stop_extra,
        inventories=tuple(inventories),
        extra=r.raw_rest(),
    )


def _expect(r: Reader, ptype: int) -> Reader:
    is_tv, found, length = r.next_header()
    if is_tv or found != ptype:
        raise r.malformed(f"expected parameter {ptype}, found {found}", found)
    return r.sub(length)
