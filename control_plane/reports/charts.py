"""Charts a person reads at a glance: server-side SVG drawn by pygal, inlined in the page.

Nothing is fetched when a chart is shown: pygal's tooltip script (which it would load from the
internet) is switched off (``js=[]``), no font or stylesheet is linked, and the SVG is written
into the page itself, so the console renders the same on a store's back-office PC without
internet. Values are the reports' integer minor units; the axis and labels show them as exact
decimals through :func:`~control_plane.reports.tables.money_text`.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence

import pygal
from pygal.style import Style

from control_plane.reports.tables import Table, money_text

# pygal appends a legacy import hook for its map plugins (find_module only, no find_spec) to
# sys.meta_path on import. We draw no maps; pytest's importer and Python >= 3.12 call find_spec on
# every hook and fail on it ("'PluginImportFixer' object has no attribute 'find_spec'"), so the hook
# is taken out again.
sys.meta_path[:] = [hook for hook in sys.meta_path if type(hook).__module__ != "pygal"]

STYLE = Style(
    background="transparent",
    plot_background="#ffffff",
    foreground="#222222",
    foreground_strong="#111111",
    foreground_subtle="#888888",
    colors=("#1f6feb", "#9aa5b1", "#d29922", "#cf222e", "#2da44e", "#8250df", "#bf3989"),
    font_family="system-ui, sans-serif",
)


def _config(title: str, exponent: int) -> dict[str, object]:
    return {
        "title": title,
        "style": STYLE,
        "js": [],  # no script from the internet: the chart is read, not hovered
        "disable_xml_declaration": True,  # inline in HTML
        "explicit_size": False,
        "width": 900,
        "height": 320,
        "legend_at_bottom": True,
        "value_formatter": lambda value: money_text(round(value), exponent),
        "print_values": False,
        "show_minor_x_labels": True,
        "truncate_label": 12,
    }


#: pygal writes its tooltip configuration as an inline script even without the tooltip script;
#: the chart needs neither, and a page without scripts in its SVG passes a strict CSP.
_SCRIPT = re.compile(r"<script\b[^>]*>.*?</script>", re.DOTALL)


def _svg(chart: pygal.graph.graph.Graph) -> str:
    rendered = str(chart.render(is_unicode=True))
    return _SCRIPT.sub("", rendered)


def trend_chart(trends: Table) -> str:
    """Net sales per bucket, the previous period beside it."""
    chart = pygal.Bar(**_config(trends.title, trends.exponent))
    labels = [str(label) for label in trends.column("bucket")]
    chart.x_labels = labels
    chart.x_label_rotation = 30 if len(labels) > 12 else 0
    chart.add("This period", [_int(v) for v in trends.column("net")])
    chart.add("Previous period", [_int(v) for v in trends.column("previous")])
    return _svg(chart)


def share_chart(table: Table, label_key: str, value_key: str, title: str) -> str:
    """Each row's share of the whole (tender mix, categories), as a pie; negatives left out."""
    chart = pygal.Pie(**_config(title, table.exponent) | {"inner_radius": 0.45})
    for label, value in zip(table.column(label_key), table.column(value_key), strict=True):
        amount = _int(value)
        if amount > 0:
            chart.add(str(label), amount)
    return _svg(chart)


def history_chart(title: str, times: Sequence[str], series: dict[str, Sequence[int | None]]) -> str:
    """Device history (lag in seconds, backlog in records) over time: plain numbers."""
    config = _config(title, 0) | {"value_formatter": lambda value: f"{value:,.0f}"}
    chart = pygal.Line(**config)
    chart.x_labels = list(times)
    chart.x_labels_major_count = 8
    chart.show_minor_x_labels = False
    chart.x_label_rotation = 30
    for name, values in series.items():
        chart.add(name, list(values))
    return _svg(chart)


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
