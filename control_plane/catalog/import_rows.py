"""Reading a catalog file into items: storefleet's own CSV and Shopify's product export CSV.

How it works: :func:`read_rows` walks the file once, record by record (a quoted cell may hold
line breaks: Shopify's ``Body (HTML)`` does), and turns each record into an
:class:`ImportedItem` (the fields of a :class:`~control_plane.catalog.schemas.CatalogItem`) or
into a :class:`RowError` naming the row (as a spreadsheet numbers it: the header is row 1), the
column and the reason. Nothing is written here; :mod:`control_plane.catalog.import_service`
refuses the whole file when any row is wrong, so a file is imported entirely or not at all.

Speed (issue 14: 100,000 rows in well under 10 s): a pydantic model per row cost more than
everything else of reading together, so a row is checked by plain code against the same limits
(:func:`_fits`: lengths, one compiled regex for control characters and lone surrogates) and
becomes a tuple; only a row that fails those checks goes through ``CatalogItem`` — so its refusal
is worded by pydantic exactly as before. Cells are read by position (``csv.reader``), a plain
price (``12.50``) is converted without ``Decimal``.

Two formats:

* ``csv`` — columns ``id, name, price, tax_class`` (required), ``department, gtins, plu, sku,
  sold_by, active`` (optional). ``price`` is in the currency's major unit (``1.75``), ``gtins``
  separated by ``;`` or spaces.
* ``shopify`` — Shopify's product export: one row per variant, grouped by ``Handle``; ``Title``,
  ``Type`` and ``Status`` are on the product's first row only, ``Option1..3 Value`` name the
  variant, ``Variant SKU`` becomes the item id (else ``<Handle>-<n>``), ``Variant Price`` the
  price, ``Variant Barcode`` its GTIN, ``Variant Taxable`` picks the taxed or untaxed class.
  Rows that carry only an image (no variant) are left out; a product that is not ``active``
  (draft, archived) is imported inactive.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from json.encoder import encode_basestring as _text  # JSON string, UTF-8 kept
from operator import itemgetter
from typing import Literal, NamedTuple

from pydantic import ValidationError

from control_plane.catalog.schemas import CatalogItem
from protocols.limits import ID_LENGTH, INT64_MAX, LABEL_LENGTH
from protocols.stock_transfer import as_gtin14

ImportFormat = Literal["csv", "shopify"]
FORMATS: tuple[ImportFormat, ...] = ("csv", "shopify")
#: Columns a storefleet CSV must have; a Shopify export must have these.
REQUIRED: dict[ImportFormat, tuple[str, ...]] = {
    "csv": ("id", "name", "price", "tax_class"),
    "shopify": ("Handle", "Variant Price"),
}
#: How many refused rows a report lists (the count is always complete).
MAX_ERRORS = 1000
_DEFAULT_TITLE = "Default Title"  # Shopify's option value of a product without variants


class ImportedItem(NamedTuple):
    """A checked row: a ``CatalogItem``'s fields, in its order (a tuple: cheap by the 100,000)."""

    id: str
    name: str
    price_minor: int
    tax_class: str
    department: str
    gtins: list[str]
    plu: str | None
    sku: str | None
    sold_by: str
    active: bool

    def as_catalog_item(self, version: int = 0) -> CatalogItem:
        return CatalogItem.model_validate({**self._asdict(), "version": version})

    def body(self, version: int) -> str:
        """The item's JSON at ``version``, byte for byte as ``CatalogItem.model_dump_json``
        writes it (a test holds them equal); formatted here: 4× faster than an encoder's dict."""
        return (
            f'{{"id":{_text(self.id)},"name":{_text(self.name)},"price_minor":{self.price_minor},'
            f'"tax_class":{_text(self.tax_class)},"department":{_text(self.department)},'
            f'"gtins":[{",".join(map(_text, self.gtins))}],"plu":{_maybe(self.plu)},'
            f'"sku":{_maybe(self.sku)},"sold_by":{_text(self.sold_by)},'
            f'"active":{"true" if self.active else "false"},"version":{version}}}'
        )


def _maybe(value: str | None) -> str:
    return "null" if value is None else _text(value)


@dataclass(frozen=True, slots=True)
class RowError:
    """Row ``row`` (header = 1) is refused: ``column`` (or ``""``) and why."""

    row: int
    column: str
    reason: str


@dataclass(frozen=True, slots=True)
class TaxClasses:
    """The tax class of a taxed item and of an untaxed one (Shopify's ``Variant Taxable``)."""

    taxed: str = "A"
    untaxed: str = "A"


@dataclass(slots=True)
class ReadResult:
    """Every item the file holds, or the reasons it holds none that can be imported."""

    items: list[ImportedItem] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    error_count: int = 0
    rows: int = 0

    def refuse(self, error: RowError) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(error)


