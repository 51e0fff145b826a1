"""The store configuration: one typed document of everything a store appliance is told.

How it works: the control plane resolves its layers into one *effective* document per device and
publishes it retained on ``config`` (:class:`protocols.messages.DesiredConfig`: ``version`` +
``doc``). Both sides validate that ``doc`` with :func:`parse_store_config`: the cloud before it
publishes (and :func:`store_config_json_schema` is what its API publishes), the appliance before
it applies. A document is refused as a whole with :class:`StoreConfigRefused`, which names the
top-level key, the JSON path and what to do; the appliance then keeps its last good document.

Every top-level key is one *section* with its own model. Sections are what the appliance reports
and the console compares: :func:`key_hashes` is the sha256 of the canonical JSON
(:mod:`protocols.canonical`) of each section of the *normalised* document (defaults filled in), so
a key the cloud leaves at its default and a device that applied that default hash the same.
Each section also says how the register takes it up (:data:`APPLY`): ``live`` sections are
re-read by a running register; ``restart`` sections change what the register composed at start
(currency, tax, devices) and wait for a moment with no open sale, then the register restarts.

=================  ========  ================================================================
section            apply     holds
=================  ========  ================================================================
``store``          live      store id, name, address, tax number: the receipt's identity
``receipt``        live      header and footer lines
``registers``      live      the names people call the registers (``"1" → "Till 1"``)
``currency``       restart   ISO 4217 code, minor-unit exponent, cash rounding increment
``tax``            restart   tax classes with Decimal rates (strings), pricing, rounding
``discounts``      restart   the cashier's discount limits without a manager
``hours``          live      IANA time zone and opening hours per weekday
``printer``        restart   receipt printer connector, address and paper width
``scanners``       restart   HID (keyboard wedge) and serial barcode scanners
``rfid``           restart   RFID readers (LLRP on the network, serial UHF modules)
``card_terminal``  restart   the card terminal's host and TCP port
``kiosk``          live      language and idle lock of the touchscreen
``quick_keys``     live      the touch grid: categories of coloured keys, each an item's SKU
``catalog``        restart   how often the register asks the cloud for catalog changes
``log_level``      restart   the register's lowest log level
``features``       live      named on/off switches
``staff``          live      cashiers and managers (argon2id PIN hashes), lockout policy
``loyalty``        live      points per unit, point value, tiers and offline redeem limits
``support``        live      remote support's SSH: off unless turned on with public keys
=================  ========  ================================================================

Money stays exact: tax rates are decimal *strings* (``"0.081"``), amounts integer minor units;
the document holds no float, so its canonical form and hashes are the same in every language.
The encoded document (canonical JSON, UTF-8) must fit :data:`SIZE_BUDGET` (32 KiB, the size of
an Azure device twin's desired properties): a store's configuration is small, a catalog is not
(the catalog travels by its own sync, never here).
"""

from __future__ import annotations

import enum
import hashlib
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Annotated, Any, Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_ssh_public_key
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from protocols.canonical import canonical_bytes
from protocols.errors import NonCanonicalValue
from protocols.limits import (
    CURRENCY_PATTERN,
    PRINTABLE_PATTERN,
    Identifier,
)
from protocols.loyalty import LoyaltyRules

#: The largest encoded document (canonical JSON, UTF-8 bytes) either side accepts.
SIZE_BUDGET: Final = 32 * 1024

#: Bounds of the lists in the document: generous for a store, small enough for a register.
MAX_RECEIPT_LINES: Final = 8
MAX_TAX_CLASSES: Final = 32
MAX_REGISTERS: Final = 64
MAX_SCANNERS: Final = 16
MAX_RFID_READERS: Final = 16
MAX_CATEGORIES: Final = 12
MAX_KEYS_PER_CATEGORY: Final = 48
MAX_FEATURES: Final = 64
MAX_STAFF: Final = 200
#: Support's SSH public keys an appliance accepts at once.
MAX_SUPPORT_KEYS: Final = 16
#: Argon2 costs a register will verify with: a hash above them would let a wrong document stall
#: the kiosk at every PIN (memory in KiB, 64 MiB; time in passes).
MAX_ARGON2_MEMORY_KIB: Final = 64 * 1024
MAX_ARGON2_TIME_COST: Final = 10
MAX_ARGON2_PARALLELISM: Final = 4

