"""The keyboard-wedge decoder fed with evdev's own InputEvent objects."""

import pytest
from evdev import InputEvent, ecodes

from edge.peripherals.scanner.hid_simulator import keystrokes
from edge.peripherals.scanner.scan import GS, Scan
from edge.peripherals.scanner.settings import WedgeSettings
from edge.peripherals.scanner.wedge import WedgeDecoder

# The shape `evtest` prints for a USB HID scanner typing "4" then Enter (US layout):
# MSC_SCAN with the HID usage, the key press, SYN_REPORT, then the same for the release.
RECORDED_4_ENTER = [
    (1700000000, 1000, ecodes.EV_MSC, ecodes.MSC_SCAN, 0x70021),
    (1700000000, 1000, ecodes.EV_KEY, ecodes.KEY_4, 1),
    (1700000000, 1000, ecodes.EV_SYN, ecodes.SYN_REPORT, 0),
    (1700000000, 2000, ecodes.EV_MSC, ecodes.MSC_SCAN, 0x70021),
    (1700000000, 2000, ecodes.EV_KEY, ecodes.KEY_4, 0),
    (1700000000, 2000, ecodes.EV_SYN, ecodes.SYN_REPORT, 0),
    (1700000000, 3000, ecodes.EV_MSC, ecodes.MSC_SCAN, 0x70028),
    (1700000000, 3000, ecodes.EV_KEY, ecodes.KEY_ENTER, 1),
    (1700000000, 3000, ecodes.EV_SYN, ecodes.SYN_REPORT, 0),
    (1700000000, 4000, ecodes.EV_MSC, ecodes.MSC_SCAN, 0x70028),
    (1700000000, 4000, ecodes.EV_KEY, ecodes.KEY_ENTER, 0),
    (1700000000, 4000, ecodes.EV_SYN, ecodes.SYN_REPORT, 0),
]


def decode(events: list[InputEvent], settings: WedgeSettings | None = None) -> list[Scan]:
    decoder = WedgeDecoder(scanner="front", settings=settings or WedgeSettings())
    return [scan for event in events if (scan := decoder.feed(event)) is not None]


def test_recorded_stream() -> None:
    events = [InputEvent(*row) for row in RECORDED_4_ENTER]
    assert decode(events) == [Scan(text="4", scanner="front")]


@pytest.mark.parametrize(
    ("text", "layout"),
    [
        pytest.param("4006381333931", "us", id="ean13"),
        pytest.param("Hello, World! ~{}|:?", "us", id="us-shifted-symbols"),
        pytest.param("https://sf.example/r?x=1&y=2", "us", id="url-in-qr"),
        pytest.param("Zürich yz ß!§", "de", id="de-qwertz"),
    ],
)
def test_layouts_round_trip(text: str, layout: str) -> None:
    events = keystrokes(text, layout=layout)
    assert decode(events, WedgeSettings(layout=layout)) == [Scan(text=text, scanner="front")]


GS1 = f"0104006381333931{GS}10ABC123{GS}17261231"


@pytest.mark.parametrize("gs", [pytest.param("alt", id="alt-0029"), pytest.param("key", id="f8")])
def test_gs1_group_separator(gs: str) -> None:
    events = keystrokes(GS1, gs=gs)  # type: ignore[arg-type]
    (scan,) = decode(events)
    assert scan.gs1_element_strings == ["0104006381333931", "10ABC123", "17261231"]


def test_prefix_suffix_and_aim_identifier_are_stripped() -> None:
    settings = WedgeSettings(prefix="@", suffix="#", aim_ids=True)
    events = keystrokes("@]E04006381333931#")
    assert decode(events, settings) == [
        Scan(text="4006381333931", scanner="front", symbology="]E0")
    ]


def test_tab_terminator_and_several_scans_in_one_stream() -> None:
    settings = WedgeSettings(terminators=("KEY_TAB",))
    events = keystrokes("123", terminator="KEY_TAB") + keystrokes("456", terminator="KEY_TAB")
    assert [s.text for s in decode(events, settings)] == ["123", "456"]


def test_autorepeat_and_unknown_keys_do_not_type() -> None:
    decoder = WedgeDecoder(scanner="front", settings=WedgeSettings())
    repeat = InputEvent(0, 0, ecodes.EV_KEY, ecodes.KEY_7, 2)
    unknown = InputEvent(0, 0, ecodes.EV_KEY, ecodes.KEY_F12, 1)
    events = [*keystrokes("1")[:-6], repeat, unknown, *keystrokes("2")]  # [:-6]: no Enter
    scans = [scan for event in events if (scan := decoder.feed(event)) is not None]
    assert [s.text for s in scans] == ["12"]
    assert decoder.unknown_keys == 1


def test_empty_enter_is_not_a_scan() -> None:
    assert decode(keystrokes("")) == []