class FileRefused(ValueError):  # noqa: N818 - named in the domain's words
    """The file cannot be read as the format at all (no header, a missing column)."""


def read_rows(
    text: str,
    *,
    fmt: ImportFormat,
    exponent: int,
    taxes: TaxClasses | None = None,
    progress: Callable[[int], None] | None = None,
) -> ReadResult:
    """Items and row errors of ``text``; ``progress`` hears the characters read so far."""
    # newline="": the csv module reads line ends itself, so a lone CR (old Mac files) or a line
    # break inside a quoted cell is read, not refused as a "new-line in unquoted field"
    handle = io.StringIO(text.removeprefix("\ufeff"), newline="")  # a spreadsheet's BOM
    reader = _records(handle)
    header = next(reader, [])
    missing = [c for c in REQUIRED[fmt] if c not in header]
    if missing:
        raise FileRefused(
            f"not a {fmt} catalog file: row 1 lacks the column(s) {', '.join(missing)}"
        )
    result = ReadResult()
    seen: dict[str, int] = {}
    convert = (
        _storefleet(header, exponent)
        if fmt == "csv"
        else _shopify(header, exponent, taxes or TaxClasses())
    )
    width = len(header)
    number = 1
    for record in reader:
        if not record:
            continue  # a blank line is no row (csv.DictReader's numbering, kept)
        number += 1
        result.rows += 1
        if progress is not None and number % 1000 == 0:
            progress(handle.tell())
        if len(record) > width:
            result.refuse(RowError(number, "", "more cells than the header has columns"))
            continue
        try:
            item = convert(record + [""] * (width - len(record)))
        except _Refused as err:
            result.refuse(RowError(number, err.column, err.reason))
            continue
        if item is None:
            continue
        first = seen.setdefault(item.id, number)
        if first != number:
            result.refuse(RowError(number, "id", f"item id {item.id!r} is on row {first} too"))
            continue
        result.items.append(item)
    if progress is not None:
        progress(len(text))
    return result


def _records(handle: io.StringIO) -> Iterator[list[str]]:
    """The file's records; a file the csv module cannot read at all (a cell over its field
    limit) is refused as a file, naming the line, not failed as the server's fault."""
    reader = csv.reader(handle)
    try:
        yield from reader
    except csv.Error as err:
        raise FileRefused(f"not readable as CSV at line {reader.line_num}: {err}") from err


class _Refused(Exception):  # noqa: N818 - internal: becomes a RowError
    def __init__(self, column: str, reason: str) -> None:
        super().__init__(reason)
        self.column = column
        self.reason = reason


Convert = Callable[[list[str]], ImportedItem | None]


def _cell(record: Mapping[str, str | None], column: str) -> str:
    return (record.get(column) or "").strip()


#: A plain price: digits, then at most one point and digits (anything else goes to ``Decimal``).
_PLAIN_PRICE = re.compile(r"([0-9]{1,18})(?:\.([0-9]*))?")
#: What ``PRINTABLE_PATTERN`` refuses, and what ``control_plane.inputs``' UTF-8 check refuses.
_UNFIT = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")


def _price(text: str, exponent: int, column: str) -> int:
    """Major units (``1.75``) as integer minor units; never through a float."""
    plain = _PLAIN_PRICE.fullmatch(text)
    if plain is not None:
        decimals = plain[2] or ""
        if len(decimals) <= exponent:
            return int(plain[1] + decimals.ljust(exponent, "0"))
    try:
        value = Decimal(text.replace(",", "")) if text else None
    except InvalidOperation:
        value = None
    if value is None or not value.is_finite():
        raise _Refused(column, f"{text!r} is not a price")
    if value < 0:
        raise _Refused(column, f"{text} is below zero")
    minor = value.scaleb(exponent)
    if minor != minor.to_integral_value():
        raise _Refused(column, f"{text} has more than {exponent} decimal places")
    return int(minor)


def _gtins(text: str, column: str) -> list[str]:
    codes = [c for c in text.replace(";", " ").split() if c]
    for code in codes:
        if as_gtin14(code) is None:
            raise _Refused(column, f"{code} is not a GTIN (8, 12, 13 or 14 digits, check digit)")
    return codes


def _fits(item: ImportedItem) -> bool:
    """Whether ``CatalogItem`` takes ``item`` as it is (``schemas.CatalogItem``'s limits)."""
    plu, sku, gtins = item.plu, item.sku, item.gtins
    return (
        0 < len(item.id) <= ID_LENGTH
        and 0 < len(item.name) <= 200
        and 0 <= item.price_minor <= INT64_MAX
        and 0 < len(item.tax_class) <= 16
        and len(item.department) <= LABEL_LENGTH
        and len(gtins) <= 32
        and all(0 < len(code) <= ID_LENGTH and _UNFIT.search(code) is None for code in gtins)
        and (plu is None or len(plu) <= 16)
        and (sku is None or 0 < len(sku) <= ID_LENGTH)
        and item.sold_by in ("piece", "weight")
        and _UNFIT.search(
            "".join((item.id, item.name, item.tax_class, item.department, plu or "", sku or ""))
        )
        is None
    )