#: A short line a person reads on a receipt, a key or a tab (printable, bounded).
ShortText = Annotated[str, StringConstraints(max_length=60, pattern=PRINTABLE_PATTERN)]
#: A name that must say something.
Name = Annotated[str, StringConstraints(min_length=1, max_length=60, pattern=PRINTABLE_PATTERN)]
#: A host name or address (no scheme, no port).
Host = Annotated[
    str, StringConstraints(min_length=1, max_length=253, pattern=r"^[A-Za-z0-9.:_-]+$")
]
Port = Annotated[int, Field(strict=True, ge=1, le=65535)]
#: A device path on the appliance (``/dev/ttyUSB0``, ``/dev/serial/by-id/...``).
DevicePath = Annotated[
    str, StringConstraints(min_length=6, max_length=200, pattern=r"^/dev/[A-Za-z0-9._/:+-]+$")
]
#: ``#rrggbb``: the key's colour on the touch grid.
Colour = Annotated[str, StringConstraints(pattern=r"^#[0-9a-fA-F]{6}$")]
#: A tax rate as a decimal fraction in a string: ``"0.081"`` is 8.1 %; from 0 to 1, 6 places.
TaxRate = Annotated[str, StringConstraints(pattern=r"^(0(\.[0-9]{1,6})?|1(\.0{1,6})?)$")]
#: ``"HH:MM"`` on a 24-hour clock; ``"24:00"`` closes at midnight.
ClockTime = Annotated[str, StringConstraints(pattern=r"^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$")]
#: A BCP 47 language tag as the kiosk's translations are named (``de``, ``de-CH``, ``fr``).
Language = Annotated[str, StringConstraints(pattern=r"^[a-z]{2,3}(-[A-Z]{2})?$")]
Seconds = Annotated[int, Field(strict=True, ge=0, le=7 * 24 * 3600)]

_ARGON2_PHC = re.compile(
    r"^\$argon2id\$v=19\$m=(?P<m>[0-9]{1,7}),t=(?P<t>[0-9]{1,3}),p=(?P<p>[0-9]{1,2})"
    r"\$[A-Za-z0-9+/]{11,64}\$[A-Za-z0-9+/]{22,128}$"
)


def _argon2id_phc(value: str) -> str:
    """An argon2id PHC string with costs a register can afford to verify."""
    match = _ARGON2_PHC.match(value)
    if match is None:
        raise ValueError(
            "pin_hash must be an argon2id PHC string ($argon2id$v=19$m=…,t=…,p=…$salt$hash);"
            " hash the PIN with argon2-cffi's PasswordHasher, never send the PIN"
        )
    m, t, p = int(match["m"]), int(match["t"]), int(match["p"])
    if not (8 <= m <= MAX_ARGON2_MEMORY_KIB and 1 <= t <= MAX_ARGON2_TIME_COST):
        raise ValueError(
            f"pin_hash costs m={m} KiB, t={t} are outside what a register verifies"
            f" (m up to {MAX_ARGON2_MEMORY_KIB}, t up to {MAX_ARGON2_TIME_COST})"
        )
    if not 1 <= p <= MAX_ARGON2_PARALLELISM:
        raise ValueError(f"pin_hash parallelism p={p} must be 1 to {MAX_ARGON2_PARALLELISM}")
    return value


PinHash = Annotated[str, StringConstraints(max_length=256), AfterValidator(_argon2id_phc)]


def _time_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise ValueError(
            f"{value!r} is not an IANA time zone; write e.g. Europe/Zurich or America/New_York"
        ) from err
    return value


TimeZone = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_+/-]+$"),
    AfterValidator(_time_zone),
]


class ApplyMode(enum.StrEnum):
    """How a running register takes up a changed section."""

    LIVE = "live"  # re-read while running, between sales
    RESTART = "restart"  # the register restarts at a moment with no open sale


