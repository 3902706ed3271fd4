"""The report's SVG charts: each is an accessible image (title and desc named by
aria-labelledby), escapes every text it is given, and scales what it draws to its values."""

from __future__ import annotations

import re
from xml.etree import ElementTree

from night.charts import Segment, bar_chart, interval_chart, line_chart, stacked_bars

SVG = "{http://www.w3.org/2000/svg}"


def parsed(markup: str) -> ElementTree.Element:
    return ElementTree.fromstring(str(markup))  # well-formed XML, or this raises


def test_every_chart_is_a_named_image_and_escapes_its_texts() -> None:
    hostile = '<script>alert("x")</script> & co'
    charts = [
        bar_chart(hostile, hostile, [(hostile, 3)], [hostile]),
        stacked_bars(hostile, hostile, [(hostile, [Segment("a", 1)])], ["a"]),
        line_chart(hostile, hostile, ["d1", "d2"], [(hostile, [1, 2])]),
        interval_chart(hostile, hostile, [(hostile, 1.0, -1.0, 3.0)]),
    ]
    for chart in charts:
        assert "<script" not in chart
        svg = parsed(chart)
        assert svg.get("role") == "img"
        title, desc = svg.find(f"{SVG}title"), svg.find(f"{SVG}desc")
        assert title is not None and desc is not None
        assert title.text == desc.text == hostile
        assert svg.get("aria-labelledby") == f"{title.get('id')} {desc.get('id')}"


def test_bars_scale_to_the_largest_value() -> None:
    svg = parsed(bar_chart("t", "d", [("a", 10), ("b", 5), ("c", 0)], ["10", "5", "0"]))
    widths = [float(r.get("width", "0")) for r in svg.iter(f"{SVG}rect")]
    assert widths[0] == 2 * widths[1] > 0 and widths[2] == 0


def test_an_interval_above_zero_is_drawn_right_of_the_zero_line() -> None:
    svg = parsed(interval_chart("t", "d", [("up", 5.0, 2.0, 8.0), ("unclear", 0.5, -1.0, 2.0)]))
    zero = float(next(svg.iter(f"{SVG}line")).get("x1", "0"))
    drawn = list(svg.iter(f"{SVG}line"))[1:]
    up, unclear = ((float(x.get("x1", "0")), float(x.get("x2", "0"))) for x in drawn)
    assert zero < up[0] < up[1]
    assert unclear[0] < zero < unclear[1]


def test_a_line_has_a_point_per_day() -> None:
    svg = parsed(line_chart("t", "d", ["d1", "d2", "d3"], [("s", [0, 4, 2])]))
    (line,) = svg.iter(f"{SVG}polyline")
    assert len(re.findall(r"[\d.]+,[\d.]+", line.get("points", ""))) == 3
