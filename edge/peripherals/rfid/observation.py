"""What every RFID reader client produces, whatever its wire protocol."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TagObservation:
    """One tag read: which EPC, on which antenna, how strong."""

    epc: bytes
    antenna: int
    rssi_dbm: int
    reader: str = ""


OnRead = Callable[[TagObservation], None]
"""Sink a reader client calls for every read; it must be quick (the pipeline's ``add``)."""