class Section(BaseModel):
    """Base of every section: frozen, unknown keys refused (a typo must not pass silently)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


# -- identity and receipt --------------------------------------------------------------------------


class Address(Section):
    """Where the store is, as printed on every receipt."""

    lines: Annotated[list[ShortText], Field(min_length=1, max_length=4)] = Field(
        description="street lines, first to last"
    )
    postcode: Annotated[str, StringConstraints(max_length=16, pattern=PRINTABLE_PATTERN)] = Field(
        "", description="postal code"
    )
    city: ShortText = Field("", description="town or city")
    country: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")] = Field(
        description="ISO 3166-1 alpha-2 country code (CH, DE, US)"
    )


class StoreIdentity(Section):
    """Which store this is: the name and address every receipt of it shows."""

    id: Identifier = Field(description="the store's id in the control plane")
    name: Name = Field(description="the name customers know the store by")
    address: Address = Field(description="the store's postal address")
    tax_number: ShortText = Field(
        "", description="VAT or sales-tax registration printed on receipts (e.g. CHE-123.456.789)"
    )


class Receipt(Section):
    """Lines around every receipt: the header under the store's name, the footer at the end."""

    header: Annotated[list[ShortText], Field(max_length=MAX_RECEIPT_LINES)] = Field(
        default_factory=list, description="lines under the store's name and address"
    )
    footer: Annotated[list[ShortText], Field(max_length=MAX_RECEIPT_LINES)] = Field(
        default_factory=list, description="lines at the end (returns policy, thanks)"
    )


# -- money -----------------------------------------------------------------------------------------


class CurrencySection(Section):
    """The store's currency and how cash is rounded (Swiss 5 Rappen: increment 5)."""

    code: Annotated[str, StringConstraints(pattern=CURRENCY_PATTERN)] = Field(
        description="ISO 4217 code (CHF, EUR, USD)"
    )
    exponent: Annotated[int, Field(strict=True, ge=0, le=4)] = Field(
        2, description="digits after the decimal point (2 for cents, 0 for yen)"
    )
    cash_increment_minor: Annotated[int, Field(strict=True, ge=1, le=10_000)] = Field(
        1, description="cash totals round to a multiple of this many minor units (1: none)"
    )


class TaxClassEntry(Section):
    """One tax class items refer to by code."""

    code: Annotated[
        str, StringConstraints(min_length=1, max_length=8, pattern=r"^[A-Za-z0-9]+$")
    ] = Field(description="the code catalog items name (A, B, Z)")
    rate: TaxRate = Field(description='fraction as a decimal string: "0.081" is 8.1 %')
    label: ShortText = Field("", description="name on the receipt's tax summary")

    @property
    def rate_decimal(self) -> Decimal:
        """The rate as the Decimal the tax computation takes."""
        return Decimal(self.rate)


class TaxTable(Section):
    """The store's tax classes and how tax is computed and rounded."""

    pricing: Literal["inclusive", "exclusive"] = Field(
        "inclusive", description="inclusive: shelf prices include tax; exclusive: added at the till"
    )
    rounding: Literal["per_line", "per_total"] = Field(
        "per_total", description="round each line's tax, or each rate's total once"
    )
    classes: Annotated[list[TaxClassEntry], Field(min_length=1, max_length=MAX_TAX_CLASSES)] = (
        Field(description="the classes; every catalog item names one by code")
    )

    @field_validator("classes")
    @classmethod
    def _codes_unique(cls, classes: list[TaxClassEntry]) -> list[TaxClassEntry]:
        codes = [c.code for c in classes]
        twice = sorted({c for c in codes if codes.count(c) > 1})
        if twice:
            raise ValueError(f"tax class codes must be unique; {', '.join(twice)} appear twice")
        return classes


class Discounts(Section):
    """What a cashier may discount without a manager's PIN."""

    limit_percent: Annotated[
        str, StringConstraints(pattern=r"^(100|[0-9]{1,2}(\.[0-9]{1,2})?)$")
    ] = Field("10", description='percent of a line as a decimal string ("10", "12.5")')
    limit_minor: Annotated[int, Field(strict=True, ge=0, le=10**12)] = Field(
        2000, description="amount in minor units of the store's currency"
    )


# -- time ------------------------------------------------------------------------------------------

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class OpeningSpan(Section):
    """Open from ``opens`` to ``closes`` on the same day, local time."""

    opens: ClockTime = Field(description="opening time, HH:MM local")
    closes: ClockTime = Field(description="closing time, HH:MM local (24:00: midnight)")

    @model_validator(mode="after")
    def _ordered(self) -> OpeningSpan:
        if self.closes <= self.opens:
            raise ValueError(f"closes {self.closes} must be after opens {self.opens}")
        return self


