"""``storefleet`` with everything installed: both sides' commands and the demo, in one command."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from storefleet import sides
from storefleet.cli import app

runner = CliRunner()


def test_the_product_command_offers_every_command_of_both_sides() -> None:
    result = runner.invoke(app, ["--help"], env={"COLUMNS": "200"})

    assert result.exit_code == 0, result.output
    listed = {
        line.split()[1]
        for line in result.output.partition("Commands")[2].splitlines()
        if line.startswith("│ ") and line[2] != " "
    }
    assert listed == {
        "demo",
        "serve",
        "provision",
        "operators",
        "register",
        "enrol",
        "agent",
        "appliance",
        "release",  # storefleet release: shared, whichever sides are installed
        "journal",  # storefleet journal verify: the cloud's auditor of signed journals
        "catalog",  # storefleet catalog import: CSV and Shopify exports into the cloud catalog
    }
    assert "not installed" not in result.output


def test_provision_is_the_operators_and_enrol_the_appliances() -> None:
    """The field tech's enrol moved to the appliance side; `provision` needs no edge."""
    provision = runner.invoke(app, ["provision", "--help"], env={"COLUMNS": "200"})
    enrol = runner.invoke(app, ["enrol", "--help"], env={"COLUMNS": "200"})

    assert provision.exit_code == enrol.exit_code == 0
    assert "enrol-create" in provision.output
    assert "│ enrol " not in provision.output
    assert "--identity-dir" in enrol.output


@pytest.mark.parametrize(
    ("distribution", "extra", "missing"),
    [
        pytest.param("SQLAlchemy", "asyncio", (), id="an-installed-extra"),
        pytest.param("SQLAlchemy", "mssql", ("pyodbc",), id="an-extra-not-installed"),
        pytest.param("storefleet", "cloud", (), id="this-install-has-the-cloud"),
        pytest.param("storefleet", "appliance", (), id="this-install-has-the-appliance"),
        pytest.param("storefleet", "no-such-extra", (), id="an-unknown-extra-needs-nothing"),
    ],
)
def test_lacking_reads_an_extras_requirements_from_the_installed_metadata(
    distribution: str, extra: str, missing: tuple[str, ...]
) -> None:
    assert sides.lacking(extra, distribution=distribution) == missing


def test_nothing_to_refuse_when_both_sides_are_installed() -> None:
    assert sides.refusal("storefleet demo", sides.SIDES) is None
