"""The appliance's udev rules: well-formed, read without complaint by udev, and in step with the
register's drivers and the users systemd-sysusers makes.

How it works: systemd 252 has no ``udevadm verify``, so the rules are checked twice. A small lint
here reads every rule as udev(7) writes it (``KEY[{attr}] OP "value"`` joined by commas), with
each key's allowed operators, and every ``GOTO`` against its ``LABEL`` — udev 252 itself accepts
a missing comma silently. Then udev's own parser reads them: ``udevadm test`` in a private mount
namespace in which the rules directory and ``/etc/group`` (with the group ``storefleet`` made by
``systemd-sysusers`` from ``images/systemd/storefleet.sysusers``) are bind-mounted over the
host's; any line udev prints about our file is a problem ("Invalid key", "Unknown group" …).
"""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from edge.peripherals.scanner.settings import WedgeSettings

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "images" / "udev" / "70-storefleet.rules"
SYSUSERS = ROOT / "images" / "systemd" / "storefleet.sysusers"

MATCH_ONLY = {"ACTION", "DEVPATH", "KERNEL", "KERNELS", "SUBSYSTEM", "SUBSYSTEMS", "DRIVER"}
MATCH_ONLY |= {"DRIVERS", "ATTRS", "TAGS", "TEST", "PROGRAM", "RESULT", "CONST"}
ASSIGN_ONLY = {"OWNER", "GROUP", "MODE", "SECLABEL", "RUN", "LABEL", "GOTO", "IMPORT", "OPTIONS"}
EITHER = {"NAME", "SYMLINK", "ATTR", "SYSCTL", "ENV", "TAG"}
NEEDS_ATTRIBUTE = {"ATTR", "ATTRS", "ENV", "SYSCTL", "CONST", "SECLABEL"}
MAY_HAVE_ATTRIBUTE = NEEDS_ATTRIBUTE | {"TEST", "IMPORT", "RUN"}
MATCH_OPS = {"==", "!="}
ASSIGN_OPS = {"=", "+=", "-=", ":="}
TOKEN = re.compile(
    r"\s*(?P<key>[A-Z_]+)(?:\{(?P<attr>[^}]*)\})?\s*(?P<op>==|!=|\+=|-=|:=|=)\s*"
    r'"(?P<value>(?:[^"\\]|\\.)*)"\s*(?P<end>,?)'
)


@dataclass(frozen=True, slots=True)
class Token:
    """One ``KEY{attr}OP"value"`` of a rule."""

    line: int
    key: str
    attr: str | None
    op: str
    value: str


def rules(text: str) -> list[tuple[int, str]]:
    """(first line number, rule text) of each rule: comments and blanks dropped, ``\\`` joined."""
    found: list[tuple[int, str]] = []
    pending: tuple[int, str] | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if pending is None and (not line or line.startswith("#")):
            continue
        start, sofar = pending if pending is not None else (number, "")
        if line.endswith("\\"):
            pending = (start, sofar + line[:-1] + " ")
            continue
        pending = None
        found.append((start, sofar + line))
    return found


def lint(text: str) -> tuple[list[str], list[Token]]:
    """Problems in a rules file, and its tokens."""
    problems: list[str] = []
    tokens: list[Token] = []
    labels: dict[str, int] = {}
    gotos: list[Token] = []
    for number, rule in rules(text):
        at = 0
        while at < len(rule):
            found = TOKEN.match(rule, at)
            if found is None:
                problems.append(f"line {number}: cannot read {rule[at:].strip()!r}")
                break
            token = Token(number, found["key"], found["attr"], found["op"], found["value"])
            tokens.append(token)
            problems += _check(token)
            if token.key == "LABEL":
                if token.value in labels:
                    problems.append(f"line {number}: LABEL {token.value!r} defined twice")
                labels[token.value] = number
            elif token.key == "GOTO":
                gotos.append(token)
            at = found.end()
            if found["end"] != "," and at < len(rule):
                problems.append(f"line {number}: missing comma before {rule[at:].strip()!r}")
                break
    for goto in gotos:
        if labels.get(goto.value, 0) <= goto.line:
            problems.append(f"line {goto.line}: GOTO {goto.value!r} has no LABEL after it")
    return problems, tokens