class OpeningHours(Section):
    """The store's time zone and opening hours (rollout windows derive from them)."""

    time_zone: TimeZone = Field(description="IANA time zone, e.g. Europe/Zurich")
    week: dict[Weekday, Annotated[list[OpeningSpan], Field(max_length=4)]] = Field(
        default_factory=dict, description="spans per weekday (mon…sun); a missing day is closed"
    )


# -- devices ---------------------------------------------------------------------------------------


class PrinterSection(Section):
    """The receipt printer: how python-escpos reaches it and how wide its paper is."""

    connector: Literal["none", "network", "serial", "usb"] = Field(
        "none", description="none: on-screen receipts only"
    )
    host: Host | None = Field(None, description="network: the printer's address")
    port: Port = Field(9100, description="network: the raw printing port")
    serial_device: DevicePath | None = Field(None, description="serial: the port's device path")
    usb_vendor_id: Annotated[int, Field(strict=True, ge=0, le=0xFFFF)] = Field(
        0, description="usb: the vendor id"
    )
    usb_product_id: Annotated[int, Field(strict=True, ge=0, le=0xFFFF)] = Field(
        0, description="usb: the product id"
    )
    profile: Annotated[str, StringConstraints(max_length=40, pattern=PRINTABLE_PATTERN)] = Field(
        "TM-T88V", description="python-escpos capability profile"
    )
    paper_width_mm: Literal[58, 80] = Field(80, description="the roll's width")

    @model_validator(mode="after")
    def _connector_has_its_address(self) -> PrinterSection:
        needed = {
            "none": None,
            "network": ("host", self.host),
            "serial": ("serial_device", self.serial_device),
            "usb": ("usb_vendor_id", self.usb_vendor_id),
        }[self.connector]
        if needed is not None and not needed[1]:
            raise ValueError(f"connector {self.connector!r} needs {needed[0]} to be set")
        return self


class SerialScanner(Section):
    """A barcode scanner on a serial or USB-CDC port."""

    name: Identifier = Field(description="the scanner's name in health and the console")
    device: DevicePath = Field(description="its device path (/dev/serial/by-id/…)")
    baudrate: Literal[9600, 19200, 38400, 57600, 115200] = Field(9600, description="line speed")


class ScannersSection(Section):
    """Barcode scanners: keyboard-wedge (HID) scanners found by name, and serial ones."""

    hid_name_contains: Annotated[list[ShortText], Field(max_length=MAX_SCANNERS)] = Field(
        default_factory=list, description="HID devices whose name contains one of these"
    )
    serial: Annotated[list[SerialScanner], Field(max_length=MAX_SCANNERS)] = Field(
        default_factory=list, description="serial scanners"
    )


class RfidReader(Section):
    """An RFID reader: a fixed LLRP reader on the network or a serial UHF module."""

    name: Identifier = Field(description="the reader's name in health and the console")
    kind: Literal["llrp", "serial"] = Field(description="llrp: on the network; serial: a module")
    host: Host | None = Field(None, description="llrp: the reader's address")
    port: Port = Field(5084, description="llrp: its TCP port")
    device: DevicePath | None = Field(None, description="serial: the module's device path")
    antennas: Annotated[
        list[Annotated[int, Field(strict=True, ge=1, le=64)]], Field(max_length=64)
    ] = Field(default_factory=list, description="empty: every antenna")

    @model_validator(mode="after")
    def _kind_has_its_address(self) -> RfidReader:
        if self.kind == "llrp" and not self.host:
            raise ValueError(f"llrp reader {self.name!r} needs host")
        if self.kind == "serial" and not self.device:
            raise ValueError(f"serial reader {self.name!r} needs device, e.g. /dev/ttyUSB0")
        return self


class CardTerminal(Section):
    """The card terminal on the store's network; absent: card payments are refused."""

    host: Host = Field(description="the terminal's address")
    port: Port = Field(description="its TCP port")


# -- the touchscreen -------------------------------------------------------------------------------


class KioskSection(Section):
    """The touchscreen's language and when it locks itself."""

    language: Language = Field("en", description="the kiosk's language (BCP 47: en, de, fr-CH)")
    idle_lock_seconds: Annotated[int, Field(strict=True, ge=15, le=3600)] = Field(
        120, description="lock after this long without a touch; a cashier signs in again"
    )


class QuickKey(Section):
    """One key of the grid: a tap adds one of the item with this SKU."""

    label: Name = Field(description="the text on the key")
    colour: Colour = Field("#4a6fa5", description="#rrggbb")
    sku: Identifier = Field(description="the catalog item's SKU")


