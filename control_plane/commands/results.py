"""What a device's answer to each command may hold, as the fleet agent writes it.

``edge/agent/commands.py`` builds each result; these models are their strict mirror on the cloud
side: integers are integers (no float, no ``"5"``, no ``1e400``), text is bounded and free of NUL
(PostgreSQL cannot store one), and nothing else is allowed in. A result outside its model is
refused at ingest; the summary line reads results through the same models, so a row stored before
this check existed is shown raw instead of failing the page.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from control_plane.ingest.refusal import refused
from protocols.errors import MalformedMessage
from protocols.limits import MAP_ENTRIES, Count, Identifier, Int64, Label, Seq, Text
from protocols.messages import CommandResult
from protocols.vocabulary import CommandName

#: The agent trims a count's lines to this many (``MAX_RESULT_LINES``) to fit one message.
MAX_LINES = 2000


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class CountStarted(_Strict):
    """``stock_count.start``: the session the console follows."""

    session_id: Identifier
    expected_gtins: Count


class VarianceLine(_Strict):
    """One GTIN of a count; ``expected`` is the ledger's on-hand, which a sale can take below 0."""

    gtin: Identifier
    expected: Int64
    counted: Count
    variance: Int64


class CountReport(_Strict):
    """The variance report a count committed to the journal (``VarianceReport.to_body``)."""

    session_id: Identifier
    location: Label = ""
    started_at_ms: Count | None = None
    stopped_at_ms: Count | None = None
    reads: Count = 0
    lines: Annotated[list[VarianceLine], Field(max_length=MAX_LINES)] = Field(default_factory=list)
    lines_omitted: Count = 0
    other_tags: Annotated[dict[Identifier, Count], Field(max_length=MAP_ENTRIES)] = Field(
        default_factory=dict
    )
    expected_total: Int64 = 0
    counted_total: Count = 0


class CountStopped(_Strict):
    """``stock_count.stop``: the report and where it is in the journal."""

    seq: Seq
    report: CountReport


class TestPageSent(_Strict):
    """``printer.test_page``: the printer job."""

    __test__ = False  # not a pytest class, whatever its name says
    job_id: Count


class DrawerOpened(_Strict):
    """``drawer.open``: the audit record in the journal and the printer job that kicked it."""

    seq: Seq
    job_id: Count


class OsInstallRequested(_Strict):
    """``os.install``: the image checked by the agent and handed to the image's root helper; how
    the install and its boot try end comes as ``os.update`` events."""

    requested: bool
    install: Identifier
    image: Label
    bytes: Count
    reboot: bool


class Outcome(_Strict):
    """What every answer carries besides its result: a bounded reason, or none."""

    error: Text | None = None


#: One model per command the control plane sends (``service.ALLOWED``).
RESULTS: dict[str, type[_Strict]] = {
    CommandName.STOCK_COUNT_START: CountStarted,
    CommandName.STOCK_COUNT_STOP: CountStopped,
    CommandName.PRINTER_TEST_PAGE: TestPageSent,
    CommandName.DRAWER_OPEN: DrawerOpened,
    CommandName.OS_INSTALL: OsInstallRequested,
}


def checked_result(name: str, result: CommandResult) -> CommandResult:
    """``result`` if it is what command ``name`` may answer; else :class:`MalformedMessage`.

    A refusal (``ok`` false) carries its reason and an empty result; a success carries exactly
    what its command's model allows.
    """
    model = RESULTS.get(name)
    if result.ok and model is None:
        raise MalformedMessage(f"{result.schema_name} not kept: no result model for {name!r}")
    if not result.ok and result.result:
        raise MalformedMessage(f"{result.schema_name} not kept: result: a refusal carries none")
    try:
        Outcome.model_validate({"error": result.error})
        if result.ok and model is not None:
            model.model_validate(result.result)
    except ValidationError as err:
        raise refused(result.schema_name, err) from err
    return result


def parsed(name: str, result: object) -> _Strict | None:
    """A stored result read through its command's model; None if it does not fit (an old row)."""
    model = RESULTS.get(name)
    if model is None:
        return None
    try:
        return model.model_validate(result)
    except ValidationError:
        return None
