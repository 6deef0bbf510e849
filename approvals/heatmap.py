"""The bottleneck heat map: the workflow's own diagram (approvals/machine/diagram.py), its
states coloured by the median time a visit spends there, each transition labelled with how
many requests took it in the period, each state with a task a link to the requests waiting
there now.

The diagram is drawn as usual and then marked up here (its state groups carry `data-state`, its
edges `data-from`/`data-to`), so its layout stays the one people know. Readable without colour:
the time is written in each coloured state and the legend names each colour's range.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from django.utils.safestring import SafeString, mark_safe

from approvals.charts import duration_text
from approvals.machine.diagram import render_svg

SVG = "http://www.w3.org/2000/svg"
ET.register_namespace("", SVG)
# Light to dark, each readable with dark text on it (the darkest with white text).
SCALE = ("#fff3c4", "#ffd37a", "#f8a251", "#e0683a", "#b3342a")
TEXT_ON = ("#1c2230", "#1c2230", "#1c2230", "#ffffff", "#ffffff")


@dataclass(frozen=True)
class Bucket:
    colour: str
    low: float
    high: float

    @property
    def text(self) -> str:
        return f"{duration_text(self.low)} \N{EN DASH} {duration_text(self.high)}"


def buckets(times: list[float]) -> list[Bucket]:
    """Five equal ranges from the shortest to the longest median (one when all are equal)."""
    if not times:
        return []
    low, high = min(times), max(times)
    if math.isclose(low, high):
        return [Bucket(SCALE[2], low, high)]
    step = (high - low) / len(SCALE)
    return [
        Bucket(colour, low + i * step, high if i == len(SCALE) - 1 else low + (i + 1) * step)
        for i, colour in enumerate(SCALE)
    ]


def bucket_of(value: float, scale: list[Bucket]) -> int:
    for index, bucket in enumerate(scale):
        if value <= bucket.high or index == len(scale) - 1:
            return index
    return len(scale) - 1


def _q(tag: str) -> str:
    return f"{{{SVG}}}{tag}"


def heat_svg(
    config: Mapping[str, Any],
    *,
    times: Mapping[str, float | None],
    counts: Mapping[tuple[str, str], int],
    link: Callable[[str], str],
) -> tuple[SafeString, list[Bucket]]:
    """The marked-up diagram and its legend's buckets. `times`: state path → median seconds;
    `counts`: (from, to) → transitions taken; `link(path)`: where a click on a state goes."""
    known = {path: t for path, t in times.items() if t is not None}
    scale = buckets(sorted(known.values()))
    notes = {edge: f"{n}\N{MULTIPLICATION SIGN} in the period" for edge, n in counts.items()}
    root = ET.fromstring(render_svg(config, reader=True, edge_notes=notes))
    root.set("class", (root.get("class", "") + " hm-svg").strip())
    parents = {child: parent for parent in root.iter() for child in parent}
    for group in list(root.iter(_q("g"))):
        path = group.get("data-state")
        classes = group.get("class", "").split()
        if path and "sd-state" in classes and path in times:
            _mark_state(group, path, known.get(path), scale, link(path), parents)
        elif group.get("data-from") is not None and "sd-edge" in classes:
            count = counts.get((group.get("data-from", ""), group.get("data-to", "")), 0)
            _mark_edge(group, count)
    return mark_safe(ET.tostring(root, encoding="unicode")), scale


def _mark_state(
    group: ET.Element,
    path: str,
    seconds: float | None,
    scale: list[Bucket],
    href: str,
    parents: dict[ET.Element, ET.Element],
) -> None:
    box = group.find(_q("rect"))
    title = group.find(_q("title"))
    words = f"median time here {duration_text(seconds)}" if seconds is not None else "no visits"
    if seconds is not None and box is not None:
        level = bucket_of(seconds, scale)
        box.set("fill", scale[level].colour)
        group.set("class", f"{group.get('class', '')} hm-level-{level}")
        for text in group.findall(_q("text")):
            text.set("fill", TEXT_ON[level])
    sub = next((t for t in group.findall(_q("text")) if "sd-sub" in t.get("class", "")), None)
    if sub is not None:
        sub.text = words if seconds is not None else "no visits in the period"
    if title is not None:
        title.text = f"{title.text or ''}\n{words}; click for the requests waiting here"
    # A link around the state: a click lists the requests waiting there (no script needed).
    parent = parents[group]
    anchor = ET.Element(_q("a"), {"href": href, "class": "hm-link", "data-state": path})
    anchor.set("aria-label", f"{path}: {words}; requests waiting here")
    index = list(parent).index(group)
    parent.remove(group)
    anchor.append(group)
    parent.insert(index, anchor)


def _mark_edge(group: ET.Element, count: int) -> None:
    """The count is written under the label by the diagram itself (edge_notes); the tooltip
    says it too, including the edges no request took."""
    title = group.find(_q("title"))
    if title is not None:
        title.text = f"{title.text or ''}\ntaken {count} times in the period"