class QuickKeyCategory(Section):
    """A tab of the grid."""

    name: Name = Field(description="the tab's label")
    colour: Colour = Field("#2d3e50", description="the tab's colour")
    keys: Annotated[list[QuickKey], Field(max_length=MAX_KEYS_PER_CATEGORY)] = Field(
        default_factory=list, description="keys in reading order"
    )


class QuickKeys(Section):
    """The touch grid: favourite items by category, so a sale needs no scanner or keyboard."""

    categories: Annotated[list[QuickKeyCategory], Field(max_length=MAX_CATEGORIES)] = Field(
        default_factory=list, description="tabs, in order"
    )

    @field_validator("categories")
    @classmethod
    def _names_unique(cls, categories: list[QuickKeyCategory]) -> list[QuickKeyCategory]:
        names = [c.name for c in categories]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"quick key categories must be named apart; {', '.join(twice)} twice")
        return categories


# -- the rest --------------------------------------------------------------------------------------


class CatalogSection(Section):
    """How the register keeps its catalog in step with the cloud's."""

    sync_interval_seconds: Annotated[int, Field(strict=True, ge=5, le=86_400)] = Field(
        30, description="seconds between polls for catalog changes"
    )


class StaffMember(Section):
    """Someone who may sign in at every register of the store with their PIN."""

    id: Identifier = Field(description="the employee's id; journal records name it")
    name: Name = Field(description="the name the kiosk greets")
    role: Literal["cashier", "manager"] = Field(description="a manager may approve and unlock")
    pin_hash: PinHash = Field(description="argon2id PHC string of the PIN; never the PIN")


class Lockout(Section):
    """Wrong PINs in a row that lock an employee, and for how long."""

    max_attempts: Annotated[int, Field(strict=True, ge=1, le=20)] = Field(
        5, description="wrong PINs in a row before the lock"
    )
    lock_seconds: Annotated[int, Field(strict=True, ge=0, le=86_400)] = Field(
        900, description="how long the lock lasts (a manager may lift it sooner)"
    )


class Staff(Section):
    """The store's cashiers and managers, delivered to every register of it."""

    members: Annotated[list[StaffMember], Field(max_length=MAX_STAFF)] = Field(
        default_factory=list, description="who may sign in"
    )
    lockout: Lockout = Field(default_factory=Lockout, description="the wrong-PIN lock")

    @field_validator("members")
    @classmethod
    def _ids_unique(cls, members: list[StaffMember]) -> list[StaffMember]:
        ids = [m.id for m in members]
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            raise ValueError(f"staff ids must be unique; {', '.join(twice)} appear twice")
        return members


LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


# -- support access --------------------------------------------------------------------------------

#: OpenSSH public key types support may log in with (the first word of a ``.pub`` line); no DSA.
SSH_KEY_TYPES: Final = frozenset(
    {
        "ssh-ed25519",
        "sk-ssh-ed25519@openssh.com",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
        "sk-ecdsa-sha2-nistp256@openssh.com",
        "ssh-rsa",
    }
)
#: RSA keys shorter than this are refused (NIST's 128-bit level).
MIN_RSA_BITS: Final = 3072


def _ssh_public_key(value: str) -> str:
    """One line of an OpenSSH ``.pub`` file: ``TYPE BASE64 [COMMENT]``, its key read the way sshd
    reads it (``cryptography``'s OpenSSH loader), so a key the appliance would not take is
    refused in the console, not at the box."""
    if "PRIVATE KEY" in value:
        raise ValueError(
            "this is a private key: paste the public one (the .pub file), and replace the"
            " private key, which has now been shown to others"
        )
    kind, _, rest = value.partition(" ")
    blob, _, _comment = rest.partition(" ")
    if kind not in SSH_KEY_TYPES:
        raise ValueError(
            f"{kind[:40]!r} is not an accepted key type (nor are key options such as from= or"
            " command=): give the .pub line of an ed25519 key (ssh-keygen -t ed25519)"
        )
    try:
        key = load_ssh_public_key(f"{kind} {blob}".encode("ascii"))
    except (ValueError, UnsupportedAlgorithm) as err:
        raise ValueError(
            f"the key cannot be read ({str(err)[:80]}); copy the whole line of the .pub file"
        ) from err
    if isinstance(key, RSAPublicKey) and key.key_size < MIN_RSA_BITS:
        raise ValueError(
            f"an RSA key of {key.key_size} bits is too short (at least {MIN_RSA_BITS});"
            " use ssh-keygen -t ed25519"
        )
    return value