def _validated(item: ImportedItem, columns: Mapping[str, str]) -> ImportedItem:
    """``item`` when it fits; else ``CatalogItem``'s own refusal of it, in its words."""
    if _fits(item):
        return item
    try:
        checked = CatalogItem.model_validate(item._asdict())
    except ValidationError as err:
        first = err.errors()[0]
        name = str(first["loc"][0]) if first["loc"] else ""
        raise _Refused(columns.get(name, name), str(first["msg"])) from err
    return ImportedItem(**checked.model_dump(exclude={"version"}))


_TRUE = frozenset({"true", "yes", "1", "y"})
_FALSE = frozenset({"false", "no", "0", "n"})


def _flag(text: str, column: str, *, default: bool) -> bool:
    if not text:
        return default
    if text.lower() in _TRUE:
        return True
    if text.lower() in _FALSE:
        return False
    raise _Refused(column, f"{text!r} is neither true nor false")


def _cells(header: Sequence[str], names: Sequence[str]) -> Callable[[list[str]], list[str]]:
    """The stripped cells of ``names`` in a record: of the last column of a name, as
    csv.DictReader reads it; ``""`` for a column the header lacks."""
    where = {name: n for n, name in enumerate(header)}
    pick = itemgetter(*(where.get(name, len(header)) for name in names))

    def cells(record: list[str]) -> list[str]:
        return [cell.strip() for cell in pick([*record, ""])]

    return cells


def _storefleet(header: Sequence[str], exponent: int) -> Convert:
    columns = {"price_minor": "price", "gtins": "gtins"}
    names = ("id", "name", "price", "tax_class", "department", "gtins", "plu", "sku", "sold_by",
             "active")  # fmt: skip
    cells = _cells(header, names)

    def convert(record: list[str]) -> ImportedItem:
        id_, name, price, tax, dept, gtins, plu, sku, sold_by, active = cells(record)
        item = ImportedItem(
            id=id_,
            name=name,
            price_minor=_price(price, exponent, "price"),
            tax_class=tax,
            department=dept,
            gtins=_gtins(gtins, "gtins"),
            plu=plu or None,
            sku=sku or None,
            sold_by=sold_by or "piece",
            active=_flag(active, "active", default=True),
        )
        return _validated(item, columns)

    return convert


def _shopify(header: Sequence[str], exponent: int, taxes: TaxClasses) -> Convert:
    """Shopify's rows carry the product's fields on its first row only: remember them."""
    product: dict[str, str] = {}
    variants: dict[str, int] = {}
    columns = {
        "id": "Variant SKU", "name": "Title", "price_minor": "Variant Price",
        "gtins": "Variant Barcode", "department": "Type", "sku": "Variant SKU",
    }  # fmt: skip

    def convert(cells: list[str]) -> ImportedItem | None:
        record = dict(zip(header, cells, strict=True))
        handle = _cell(record, "Handle")
        if not handle:
            raise _Refused("Handle", "every row needs the product's Handle")
        if product.get("handle") != handle:
            product.clear()
            product.update(
                handle=handle,
                title=_cell(record, "Title"),
                type=_cell(record, "Type"),
                status=_cell(record, "Status").lower() or "active",
                published=_cell(record, "Published"),
            )
        options = [_cell(record, f"Option{n} Value") for n in (1, 2, 3)]
        price = _cell(record, "Variant Price")
        sku = _cell(record, "Variant SKU")
        if not price and not sku and not any(options):
            return None  # an image row: no variant
        if not product["title"]:
            raise _Refused("Title", f"product {handle!r} has no Title on its first row")
        variants[handle] = variants.get(handle, 0) + 1
        named = [o for o in options if o and o != _DEFAULT_TITLE]
        name = product["title"] + (" - " + " / ".join(named) if named else "")
        taxable = _flag(_cell(record, "Variant Taxable"), "Variant Taxable", default=True)
        active = product["status"] == "active" and _flag(
            product["published"], "Published", default=True
        )
        item = ImportedItem(
            id=sku or f"{handle}-{variants[handle]}",
            name=name[:200],
            price_minor=_price(price, exponent, "Variant Price"),
            tax_class=taxes.taxed if taxable else taxes.untaxed,
            department=product["type"][:100],
            gtins=_gtins(_cell(record, "Variant Barcode"), "Variant Barcode"),
            plu=None,
            sku=sku or None,
            sold_by="piece",
            active=active,
        )
        return _validated(item, columns)

    return convert