def _check(token: Token) -> list[str]:
    where = f"line {token.line}: {token.key}"
    if token.key not in MATCH_ONLY | ASSIGN_ONLY | EITHER:
        return [f"{where} is not a udev key"]
    problems = []
    if token.key in NEEDS_ATTRIBUTE and not token.attr:
        problems.append(f"{where} needs {{attribute}}")
    if token.attr is not None and token.key not in MAY_HAVE_ATTRIBUTE:
        problems.append(f"{where} takes no {{attribute}}")
    allowed = (
        MATCH_OPS
        if token.key in MATCH_ONLY
        else {"="}
        if token.key in {"LABEL", "GOTO", "IMPORT"}
        else ASSIGN_OPS
        if token.key in ASSIGN_ONLY
        else MATCH_OPS | ASSIGN_OPS
    )
    if token.op not in allowed:
        problems.append(f"{where} cannot use {token.op}")
    return problems


def shipped() -> tuple[list[str], list[Token]]:
    return lint(RULES.read_text())


def test_the_rules_are_well_formed() -> None:
    problems, tokens = shipped()

    assert problems == []
    assert len(tokens) > 40  # guards the lint against reading nothing


BROKEN = [
    pytest.param('KERNEL=="ttyUSB*" GROUP="storefleet"', "missing comma", id="missing-comma"),
    pytest.param('KERNEL="ttyUSB*", GROUP="storefleet"', "KERNEL cannot use =", id="assign-match"),
    pytest.param('GROUP=="storefleet"', "GROUP cannot use ==", id="match-an-assignment"),
    pytest.param('KERNAL=="ttyUSB*", GROUP="x"', "KERNAL is not a udev key", id="unknown-key"),
    pytest.param('ENV=="x", GROUP="x"', "ENV needs {attribute}", id="env-without-name"),
    pytest.param('KERNEL=="tty*", GOTO="nowhere"', "GOTO 'nowhere' has no LABEL", id="bad-goto"),
    pytest.param("KERNEL==ttyUSB0", "cannot read", id="unquoted-value"),
]


@pytest.mark.parametrize(("rule", "problem"), BROKEN)
def test_the_lint_catches(rule: str, problem: str) -> None:
    problems, _ = lint(f"# a rule\n{rule}\n")

    assert len(problems) == 1
    assert problem in problems[0]


def test_a_continued_line_is_one_rule() -> None:
    problems, tokens = lint('KERNEL=="ttyUSB*", \\\n  GROUP="storefleet"\n')

    assert (problems, [t.key for t in tokens]) == ([], ["KERNEL", "GROUP"])


def _assigned(tokens: list[Token], key: str, attr: str | None = None) -> set[str]:
    return {t.value for t in tokens if t.key == key and t.attr == attr and t.op in ASSIGN_OPS}


def test_every_device_goes_to_the_agents_group_which_sysusers_makes() -> None:
    _, tokens = shipped()
    users = {line.split()[1] for line in SYSUSERS.read_text().splitlines() if line[:2] == "u "}

    assert _assigned(tokens, "GROUP") == {"storefleet"}
    assert _assigned(tokens, "GROUP") <= users  # `u name` makes the group of the same name
    assert _assigned(tokens, "MODE") == {"0660"}


def test_the_roles_are_the_documented_stable_names() -> None:
    _, tokens = shipped()

    roles = _assigned(tokens, "ENV", "STOREFLEET_ROLE")
    assert roles == {"scanner", "serial-scanner", "printer", "printer-lp", "serial-printer", "rfid"}
    assert _assigned(tokens, "SYMLINK") == {
        "storefleet/$env{STOREFLEET_ROLE}",
        "storefleet/$env{STOREFLEET_ROLE}-$env{ID_PATH_TAG}",
    }
    header = RULES.read_text().partition("ACTION==")[0]
    assert [role for role in roles if f"#   {role} " not in header] == []