#: One OpenSSH public key line (printable ASCII, one line).
SshPublicKey = Annotated[
    str,
    StringConstraints(min_length=20, max_length=2048, pattern=r"^[\x20-\x7e]+$"),
    AfterValidator(_ssh_public_key),
]


class SupportAccess(Section):
    """Remote support's way into the appliance: SSH with keys only, off unless turned on here.

    The appliance has no password login at all; with ``ssh`` on, support logs in as the user
    ``support`` with one of ``ssh_keys`` (the agent hands them to the image's root helper, which
    starts or stops sshd)."""

    ssh: Annotated[bool, Field(strict=True)] = Field(
        False, description="SSH for support: on only while the fleet says so"
    )
    ssh_keys: Annotated[list[SshPublicKey], Field(max_length=MAX_SUPPORT_KEYS)] = Field(
        default_factory=list, description="OpenSSH public key lines (.pub) support logs in with"
    )

    @model_validator(mode="after")
    def _keys_when_on(self) -> SupportAccess:
        if self.ssh and not self.ssh_keys:
            raise ValueError(
                "ssh is on with no key, so nobody could log in: add support's public keys"
                " (ssh_keys) or leave ssh off"
            )
        return self


class StoreConfig(Section):
    """The whole document: every section a store appliance needs (see the module's table)."""

    store: StoreIdentity = Field(description="the store's identity and address")
    receipt: Receipt = Field(default_factory=Receipt, description="receipt header and footer")
    registers: Annotated[dict[Identifier, Name], Field(max_length=MAX_REGISTERS)] = Field(
        default_factory=dict, description='register id → what people call it ("1": "Till 1")'
    )
    currency: CurrencySection = Field(description="currency and cash rounding")
    tax: TaxTable = Field(description="the tax table")
    discounts: Discounts = Field(default_factory=Discounts, description="cashier discount limits")
    hours: OpeningHours = Field(description="time zone and opening hours")
    printer: PrinterSection = Field(default_factory=PrinterSection, description="receipt printer")
    scanners: ScannersSection = Field(
        default_factory=ScannersSection, description="barcode scanners"
    )
    rfid: Annotated[list[RfidReader], Field(max_length=MAX_RFID_READERS)] = Field(
        default_factory=list, description="RFID readers"
    )
    card_terminal: CardTerminal | None = Field(None, description="card terminal; null: no cards")
    kiosk: KioskSection = Field(default_factory=KioskSection, description="the touchscreen")
    quick_keys: QuickKeys = Field(default_factory=QuickKeys, description="the touch grid")
    catalog: CatalogSection = Field(default_factory=CatalogSection, description="catalog sync")
    log_level: LogLevel = Field("INFO", description="the register's lowest log level")
    features: Annotated[dict[Identifier, bool], Field(max_length=MAX_FEATURES)] = Field(
        default_factory=dict, description="named on/off switches"
    )
    staff: Staff = Field(default_factory=Staff, description="cashiers, managers, lockout")
    loyalty: LoyaltyRules = Field(
        default_factory=LoyaltyRules, description="loyalty points, tiers, offline redeem limits"
    )
    support: SupportAccess = Field(
        default_factory=SupportAccess, description="remote support's SSH (off unless turned on)"
    )

    @model_validator(mode="after")
    def _devices_named_apart(self) -> StoreConfig:
        names = [s.name for s in self.scanners.serial] + [r.name for r in self.rfid]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"scanner and RFID reader names must be unique; rename {twice}")
        return self


