"""The bench appliance's settings (``storefleet appliance``), from ``STOREFLEET_EDGE_*`` variables.

Not the register's: a register (``storefleet register``, started by the fleet agent) is composed
from its one validated object, :class:`edge.register.settings.RegisterSettings`, which refuses
this object's own names (``LEDGER_PATH``, ``CURRENCY``) with a message naming what replaced them.
This one drives the ledger-and-replication appliance the bench and fault tests run without a
kiosk.

An appliance is told who it is in one of two ways: ``STOREFLEET_EDGE_DEVICE_ID`` (a bench or
demo appliance with a fixed id on a plain broker), or ``STOREFLEET_EDGE_IDENTITY_DIR`` (a real
appliance that enrols itself with a QR code on first boot; its certificate then names the
device and the control plane names the broker).

Every value the appliance writes into its journal is held here to the contract's limits
(:mod:`protocols.limits`), because the cloud stores it in columns of a fixed size: a currency of
``EURO`` used to be committed sale after sale, then refused by PostgreSQL's 3-character column,
and replication stalled for good. It is refused at start now, naming the variable and the fix.
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from protocols.broker_url import BrokerAddress, parse_broker_url
from protocols.errors import UnknownTopic
from protocols.limits import CURRENCY_PATTERN, ID_LENGTH, PRINTABLE_PATTERN
from protocols.topics import validate_device_id


class EdgeSettings(BaseSettings):
    """Validated at start; an error names the variable to set."""

    model_config = SettingsConfigDict(env_prefix="STOREFLEET_EDGE_", extra="ignore")

    # "" only with identity_dir: the enrolled certificate supplies the id (empty until then)
    device_id: str = ""
    identity_dir: Path | None = None
    register_id: str = "1"
    ledger_path: Path = Path("/var/lib/storefleet/ledger.db")
    broker_url: str = "mqtt://127.0.0.1:1883"  # ignored once enrolled: the enrolment names it
    currency: str = "EUR"

    @field_validator("device_id")
    @classmethod
    def _device_id(cls, value: str) -> str:
        if value:
            try:
                validate_device_id(value)
            except UnknownTopic as err:  # not a ValueError: pydantic would let it escape raw
                raise ValueError(f"{err.reason} (set by STOREFLEET_EDGE_DEVICE_ID)") from err
        return value

    @field_validator("broker_url")
    @classmethod
    def _broker_url(cls, value: str) -> str:
        parse_broker_url(value)
        return value

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        if not re.fullmatch(CURRENCY_PATTERN, value):
            msg = (
                "not a currency code the cloud can store: set the ISO 4217 code the store sells"
                " in, 3 capital letters such as EUR, CHF or GBP"
            )
            raise ValueError(msg)
        return value

    @field_validator("register_id")
    @classmethod
    def _register_id(cls, value: str) -> str:
        if not 1 <= len(value) <= ID_LENGTH or not re.fullmatch(PRINTABLE_PATTERN, value):
            msg = (
                f"cannot name a register: set 1 to {ID_LENGTH} characters without control"
                " characters, such as 1 or R2"
            )
            raise ValueError(msg)
        return value

    @model_validator(mode="after")
    def _who_am_i(self) -> EdgeSettings:
        if not self.device_id and self.identity_dir is None:
            msg = (
                "set STOREFLEET_EDGE_IDENTITY_DIR (where an appliance that enrols with a QR "
                "code keeps its key and certificate) or STOREFLEET_EDGE_DEVICE_ID (a fixed id "
                "for a bench appliance on a plain broker)"
            )
            raise ValueError(msg)
        if self.device_id and self.identity_dir is not None:
            msg = (
                "set only one of STOREFLEET_EDGE_DEVICE_ID and STOREFLEET_EDGE_IDENTITY_DIR: an "
                "enrolled appliance's id is the one in its certificate"
            )
            raise ValueError(msg)
        return self

    @property
    def broker(self) -> BrokerAddress:
        """Parsed broker address."""
        return parse_broker_url(self.broker_url)


def describe(err: ValidationError, settings: type[BaseSettings]) -> str:
    """Each problem of ``err`` as an operator reads it: the variable, what is wrong, what to set.

    The edge's twin of the control plane's: the appliance installs without the cloud package.
    """
    prefix = str(settings.model_config.get("env_prefix", ""))
    problems: list[str] = []
    for error in err.errors():
        message = str(error["msg"]).removeprefix("Value error, ")
        if not error["loc"]:
            problems.append(message)  # a check across settings names its variables itself
            continue
        field = str(error["loc"][0])
        given = error.get("input")
        shown = f"={given!s}" if isinstance(given, str | int) else ""
        problems.append(f"{prefix}{field}".upper() + f"{shown}: {message}")
    return "; ".join(problems)