@pytest.mark.parametrize("name", WedgeSettings().name_contains)
def test_every_scanner_name_the_register_reads_gets_the_scanner_role(name: str) -> None:
    """hid.py opens the devices whose name contains these; udev must let its user open them."""
    _, tokens = shipped()
    patterns = [
        pattern
        for token in tokens
        if token.key == "ATTRS" and token.attr == "name"
        for pattern in token.value.split("|")
    ]

    assert any(fnmatch.fnmatchcase(f"Acme {name} 2D", p) for p in patterns)
    assert any(fnmatch.fnmatchcase(f"ACME {name.upper()} 2D", p) for p in patterns)


# -- udev's own parser ----------------------------------------------------------------------------


def _namespace_available() -> bool:
    if shutil.which("udevadm") is None or shutil.which("unshare") is None or os.geteuid() != 0:
        return False
    done = subprocess.run(["unshare", "-m", "true"], capture_output=True, check=False)
    return done.returncode == 0


needs_namespace = pytest.mark.skipif(
    not _namespace_available(),
    reason="udevadm test needs root and a private mount namespace (unshare -m)",
)


def _group_file(base: Path) -> Path:
    """The host's /etc/group plus what systemd-sysusers makes from our sysusers file."""
    root = base / "sysroot"
    (root / "etc").mkdir(parents=True)
    for name in ("passwd", "group", "shadow", "gshadow"):
        if Path("/etc", name).exists():
            shutil.copy(Path("/etc", name), root / "etc" / name)
    (root / "usr/lib/sysusers.d").mkdir(parents=True)
    shutil.copy(SYSUSERS, root / "usr/lib/sysusers.d/storefleet.conf")
    subprocess.run(
        ["systemd-sysusers", f"--root={root}"], capture_output=True, timeout=60, check=True
    )
    return root / "etc" / "group"


def udev_says(base: Path, text: str) -> list[str]:
    """What ``udevadm test`` prints about our rules file when udev parses it."""
    rules_dir = base / "rules.d"
    rules_dir.mkdir()
    (rules_dir / RULES.name).write_text(text)
    group = _group_file(base)
    device = next(
        path
        for path in ("/sys/class/tty/tty0", "/sys/class/tty/console", "/sys/class/net/lo")
        if Path(path).exists()
    )
    script = (
        f"mount --bind {rules_dir} /etc/udev/rules.d && mount --bind {group} /etc/group && "
        f"udevadm test --action=add {device}"
    )
    done = subprocess.run(
        ["unshare", "-m", "sh", "-c", script],
        capture_output=True,
        text=True,
        env={**os.environ, "SYSTEMD_LOG_COLOR": "0"},
        timeout=120,
        check=False,
    )
    output = done.stdout + done.stderr
    assert f"Reading rules file: /etc/udev/rules.d/{RULES.name}" in output, output
    return [
        line for line in output.splitlines() if line.startswith(f"/etc/udev/rules.d/{RULES.name}")
    ]


@needs_namespace
def test_udev_reads_the_rules_without_a_complaint(tmp_path: Path) -> None:
    assert udev_says(tmp_path, RULES.read_text()) == []


@needs_namespace
@pytest.mark.parametrize(
    ("extra", "complaint"),
    [
        pytest.param('KERNEL=="ttyUSB*", BOGUS="1"\n', "Invalid key 'BOGUS'", id="invalid-key"),
        pytest.param(
            'KERNEL=="ttyUSB*", GROUP="no-such-group"\n', "Unknown group", id="unknown-group"
        ),
    ],
)
def test_udev_complaints_are_seen(extra: str, complaint: str, tmp_path: Path) -> None:
    """The check can fail: udev's complaint about a bad rule reaches the test."""
    said = udev_says(tmp_path, RULES.read_text() + extra)

    assert len(said) == 1
    assert complaint in said[0]