#: How each section is taken up by a running register (the module's table, as data).
APPLY: Final[Mapping[str, ApplyMode]] = {
    "store": ApplyMode.LIVE,
    "receipt": ApplyMode.LIVE,
    "registers": ApplyMode.LIVE,
    "currency": ApplyMode.RESTART,
    "tax": ApplyMode.RESTART,
    "discounts": ApplyMode.RESTART,
    "hours": ApplyMode.LIVE,
    "printer": ApplyMode.RESTART,
    "scanners": ApplyMode.RESTART,
    "rfid": ApplyMode.RESTART,
    "card_terminal": ApplyMode.RESTART,
    "kiosk": ApplyMode.LIVE,
    "quick_keys": ApplyMode.LIVE,
    "catalog": ApplyMode.RESTART,
    "log_level": ApplyMode.RESTART,
    "features": ApplyMode.LIVE,
    "staff": ApplyMode.LIVE,
    "loyalty": ApplyMode.LIVE,
    "support": ApplyMode.LIVE,  # the agent's, not the register's: it starts or stops sshd
}
SECTIONS: Final = tuple(StoreConfig.model_fields)
RESTART_SECTIONS: Final = frozenset(k for k, mode in APPLY.items() if mode is ApplyMode.RESTART)


class StoreConfigRefused(ValueError):  # noqa: N818 - named for what the operator is told
    """A document that cannot be applied; ``key`` is the top-level section at fault.

    ``path`` is the JSON path of the first problem (``staff.members[2].pin_hash``), ``reason``
    says what is wrong and what to do; ``problems`` lists every problem as ``path: reason``.
    """

    def __init__(self, *, key: str, path: str, reason: str, problems: list[str]) -> None:
        super().__init__(f"{path}: {reason}")
        self.key = key
        self.path = path
        self.reason = reason
        self.problems = problems


_CANONICAL_AT = re.compile(r" at (\S+?):? ")


def _json_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "$"


def encoded(raw: Mapping[str, Any]) -> bytes:
    """The document's canonical JSON: what the size budget counts and the hashes cover."""
    return canonical_bytes(dict(raw))


def parse_store_config(raw: object) -> StoreConfig:
    """Validate a document as received; :class:`StoreConfigRefused` names what to fix."""
    if not isinstance(raw, Mapping):
        raise StoreConfigRefused(
            key="$", path="$", reason="the document must be a JSON object", problems=[]
        )
    for key, value in raw.items():
        try:
            canonical_bytes({str(key): value})
        except NonCanonicalValue as err:
            where = _CANONICAL_AT.search(err.reason)
            path = where[1].lstrip(".") if where else str(key)
            raise StoreConfigRefused(
                key=str(key), path=path, reason=err.reason, problems=[f"{path}: {err.reason}"]
            ) from err
    size = len(encoded(raw))
    if size > SIZE_BUDGET:
        biggest = max(raw, key=lambda k: len(canonical_bytes(raw[k])))
        reason = (
            f"the document is {size} bytes, over the budget of {SIZE_BUDGET};"
            f" its largest key is {biggest!r}: trim it"
        )
        raise StoreConfigRefused(key=str(biggest), path=str(biggest), reason=reason, problems=[])
    try:
        return StoreConfig.model_validate(dict(raw))
    except ValidationError as err:
        errors = err.errors()
        problems = [
            f"{_json_path(e['loc'])}: {str(e['msg']).removeprefix('Value error, ')}" for e in errors
        ]
        first = errors[0]
        loc = tuple(first["loc"])
        raise StoreConfigRefused(
            key=str(loc[0]) if loc else "$",
            path=_json_path(loc),
            reason=str(first["msg"]).removeprefix("Value error, "),
            problems=problems,
        ) from err


def normalised(config: StoreConfig) -> dict[str, Any]:
    """The document with every default filled in: what the appliance stores and hashes."""
    return config.model_dump(mode="json")


def key_hashes(config: StoreConfig) -> dict[str, str]:
    """sha256 (hex) of the canonical JSON of each top-level section of the normalised document."""
    doc = normalised(config)
    return {key: hashlib.sha256(canonical_bytes(doc[key])).hexdigest() for key in SECTIONS}


def changed_sections(before: StoreConfig | None, after: StoreConfig) -> frozenset[str]:
    """The sections whose hash differs (every section when there was none before)."""
    if before is None:
        return frozenset(SECTIONS)
    old, new = key_hashes(before), key_hashes(after)
    return frozenset(k for k in SECTIONS if old[k] != new[k])


def store_config_json_schema() -> dict[str, Any]:
    """The JSON Schema the API publishes; each property says how the register applies it."""
    schema = StoreConfig.model_json_schema(mode="validation")
    schema["$id"] = "https://storefleet.dev/schemas/store-config.json"
    schema["x-size-budget-bytes"] = SIZE_BUDGET
    for key, prop in schema["properties"].items():
        prop["x-apply"] = APPLY[key].value
    return schema
