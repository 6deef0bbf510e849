"""A workflow definition drawn as an inline SVG state diagram.

``render_svg(config, active=..., visited=...)`` returns one self-contained ``<svg>`` element
for a (valid) machine config. States are laid out top to bottom in layers, Sugiyama style:

1. ranks: longest path from the initial state over the graph without its back edges (the
   edges a depth-first walk from the initial state finds going back up), so loops such as
   RESUBMIT -> review do not pull the layout apart;
2. every rank gets a row of edge labels below it, and an edge longer than one row gets a
   placeholder ("slot") in each row it crosses, so edges and labels take room like states:
   no edge runs through a box and no label covers a box or another label;
3. the order inside each row comes from barycenter sweeps plus adjacent swaps, keeping the
   order with the fewest crossings;
4. x positions come from repeatedly pulling every slot toward its neighbours in the next
   row, solved per row as an ordered least-squares problem (pool adjacent violators), which
   keeps minimum gaps and straightens long edges.

A parallel state is a container whose regions are laid out the same way, side by side.

Everything that comes from the definition is XML-escaped, so the result may be marked
safe. Colours are inline presentation attributes (the light theme), which
static/css/diagram.css overrides for dark mode and hover; the diagram reads fine without
the stylesheet. Stdlib only: no Graphviz and no font metrics, text widths are estimated
per character.
"""

from __future__ import annotations

import html
import itertools
import math
import re
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from approvals.machine import words
from approvals.machine.config import (
    ConfigState,
    ConfigTransition,
    child_states,
    form_of,
    invoke_of,
    meta_of,
    subflow_of,
    task_of,
    task_rule,
    transitions_of,
)
from approvals.machine.titles import readable_title

__all__ = ["render_svg"]

FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"

NAME_SIZE = 12.0
# At the natural size (the reader's view is never shrunk) no text is under 11 px.
SUB_SIZE = 11.0
EDGE_SIZE = 11.0
HEAD_SIZE = 12.0
CAPTION_SIZE = 11.0

MAX_NAME_CHARS = 32
MAX_SUB_CHARS = 34
MAX_LABEL_CHARS = 30
MAX_LABEL_LINES = 3

NODE_PAD_X = 14.0
NODE_MIN_W = 88.0
NODE_H = 32.0
NODE_H_SUB = 44.0
NODE_RADIUS = 8.0
LABEL_LINE_H = 14.5
LABEL_PAD_X = 4.0

NODE_GAP = 28.0  # between two boxes in a row
SLOT_GAP = 10.0  # when an edge or a label is involved
SLOT_HALF = 3.0  # half the room an edge passing through a row takes
RANK_GAP = 20.0  # between a row of states and a row of labels
EMPTY_LABEL_ROW = 12.0
INITIAL_PAD = 26.0
PORT_SPACING = 10.0
PORT_INSET = 14.0
LOOP_W = 20.0
MARGIN = 14.0
ARROW_L = 7.0
ARROW_HW = 3.6

HEADER_H = 30.0
CAPTION_H = 22.0
REGION_PAD = 14.0

ORDER_SWEEPS = 8
PLACE_SWEEPS = 10

# The light theme, written inline so the SVG stands on its own; the stylesheet overrides it.
C_TEXT = "#1c2230"
C_MUTED = "#5d6677"
C_BORDER = "#b8c0cd"
C_SURFACE = "#ffffff"
C_CONTAINER = "#f7f8fa"
C_EDGE = "#7b8598"
C_BACK = "#7a56c8"
C_ERROR = "#b42318"
C_ACCENT = "#2f5bea"
C_ACCENT_STRONG = "#2147c4"
C_ACCENT_TEXT = "#ffffff"
C_ACCENT_SUB = "#dbe4fd"
C_VISITED = "#eaf0fe"
C_VISITED_BORDER = "#94aaf0"
OUTCOME_COLOURS = {
    # outcome: (fill, border)
    "completed": ("#eaf6ee", "#7fbf95"),
    "rejected": ("#fdeeec", "#e3a29b"),
    "cancelled": ("#f1f2f5", "#aab2c0"),
    "withdrawn": ("#f1f2f5", "#aab2c0"),
}

# XML 1.0 cannot carry these at all, escaped or not: dropped so the output always parses.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")

# Rough advance widths in em, close to DejaVu Sans (the widest common fallback), so the
# estimate errs on the roomy side for the fonts most browsers actually pick.
_NARROW = frozenset("ijl.,:;'|!`")
_SEMI = frozenset('frtI()[]{}-/\\" ')
_WIDE = frozenset("mwMW@%")
_SYMBOL = frozenset("<>=+~^*#&$")

TICK = "\u2713"
CROSS = "\u2717"
ELLIPSIS = "\u2026"
DOT = "\u00b7"


def render_svg(
    config: Mapping[str, Any],
    *,
    active: Collection[str] = (),
    visited: Collection[str] = (),
    reader: bool = False,
    edge_notes: Mapping[tuple[str, str], str] | None = None,
) -> str:
    """The state diagram of a machine config as an ``<svg>`` string, safe to embed as is.

    ``active`` and ``visited`` are state paths (``review``, or dotted inside a parallel
    state: ``fulfillment.inventory.picking``); active states are filled with the accent
    colour, visited ones tinted. A container counts as active or visited when one of its
    states is.

    The technical view (the admin's) shows events, guards and durations as written; the
    ``reader`` view, for requesters and reviewers, says them in words (approvals/machine/
    words.py): "Approve (10,000 or more)", "if it fails", "Manager · 2 days".

    ``edge_notes`` adds a line of its own under the label of the edge (from path, to path),
    laid out with it (the insights' heat map writes how often each was taken).
    """
    template, key = config.get("title"), config.get("id")
    name = readable_title(template, str(key or "")) if isinstance(template, str) else ""
    title = _text(name or key or "Workflow")
    marks = _Marks(_paths(active), _paths(visited))
    wording = _Wording(reader, form_of(config), dict(edge_notes or {}))
    level = _build_level(child_states(config), config.get("initial"), wording)
    width = level.width + 2 * MARGIN
    height = level.height + 2 * MARGIN

    current = [n.title for n in level.walk() if n.path in marks.active and not n.regions]
    label = f"Workflow diagram: {title}"
    if current:
        label += f" (current: {', '.join(current)})"

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="sd-svg{" sd-reader" if reader else ""}"'
        ' role="img"'
        # Its natural width as an attribute, scaled down by the stylesheet's max-width: a style=
        # attribute would be refused by the pages' Content-Security-Policy.
        f' aria-label="{_esc(label)}" viewBox="0 0 {_n(width)} {_n(height)}" width="{_n(width)}"'
        f' preserveAspectRatio="xMidYMin meet"'
        f' font-family="{FONT}" font-size="{_n(NAME_SIZE)}">',
        f"<title>{_esc(title)}</title>",
    ]
    _draw_level(level, MARGIN, MARGIN, marks, out)
    out.append("</svg>")
    return "".join(out)


def _paths(paths: Collection[str]) -> frozenset[str]:
    # A lone path is a Collection[str] too; taken letter by letter it would match nothing.
    return frozenset([paths] if isinstance(paths, str) else (str(p) for p in paths))


# ---------------------------------------------------------------------------------------
# Model


@dataclass(frozen=True)
class _Marks:
    active: frozenset[str]
    visited: frozenset[str]

    def status(self, path: str, *, container: bool = False) -> str:
        """'active', 'visited' or ''; a container takes the status of its descendants."""
        prefix = path + "."
        if path in self.active or (container and any(p.startswith(prefix) for p in self.active)):
            return "active"
        if path in self.visited or (container and any(p.startswith(prefix) for p in self.visited)):
            return "visited"
        return ""


@dataclass(frozen=True)
class _Wording:
    """Which view is drawn, and the request form the reader's words name fields from."""

    reader: bool
    form: Mapping[str, Any]
    notes: Mapping[tuple[str, str], str] = field(default_factory=dict)


@dataclass
class _Span:
    text: str
    cls: str  # sd-ev | sd-ev-auto | sd-guard | sd-sep


@dataclass
class _Label:
    """One transition as an edge shows it."""

    spans: list[_Span]
    tooltip: str
    kind: str  # event | always | after | done | error
    # The reader's label, already wrapped into lines (its condition may be a sentence).
    lines: list[list[_Span]] | None = None


@dataclass(eq=False)
class _Node:
    name: str
    path: str
    config: Mapping[str, Any]
    kind: str  # atomic | final | parallel | compound
    title: str
    subtitle: str
    tooltip: str
    w: float = NODE_MIN_W
    h: float = NODE_H
    right: float = 0.0  # room kept free right of the box, for a self-loop and its label
    regions: list[_Region] = field(default_factory=list)
    loop: list[_Label] = field(default_factory=list)
    loop_lines: list[list[_Span]] = field(default_factory=list)
    x: float = 0.0  # centre
    y: float = 0.0  # centre
    rank: int = 0
    slot: _Slot | None = None
    kind_text: str = ""  # what a container's header says it is


@dataclass(eq=False)
class _Region:
    path: str
    caption: str
    level: _Level
    x: float = 0.0  # left, relative to its container
    w: float = 0.0


@dataclass(eq=False)
class _Edge:
    source: _Node
    target: _Node
    labels: list[_Label]
    back: bool = False
    lines: list[list[_Span]] = field(default_factory=list)
    chain: list[_Slot] = field(default_factory=list)  # top to bottom
    label_slot: _Slot | None = None
    points: list[tuple[float, float]] = field(default_factory=list)  # in drawing direction
    label_at: tuple[float, float] | None = None
    # Whether the upper and the lower end meet the box on its side (1 right, -1 left)
    # instead of its bottom and top.
    sides: tuple[int, int] = (0, 0)

    @property
    def horizontal_ends(self) -> tuple[bool, bool]:
        """Whether the drawn path starts and ends going sideways."""
        top, bottom = bool(self.sides[0]), bool(self.sides[1])
        return (bottom, top) if self.back else (top, bottom)

    @property
    def upper(self) -> _Node:
        return self.target if self.back else self.source

    @property
    def lower(self) -> _Node:
        return self.source if self.back else self.target


@dataclass(eq=False)
class _Slot:
    """Something taking room in a row: a state, an edge passing through, or an edge label."""

    rank: int
    seq: int
    left: float
    right: float
    height: float = 0.0
    node: _Node | None = None
    edge: _Edge | None = None
    ups: list[_Slot] = field(default_factory=list)
    downs: list[_Slot] = field(default_factory=list)
    pos: int = 0
    x: float = 0.0


@dataclass(eq=False)
class _Level:
    """The states of one machine level: the top level, or one region of a parallel state."""

    nodes: list[_Node]
    edges: list[_Edge]
    initial: _Node | None
    rows: list[list[_Slot]] = field(default_factory=list)
    row_top: list[float] = field(default_factory=list)
    row_bottom: list[float] = field(default_factory=list)
    width: float = 0.0
    height: float = 0.0

    def walk(self) -> Iterator[_Node]:
        for node in self.nodes:
            yield node
            for region in node.regions:
                yield from region.level.walk()


# ---------------------------------------------------------------------------------------
# What the config says, as the diagram shows it


def _delay_text(delay: Any) -> str:
    """ISO durations as written; plain numbers are milliseconds, shown in a readable unit."""
    text = _text(delay)
    if not text.isdigit():
        return text
    ms = int(text)
    for unit, size in (("h", 3_600_000), ("min", 60_000), ("s", 1000)):
        if ms and ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


# What fires the transitions that no event names, as their labels say it.
_AUTOMATIC = {
    "always": ("always", "always"),
    "invoke.onDone": ("done", f"invoke {TICK}"),
    "invoke.onError": ("error", f"invoke {CROSS}"),
    "onDone": ("done", "done"),
}


# The same, in the reader's words.
_AUTOMATIC_WORDS = {
    "invoke.onDone": ("done", "when done"),
    "invoke.onError": ("error", "if it fails"),
    "onDone": ("done", "when all are done"),
}


def _make_label(transition: ConfigTransition, wording: _Wording) -> _Label:
    if wording.reader:
        return _reader_label(transition, wording.form)
    if transition.trigger == "on":
        kind, event = "event", _text(transition.event)
    elif transition.trigger == "after":
        kind, event = "after", f"after {_delay_text(transition.delay)}"
    else:
        kind, event = _AUTOMATIC[transition.trigger]
    guard = _text(transition.guard or "")
    spans = [_Span(event, "sd-ev" if kind == "event" else "sd-ev-auto")]
    if guard:
        spans.append(_Span(f" [{guard}]", "sd-guard"))
    tooltip = event + (f" [{guard}]" if guard else "")
    if transition.target:
        tooltip += f" \u2192 {_text(transition.target)}"
    if transition.assign:
        tooltip += "\nassigns " + ", ".join(_text(k) for k in transition.assign)
    if transition.description:
        tooltip += "\n" + _text(transition.description)
    return _Label(spans, tooltip, kind)


def _reader_label(transition: ConfigTransition, form: Mapping[str, Any]) -> _Label:
    """'Approve (10,000 or more)', 'after 30 days', 'if it fails': never a guard or an engine
    term; the condition is the transition's description where it has one."""
    condition = words.condition_short(transition.description, transition.guard, form)
    if transition.trigger == "on":
        kind, event = "event", words.event_label(_text(transition.event))
    elif transition.trigger == "after":
        kind, event = "after", f"after {words.duration_words(transition.delay)}"
        if not transition.guard:
            condition = ""  # the delay is the condition; its description is the tooltip's
    elif transition.trigger == "always":
        kind = "always"
        event = "" if condition else ("otherwise" if transition.position else "next")
    else:
        kind, event = _AUTOMATIC_WORDS[transition.trigger]
    spans = [_Span(event, "sd-ev" if kind == "event" else "sd-ev-auto")] if event else []
    condition = _text(condition)
    if condition:
        spans.append(_Span(f" ({condition})" if event else condition, "sd-guard"))
    sentence = words.condition_sentence(transition.description, transition.guard, form)
    tooltip = (event or "Automatically") + (f": {_text(sentence)}" if sentence else "")
    return _Label(spans, tooltip, kind, lines=_wrap(spans))


def _wrap(spans: list[_Span]) -> list[list[_Span]]:
    """A reader's label on lines of at most MAX_LABEL_CHARS, cut between words (at most
    MAX_LABEL_LINES, the last one shortened)."""
    lines: list[list[_Span]] = [[]]
    used = 0
    for span in spans:
        for index, word in enumerate(span.text.split(" ")):
            piece = word if index == 0 else " " + word
            if used and used + len(piece) > MAX_LABEL_CHARS:
                lines.append([])
                piece, used = word, 0
            if lines[-1] and lines[-1][-1].cls == span.cls:
                lines[-1][-1] = _Span(lines[-1][-1].text + piece, span.cls)
            elif piece:
                lines[-1].append(_Span(piece, span.cls))
            used += len(piece)
    lines = [line for line in lines if line]
    if len(lines) > MAX_LABEL_LINES:
        lines = lines[:MAX_LABEL_LINES]
        last = lines[-1][-1]
        lines[-1][-1] = _Span(last.text.rstrip(" ,") + ELLIPSIS, last.cls)
    return [_shorten_spans(line, MAX_LABEL_CHARS + 1) for line in lines]


def _humanize(name: str) -> str:
    words = name.replace("_", " ").replace("-", " ").strip()
    return words[:1].upper() + words[1:] if words else name


def _task_line(node: Mapping[str, Any], wording: _Wording) -> str:
    """Who works on a state's task and how fast, e.g. 'manager + security \u00b7 P3D'
    ('Manager + Security \u00b7 3 days' for the reader)."""
    if wording.reader:
        return _reader_task_line(node)
    task = task_of(node)
    if task is not None:
        rule, quorum = task_rule(task)
        who = ["requester"] if task.get("requester") else []
        roles = task.get("roles")
        if isinstance(roles, list):
            who.extend(_text(r) for r in roles)
        parts = [(" + " if rule == "all" else " / ").join(who)] if who else []
        if rule == "all" and len(who) == 1:
            parts.append("all")
        elif rule == "quorum":
            parts.append(f"quorum {quorum}")
        elif rule == "everyone":
            parts.append("everyone")
        if task.get("sla"):
            parts.append(_text(task["sla"]))
        return f" {DOT} ".join(p for p in parts if p)
    invoke = invoke_of(node)
    subflow = subflow_of(invoke)
    if subflow is not None:
        return f"sub-workflow {_text(str(subflow))}"
    if invoke is not None and invoke.get("src"):
        return f"invoke {_text(invoke['src'])}"
    return ""


def _reader_task_line(node: Mapping[str, Any]) -> str:
    task = task_of(node)
    if task is not None:
        rule, quorum = task_rule(task)
        who = ["Requester"] if task.get("requester") else []
        roles = task.get("roles")
        if isinstance(roles, list):
            who.extend(words.role_label(_text(r)) for r in roles)
        joined = (" + " if rule == "all" else " or ").join(who)
        if rule == "quorum" and joined:
            joined = f"{quorum} of {joined}"
        elif rule == "everyone" and joined:
            joined = f"Everyone in {joined}"
        parts = [joined]
        if task.get("sla"):
            parts.append(words.duration_words(task["sla"]))
        return f" {DOT} ".join(p for p in parts if p)
    subflow = subflow_of(invoke_of(node))
    if subflow is not None:
        return f"Sub-request: {_text(subflow.key)}"
    if invoke_of(node) is not None:
        return "automatic step"
    return ""


def _make_node(state: ConfigState, wording: _Wording) -> _Node:
    name, config, kind = _text(state.name), state.node, state.type
    meta = meta_of(config)
    title = _text(meta.get("label") or "") or _humanize(name)
    tip = [name if title == name else f"{title} ({name})"]
    if config.get("description"):
        tip.append(_text(config["description"]))
    task = task_of(config)
    if task is not None and task.get("label"):
        tip.append(f"Task: {_text(task['label'])}")
    if kind == "final" and meta.get("outcome"):
        tip.append(f"Outcome: {_text(meta['outcome'])}")
    node = _Node(
        name=name,
        path=state.path,
        config=config,
        kind=kind,
        title=_shorten(title, MAX_NAME_CHARS),
        subtitle=_shorten(_task_line(config, wording), MAX_SUB_CHARS),
        tooltip="\n".join(tip),
    )
    children = child_states(config, state.path)
    if kind in ("parallel", "compound") and children:
        _build_container(node, children, wording)
    else:
        text_w = max(
            _text_width(node.title, NAME_SIZE, bold=True), _text_width(node.subtitle, SUB_SIZE)
        )
        node.w = max(NODE_MIN_W, round(text_w + 2 * NODE_PAD_X))
        node.h = NODE_H_SUB if node.subtitle else NODE_H
    return node


def _build_container(node: _Node, children: list[ConfigState], wording: _Wording) -> None:
    if node.kind == "parallel":
        for region in children:
            level = _build_level(
                child_states(region.node, region.path), region.node.get("initial"), wording
            )
            caption = _shorten(_humanize(_text(region.name)), MAX_NAME_CHARS)
            node.regions.append(_Region(region.path, caption, level))
    else:
        # A compound state outside a parallel one is not in the format; drawn as one region.
        level = _build_level(children, node.config.get("initial"), wording)
        node.regions.append(_Region(node.path, "", level))

    for region in node.regions:
        caption_w = _text_width(region.caption, CAPTION_SIZE, bold=True)
        region.w = max(region.level.width, caption_w) + 2 * REGION_PAD
    node.kind_text = "at the same time" if wording.reader else node.kind
    head_w = _text_width(node.title, HEAD_SIZE, bold=True) + _text_width(
        f" {node.kind_text}", SUB_SIZE
    )
    total = sum(r.w for r in node.regions)
    spare = head_w + 2 * NODE_PAD_X - total
    if spare > 0:
        for region in node.regions:
            region.w += spare / len(node.regions)
    x = 0.0
    for region in node.regions:
        region.x = x
        x += region.w
    node.w = x
    has_captions = any(r.caption for r in node.regions)
    node.h = (
        HEADER_H
        + (CAPTION_H if has_captions else 0)
        + max(r.level.height for r in node.regions)
        + REGION_PAD
    )


def _build_level(states: list[ConfigState], initial: Any, wording: _Wording) -> _Level:
    nodes = [_make_node(state, wording) for state in states]
    by_name = {node.name: node for node in nodes}
    edges: dict[tuple[str, str], _Edge] = {}
    for node in nodes:
        for transition in transitions_of(node.config):
            label = _make_label(transition, wording)
            target = _text(transition.target) if transition.target else None
            if target is None or target == node.name:
                node.loop.append(label)
            elif target in by_name:
                key = (node.name, target)
                if key not in edges:
                    edges[key] = _Edge(node, by_name[target], [])
                edges[key].labels.append(label)
            # Any other target is outside this level, which validation rules out: not drawn.
    for edge in edges.values():
        edge.lines = _label_lines(edge.labels)
        note = wording.notes.get((edge.source.path, edge.target.path))
        if note:
            edge.lines.append([_Span(_text(note), "sd-note")])
    for node in nodes:
        if node.loop:
            node.loop_lines = _label_lines(node.loop)
            node.right = LOOP_W + 6 + max(_spans_width(line) for line in node.loop_lines)
    level = _Level(nodes, list(edges.values()), by_name.get(_text(initial)) if initial else None)
    _layout(level)
    return level


def _label_lines(labels: Sequence[_Label]) -> list[list[_Span]]:
    """Labels packed into at most a few lines, short ones sharing a line."""
    lines: list[list[_Span]] = []
    length = 0
    for label in labels:
        if label.lines is not None and len(label.lines) > 1:
            lines.extend(label.lines)
            length = MAX_LABEL_CHARS
            continue
        spans = _shorten_spans(label.spans, MAX_LABEL_CHARS)
        chars = sum(len(s.text) for s in spans)
        if lines and length + 2 + chars <= MAX_LABEL_CHARS:
            lines[-1].append(_Span(", ", "sd-sep"))
            lines[-1].extend(spans)
            length += 2 + chars
        else:
            lines.append(list(spans))
            length = chars
    if len(lines) > MAX_LABEL_LINES:
        hidden = len(lines) - MAX_LABEL_LINES + 1
        lines = [*lines[: MAX_LABEL_LINES - 1], [_Span(f"+{hidden} more", "sd-ev-auto")]]
    return lines


def _shorten_spans(spans: Sequence[_Span], limit: int) -> list[_Span]:
    result: list[_Span] = []
    used = 0
    for span in spans:
        room = limit - used
        if len(span.text) <= room:
            result.append(span)
            used += len(span.text)
            continue
        if span.cls == "sd-guard" and room >= 6:
            # Keep the closing bracket, so a cut guard still reads as a guard.
            result.append(_Span(span.text[: room - 2].rstrip() + ELLIPSIS + "]", span.cls))
        elif room >= 2:
            result.append(_Span(span.text[: room - 1].rstrip() + ELLIPSIS, span.cls))
        break
    return result


# ---------------------------------------------------------------------------------------
# Layout of one level


def _layout(level: _Level) -> None:
    if not level.nodes:
        return
    _find_back_edges(level)
    _assign_ranks(level)
    _make_slots(level)
    _order_rows(level.rows)
    _place_rows(level.rows)
    _place_vertically(level)
    _route(level)


def _find_back_edges(level: _Level) -> None:
    """Mark the edges closing a cycle, found depth-first from the initial state."""
    out: dict[str, list[_Edge]] = {node.name: [] for node in level.nodes}
    for edge in level.edges:
        out[edge.source.name].append(edge)
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    roots = ([level.initial] if level.initial else []) + level.nodes
    for root in roots:
        if root.name in state:
            continue
        # Iterative, so a long chain of states cannot hit the recursion limit.
        stack: list[tuple[_Node, int]] = [(root, 0)]
        state[root.name] = 1
        while stack:
            node, index = stack[-1]
            edges = out[node.name]
            if index == len(edges):
                state[node.name] = 2
                stack.pop()
                continue
            stack[-1] = (node, index + 1)
            edge = edges[index]
            seen = state.get(edge.target.name)
            if seen == 1 or edge.target is level.initial:
                edge.back = True
            elif seen is None:
                state[edge.target.name] = 1
                stack.append((edge.target, 0))


def _assign_ranks(level: _Level) -> None:
    """Longest path from the sources of the acyclic graph (back edges turned around)."""
    preds: dict[str, list[_Node]] = {node.name: [] for node in level.nodes}
    succs: dict[str, list[_Node]] = {node.name: [] for node in level.nodes}
    for edge in level.edges:
        preds[edge.lower.name].append(edge.upper)
        succs[edge.upper.name].append(edge.lower)
    waiting = {name: len(p) for name, p in preds.items()}
    ready = [node for node in level.nodes if not waiting[node.name]]
    done: set[str] = set()
    while ready:
        node = ready.pop(0)
        done.add(node.name)
        node.rank = max((p.rank + 1 for p in preds[node.name]), default=0)
        for succ in succs[node.name]:
            waiting[succ.name] -= 1
            if not waiting[succ.name]:
                ready.append(succ)
    # Only reachable if the back-edge search missed a cycle; ranks stay usable anyway.
    for node in level.nodes:
        if node.name not in done:
            node.rank = max((p.rank + 1 for p in preds[node.name] if p.name in done), default=0)


def _make_slots(level: _Level) -> None:
    """Rows of slots: states on even rows, edge labels and passing edges on odd ones."""
    top = max(node.rank for node in level.nodes)
    level.rows = [[] for _ in range(2 * top + 1)]
    seq = 0

    def add(slot: _Slot) -> _Slot:
        nonlocal seq
        slot.seq = seq
        seq += 1
        level.rows[slot.rank].append(slot)
        return slot

    for node in sorted(level.nodes, key=lambda n: n.rank):
        height = max(node.h, len(node.loop_lines) * LABEL_LINE_H + 2)
        node.slot = add(
            _Slot(2 * node.rank, 0, node.w / 2, node.w / 2 + node.right, height, node=node)
        )
    for edge in level.edges:
        upper, lower = edge.upper.slot, edge.lower.slot
        assert upper is not None and lower is not None
        chain = [upper]
        # The label sits in the row next to the state the edge leaves, so it reads with it.
        label_rank = lower.rank - 1 if edge.back else upper.rank + 1
        for rank in range(upper.rank + 1, lower.rank):
            if rank == label_rank:
                width = max(_spans_width(line) for line in edge.lines) + 2 * LABEL_PAD_X
                height = len(edge.lines) * LABEL_LINE_H + 2
                slot = add(_Slot(rank, 0, width / 2, width / 2, height, edge=edge))
                edge.label_slot = slot
            else:
                slot = add(_Slot(rank, 0, SLOT_HALF, SLOT_HALF, edge=edge))
            chain.append(slot)
        chain.append(lower)
        for a, b in itertools.pairwise(chain):
            a.downs.append(b)
            b.ups.append(a)
        edge.chain = chain


def _order_rows(rows: list[list[_Slot]]) -> None:
    """Barycenter sweeps and adjacent swaps; the order with the fewest crossings wins."""
    for rank, row in enumerate(rows):
        if rank:
            row.sort(key=lambda s: (_mean([u.pos for u in s.ups], s.seq), s.seq))
        _renumber(row)
    best = [list(row) for row in rows]
    best_crossings = _crossings(rows)
    for sweep in range(ORDER_SWEEPS):
        if not best_crossings:
            break
        down = sweep % 2 == 0
        ranks = range(1, len(rows)) if down else range(len(rows) - 2, -1, -1)
        for rank in ranks:
            row = rows[rank]
            row.sort(
                key=lambda s: (_mean([n.pos for n in (s.ups if down else s.downs)], s.pos), s.pos)
            )
            _renumber(row)
        _transpose(rows)
        count = _crossings(rows)
        if count < best_crossings:
            best, best_crossings = [list(row) for row in rows], count
    for rank, row in enumerate(best):
        rows[rank] = row
        _renumber(row)


def _renumber(row: list[_Slot]) -> None:
    for pos, slot in enumerate(row):
        slot.pos = pos


def _crossings_below(row: Sequence[_Slot]) -> int:
    segments = [(a.pos, b.pos) for a in row for b in a.downs]
    count = 0
    for i, (a1, b1) in enumerate(segments):
        for a2, b2 in segments[i + 1 :]:
            if (a1 - a2) * (b1 - b2) < 0:
                count += 1
    return count


def _crossings(rows: Sequence[Sequence[_Slot]]) -> int:
    return sum(_crossings_below(row) for row in rows)


def _transpose(rows: list[list[_Slot]]) -> None:
    """Swap neighbours in a row while that removes crossings."""
    for _ in range(4):
        improved = False
        for row in rows:
            for i in range(len(row) - 1):
                u, v = row[i], row[i + 1]
                if _pair_crossings(v, u) < _pair_crossings(u, v):
                    row[i], row[i + 1] = v, u
                    u.pos, v.pos = i + 1, i
                    improved = True
        if not improved:
            return


def _pair_crossings(left: _Slot, right: _Slot) -> int:
    """Crossings between the edges of two slots of a row, with `left` left of `right`."""
    count = 0
    for mine, theirs in ((left.ups, right.ups), (left.downs, right.downs)):
        for a in mine:
            for b in theirs:
                if a.pos > b.pos:
                    count += 1
    return count


def _gap(a: _Slot, b: _Slot) -> float:
    return NODE_GAP if a.node and b.node else SLOT_GAP


def _place_rows(rows: list[list[_Slot]]) -> None:
    """x of every slot: pulled toward its neighbours, sweeping down and up a few times."""
    for row in rows:
        x = 0.0
        for i, slot in enumerate(row):
            x += slot.left + (_gap(row[i - 1], slot) if i else 0)
            slot.x = x
            x += slot.right
    for sweep in range(PLACE_SWEEPS + 1):
        last = sweep == PLACE_SWEEPS
        down = sweep % 2 == 0
        ranks = range(1, len(rows)) if down else range(len(rows) - 2, -1, -1)
        for rank in range(len(rows)) if last else ranks:
            row = rows[rank]
            desired, weights = [], []
            for slot in row:
                neighbours = (slot.ups + slot.downs) if last else slot.ups if down else slot.downs
                desired.append(_mean([n.x for n in neighbours], slot.x))
                # Edges passing through weigh more: long edges come out straight and the
                # states make room instead.
                weight = 1.0 if slot.node else 2.0
                weights.append(weight if neighbours else 0.05)
            xs = _pack(
                desired,
                weights,
                [s.left for s in row],
                [s.right for s in row],
                [_gap(a, b) for a, b in itertools.pairwise(row)],
            )
            for slot, x in zip(row, xs, strict=True):
                slot.x = x
    _straighten(rows)
    shift = min((s.x - s.left for row in rows for s in row), default=0.0)
    for row in rows:
        for slot in row:
            slot.x -= shift


def _straighten(rows: list[list[_Slot]]) -> None:
    """Line up the slots of each long edge where the rows leave room: a straight run reads
    better than the small bends the pulling leaves. The whole run if possible, else the
    parts above and below its label."""
    for edge in dict.fromkeys(s.edge for row in rows for s in row if s.edge is not None):
        inner = edge.chain[1:-1]
        if len(inner) < 2 or _line_up(rows, edge.chain, 1, len(inner)):
            continue
        cut = inner.index(edge.label_slot) + 1 if edge.label_slot in inner else 0
        if cut:
            _line_up(rows, edge.chain, 1, cut - 1)
            _line_up(rows, edge.chain, cut + 1, len(inner))


def _line_up(rows: list[list[_Slot]], chain: Sequence[_Slot], first: int, last: int) -> bool:
    """Give chain[first..last] one x, the one with the fewest bends at the ends that fits."""
    if last - first < 1:
        return False
    run = chain[first : last + 1]
    before, after = chain[first - 1], chain[last + 1]

    def reach(slot: _Slot) -> tuple[float, float]:
        # A box can be met anywhere along its side; anything else only where it is.
        if slot.node is None:
            return slot.x, slot.x
        half = max(slot.node.w / 2 - PORT_INSET, 0.0)
        return slot.x - half, slot.x + half

    def bend(x: float, slot: _Slot) -> float:
        low, high = reach(slot)
        return max(low - x, 0.0, x - high)

    candidates = {s.x for s in run}
    for end in (before, after):
        candidates.update(min(max(s.x, reach(end)[0]), reach(end)[1]) for s in run)
    ranked = sorted(
        candidates,
        key=lambda x: (bend(x, before) + bend(x, after) + 0.1 * sum(abs(s.x - x) for s in run), x),
    )
    for x in ranked:
        if all(_fits(rows[s.rank], s, x) for s in run):
            for slot in run:
                slot.x = x
            return True
    return False


def _fits(row: Sequence[_Slot], slot: _Slot, x: float) -> bool:
    if slot.pos and x - slot.left < (left := row[slot.pos - 1]).x + left.right + _gap(left, slot):
        return False
    if slot.pos + 1 < len(row):
        right = row[slot.pos + 1]
        return x + slot.right + _gap(slot, right) <= right.x - right.left
    return True


def _pack(
    desired: Sequence[float],
    weights: Sequence[float],
    lefts: Sequence[float],
    rights: Sequence[float],
    gaps: Sequence[float],
) -> list[float]:
    """Positions in the given order, each at least its gap from the previous one, as close
    as possible (weighted least squares) to the desired ones.

    Subtracting each item's minimum offset from the first turns the gaps into plain
    "not smaller than the previous" constraints, which pool-adjacent-violators solves
    exactly in one pass.
    """
    offsets = [0.0]
    for i in range(1, len(desired)):
        offsets.append(offsets[-1] + rights[i - 1] + gaps[i - 1] + lefts[i])
    blocks: list[list[float]] = []  # [total weight, weighted sum, count]
    for i, want in enumerate(desired):
        blocks.append([weights[i], weights[i] * (want - offsets[i]), 1])
        while len(blocks) > 1 and blocks[-2][1] / blocks[-2][0] > blocks[-1][1] / blocks[-1][0]:
            weight, total, count = blocks.pop()
            blocks[-1][0] += weight
            blocks[-1][1] += total
            blocks[-1][2] += count
    result: list[float] = []
    for weight, total, count in blocks:
        for _ in range(int(count)):
            result.append(total / weight + offsets[len(result)])
    return result


def _place_vertically(level: _Level) -> None:
    y = INITIAL_PAD if level.initial and level.initial.rank == 0 else 0.0
    for rank, row in enumerate(level.rows):
        height = max((s.height for s in row), default=0.0)
        if rank % 2:
            height = max(height, EMPTY_LABEL_ROW)
        level.row_top.append(y)
        level.row_bottom.append(y + height)
        y += height + RANK_GAP
    level.height = y - RANK_GAP
    level.width = max(s.x + s.right for row in level.rows for s in row)
    for node in level.nodes:
        assert node.slot is not None
        node.x = node.slot.x
        node.y = (level.row_top[node.slot.rank] + level.row_bottom[node.slot.rank]) / 2


def _ports(node: _Node, edges: Sequence[_Edge], bottom: bool) -> dict[_Edge, float]:
    """Where edges meet a side of a box: above or below where they go next, kept apart."""
    inset = min(PORT_INSET, node.w / 4)
    low, high = node.x - node.w / 2 + inset, node.x + node.w / 2 - inset

    def toward(edge: _Edge) -> float:
        chain = edge.chain
        neighbour = chain[1] if bottom else chain[-2]
        return neighbour.x

    ordered = sorted(edges, key=lambda e: (toward(e), e.chain[0].seq, e.chain[-1].seq))
    desired = [min(max(toward(e), low), high) for e in ordered]
    n = len(ordered)
    xs = _pack(desired, [1.0] * n, [0.0] * n, [0.0] * n, [PORT_SPACING] * max(n - 1, 0))
    # Too many edges for the side: spread them evenly instead.
    if xs and (xs[0] < low - 0.5 or xs[-1] > high + 0.5):
        step = (high - low) / (n - 1) if n > 1 else 0.0
        xs = [low + i * step for i in range(n)] if n > 1 else [node.x]
    return dict(zip(ordered, xs, strict=True))


def _side(level: _Level, node: _Node, neighbour: _Slot) -> int:
    """Which side of the box a back edge should use: 1 right, -1 left, 0 top or bottom.

    A loop whose next slot is beyond the box comes in from the side, which sets it apart
    from the forward edges and keeps it off the box's edge; only if nothing else in the
    row is in the way.
    """
    assert node.slot is not None
    row, pos = level.rows[node.slot.rank], node.slot.pos
    if neighbour.x - neighbour.left > node.x + node.w / 2 and not node.loop:
        after = row[pos + 1] if pos + 1 < len(row) else None
        if after is None or after.x - after.left > neighbour.x + neighbour.right:
            return 1
    if neighbour.x + neighbour.right < node.x - node.w / 2:
        before = row[pos - 1] if pos else None
        if before is None or before.x + before.right < neighbour.x - neighbour.left:
            return -1
    return 0


def _route(level: _Level) -> None:
    """The points of every edge, from where it leaves a box to where it enters one."""
    for edge in level.edges:
        if edge.back:
            edge.sides = (_side(level, edge.upper, edge.chain[1]), 0)
            edge.sides = (edge.sides[0], _side(level, edge.lower, edge.chain[-2]))
    ports: dict[tuple[_Edge, bool], float] = {}
    for node in level.nodes:
        for bottom in (True, False):
            attached = [
                e
                for e in level.edges
                if (e.upper if bottom else e.lower) is node and not e.sides[0 if bottom else 1]
            ]
            for edge, x in _ports(node, attached, bottom).items():
                ports[edge, bottom] = x

    for edge in level.edges:
        upper, lower = edge.upper, edge.lower
        top_side, bottom_side = edge.sides
        if top_side:
            points = [(upper.x + top_side * upper.w / 2, upper.y)]
        else:
            points = [(ports[edge, True], upper.y + upper.h / 2)]
        for slot in edge.chain[1:-1]:
            top, bottom = level.row_top[slot.rank], level.row_bottom[slot.rank]
            if slot is edge.label_slot:
                # Bends may run into the label row: the label's background hides the join.
                points.append((slot.x, (top + bottom) / 2))
            else:
                points.append((slot.x, top))
                points.append((slot.x, bottom))
        if bottom_side:
            points.append((lower.x + bottom_side * lower.w / 2, lower.y))
        else:
            points.append((ports[edge, False], lower.y - lower.h / 2))
        edge.points = points[::-1] if edge.back else points
        slot = edge.label_slot
        if slot is not None:
            edge.label_at = (slot.x, (level.row_top[slot.rank] + level.row_bottom[slot.rank]) / 2)


# ---------------------------------------------------------------------------------------
# Drawing


def _draw_level(level: _Level, ox: float, oy: float, marks: _Marks, out: list[str]) -> None:
    for node in level.nodes:
        if node.regions:
            _draw_container(node, ox, oy, marks, out)
    for edge in level.edges:
        _draw_edge(edge, ox, oy, out)
    for node in level.nodes:
        if node.loop:
            _draw_loop(node, ox, oy, out)
        if not node.regions:
            _draw_state(node, ox, oy, marks, out)
    if level.initial:
        node = level.initial
        x, top = ox + node.x, oy + node.y - node.h / 2
        out.append(
            f'<g class="sd-initial"><circle cx="{_n(x)}" cy="{_n(top - 20)}" r="4.5"'
            f' fill="{C_TEXT}"/>'
            f'<path d="M{_n(x)} {_n(top - 15)}V{_n(top - ARROW_L)}" stroke="{C_TEXT}"'
            f' stroke-width="1.4" fill="none"/>'
            f"{_arrow(x, top, 0, 1, C_TEXT)}</g>"
        )


def _state_colours(node: _Node, status: str) -> tuple[str, str, str, str]:
    """(fill, border, text, subtitle) of a state box."""
    if status == "active":
        return C_ACCENT, C_ACCENT_STRONG, C_ACCENT_TEXT, C_ACCENT_SUB
    if status == "visited":
        return C_VISITED, C_VISITED_BORDER, C_TEXT, C_MUTED
    outcome = meta_of(node.config).get("outcome")
    if node.kind == "final" and outcome in OUTCOME_COLOURS:
        fill, border = OUTCOME_COLOURS[outcome]
        return fill, border, C_TEXT, C_MUTED
    return C_SURFACE, C_BORDER, C_TEXT, C_MUTED


def _classes(node: _Node, status: str, base: str) -> str:
    classes = [base]
    if node.kind in ("final", "parallel"):
        classes.append(f"sd-{node.kind}")
    if node.kind == "final":
        outcome = meta_of(node.config).get("outcome")
        if isinstance(outcome, str) and re.fullmatch(r"[a-z_]+", outcome):
            classes.append(f"sd-outcome-{outcome}")
    if task_of(node.config) is not None:
        classes.append("sd-task")
    if invoke_of(node.config) is not None:
        classes.append("sd-invoke")
    if subflow_of(invoke_of(node.config)) is not None:
        classes.append("sd-subflow")
    if status:
        classes.append(f"sd-{status}")
    return " ".join(classes)


def _draw_state(node: _Node, ox: float, oy: float, marks: _Marks, out: list[str]) -> None:
    status = marks.status(node.path)
    fill, border, text, sub = _state_colours(node, status)
    x, y = ox + node.x - node.w / 2, oy + node.y - node.h / 2
    width = 1.6 if status == "active" else 1.2
    out.append(
        f'<g class="{_classes(node, status, "sd-state")}" data-state="{_esc(node.path)}">'
        f"<title>{_esc(node.tooltip)}</title>"
        f'<rect class="sd-box" x="{_n(x)}" y="{_n(y)}" width="{_n(node.w)}"'
        f' height="{_n(node.h)}" rx="{_n(NODE_RADIUS)}" fill="{fill}" stroke="{border}"'
        f' stroke-width="{width}"/>'
    )
    if node.kind == "final":
        out.append(
            f'<rect class="sd-box-inner" x="{_n(x + 3)}" y="{_n(y + 3)}"'
            f' width="{_n(node.w - 6)}" height="{_n(node.h - 6)}" rx="{_n(NODE_RADIUS - 3)}"'
            f' fill="none" stroke="{border}" stroke-width="1"/>'
        )
    cx = ox + node.x
    if subflow_of(invoke_of(node.config)) is not None:
        # BPMN's call activity: a boxed plus at the bottom of the step.
        mx, my, half = cx, y + node.h, 5.0
        out.append(
            f'<g class="sd-subflow-marker"><rect x="{_n(mx - half)}" y="{_n(my - 2 * half)}"'
            f' width="{_n(2 * half)}" height="{_n(2 * half)}" fill="{fill}" stroke="{border}"'
            f' stroke-width="1"/><path d="M{_n(mx - 3)} {_n(my - half)}h6M{_n(mx)} '
            f'{_n(my - half - 3)}v6" stroke="{text}" stroke-width="1.2"/></g>'
        )
    if node.subtitle:
        name_y, sub_y = oy + node.y - 3, oy + node.y + 11
    else:
        name_y, sub_y = oy + node.y + 4.2, 0.0
    out.append(
        f'<text class="sd-name" x="{_n(cx)}" y="{_n(name_y)}" text-anchor="middle"'
        f' font-size="{_n(NAME_SIZE)}" font-weight="600" fill="{text}">{_esc(node.title)}</text>'
    )
    if node.subtitle:
        out.append(
            f'<text class="sd-sub" x="{_n(cx)}" y="{_n(sub_y)}" text-anchor="middle"'
            f' font-size="{_n(SUB_SIZE)}" fill="{sub}">{_esc(node.subtitle)}</text>'
        )
    out.append("</g>")


def _draw_container(node: _Node, ox: float, oy: float, marks: _Marks, out: list[str]) -> None:
    status = marks.status(node.path, container=True)
    x, y = ox + node.x - node.w / 2, oy + node.y - node.h / 2
    border = (
        C_ACCENT if status == "active" else C_VISITED_BORDER if status == "visited" else C_BORDER
    )
    out.append(
        f'<g class="{_classes(node, status, "sd-container")}" data-state="{_esc(node.path)}">'
        f"<title>{_esc(node.tooltip)}</title>"
        f'<rect class="sd-box" x="{_n(x)}" y="{_n(y)}" width="{_n(node.w)}"'
        f' height="{_n(node.h)}" rx="10" fill="{C_CONTAINER}" stroke="{border}"'
        f' stroke-width="{1.6 if status == "active" else 1.2}"/>'
        f'<text class="sd-name" x="{_n(x + NODE_PAD_X)}" y="{_n(y + 19)}"'
        f' font-size="{_n(HEAD_SIZE)}" font-weight="600" fill="{C_TEXT}">{_esc(node.title)}'
        f'<tspan class="sd-kind" font-size="{_n(SUB_SIZE)}" font-weight="400"'
        f' fill="{C_MUTED}"> {_esc(node.kind_text)}</tspan></text>'
        f'<path class="sd-rule" d="M{_n(x)} {_n(y + HEADER_H)}H{_n(x + node.w)}"'
        f' stroke="{C_BORDER}" stroke-width="1" fill="none"/>'
    )
    body = y + HEADER_H
    for index, region in enumerate(node.regions):
        rx = x + region.x
        region_status = marks.status(region.path, container=True)
        cls = "sd-region" + (f" sd-{region_status}" if region_status else "")
        out.append(f'<g class="{cls}" data-state="{_esc(region.path)}">')
        if index:
            out.append(
                f'<path class="sd-divider" d="M{_n(rx)} {_n(body + 6)}V{_n(y + node.h - 6)}"'
                f' stroke="{C_BORDER}" stroke-width="1" stroke-dasharray="5 4" fill="none"/>'
            )
        top = body
        if region.caption:
            out.append(
                f'<text class="sd-caption" x="{_n(rx + REGION_PAD)}" y="{_n(body + 16)}"'
                f' font-size="{_n(CAPTION_SIZE)}" font-weight="600" letter-spacing="0.4"'
                f' fill="{C_MUTED}">{_esc(region.caption)}</text>'
            )
            top += CAPTION_H
        inner_x = rx + (region.w - region.level.width) / 2
        _draw_level(region.level, inner_x, top, marks, out)
        out.append("</g>")
    out.append("</g>")


def _edge_class(edge_labels: Sequence[_Label], back: bool) -> tuple[str, str]:
    """(CSS classes, stroke colour) of an edge or self-loop."""
    kinds = {label.kind for label in edge_labels}
    classes = ["sd-edge"]
    colour = C_EDGE
    if back:
        classes.append("sd-back")
        colour = C_BACK
    if kinds == {"error"}:
        classes.append("sd-error")
        colour = C_ERROR
    elif kinds == {"always"}:
        classes.append("sd-auto")
    elif kinds == {"after"}:
        classes.append("sd-timer")
    return " ".join(classes), colour


def _draw_edge(edge: _Edge, ox: float, oy: float, out: list[str]) -> None:
    cls, colour = _edge_class(edge.labels, edge.back)
    points = [(ox + x, oy + y) for x, y in edge.points]
    tip_x, tip_y = points[-1]
    starts_sideways, ends_sideways = edge.horizontal_ends
    if ends_sideways:
        dx, dy = (1.0 if tip_x > points[-2][0] else -1.0), 0.0
    else:
        dx, dy = 0.0, (1.0 if tip_y > points[-2][1] else -1.0)
    # The line stops at the arrowhead's base, so its end does not poke through the tip.
    points[-1] = (tip_x - dx * (ARROW_L - 1), tip_y - dy * (ARROW_L - 1))
    dash = ""
    if edge.back:
        dash = ' stroke-dasharray="6 4"'
    elif "sd-timer" in cls:
        dash = ' stroke-dasharray="2 3"'
    tooltip = "\n".join(label.tooltip for label in edge.labels)
    path = _curve(points, starts_sideways, ends_sideways)
    out.append(
        f'<g class="{cls}" data-from="{_esc(edge.source.path)}"'
        f' data-to="{_esc(edge.target.path)}"><title>{_esc(tooltip)}</title>'
        f'<path class="sd-line" d="{path}" fill="none" stroke="{colour}"'
        f' stroke-width="1.3"{dash}/>{_arrow(tip_x, tip_y, dx, dy, colour)}'
    )
    if edge.label_at is not None:
        lx, ly = edge.label_at
        text_colour = C_BACK if edge.back else C_ERROR if "sd-error" in cls else C_TEXT
        out.append(_label_svg(edge.lines, ox + lx, oy + ly, text_colour, pill=True))
    out.append("</g>")


def _label_svg(
    lines: Sequence[Sequence[_Span]], x: float, cy: float, colour: str, *, pill: bool
) -> str:
    """An edge label centred on (x, cy) on a background pill, or left-aligned at x."""
    width = max(_spans_width(line) for line in lines) + 2 * LABEL_PAD_X
    height = len(lines) * LABEL_LINE_H + 2
    top = cy - height / 2
    parts = ['<g class="sd-label">']
    if pill:
        parts.append(
            f'<rect class="sd-label-bg" x="{_n(x - width / 2)}" y="{_n(top)}"'
            f' width="{_n(width)}" height="{_n(height)}" rx="4" fill="{C_SURFACE}"'
            f' fill-opacity="0.92"/>'
        )
    anchor = "middle" if pill else "start"
    for index, line in enumerate(lines):
        baseline = top + 1 + LABEL_LINE_H * index + LABEL_LINE_H / 2 + EDGE_SIZE * 0.35
        parts.append(
            f'<text x="{_n(x)}" y="{_n(baseline)}" text-anchor="{anchor}"'
            f' font-size="{_n(EDGE_SIZE)}">'
        )
        for span in line:
            if span.cls == "sd-ev":
                style = f' fill="{colour}" font-weight="600"'
            elif span.cls == "sd-ev-auto":
                style = f' fill="{colour if colour != C_TEXT else C_MUTED}" font-style="italic"'
            else:
                style = f' fill="{C_MUTED}"'
            parts.append(f'<tspan class="{span.cls}"{style}>{_esc(span.text)}</tspan>')
        parts.append("</text>")
    parts.append("</g>")
    return "".join(parts)


def _draw_loop(node: _Node, ox: float, oy: float, out: list[str]) -> None:
    """A transition that stays in its state: a small loop on the right of the box."""
    cls, colour = _edge_class(node.loop, back=False)
    right, cy = ox + node.x + node.w / 2, oy + node.y
    reach = right + LOOP_W
    tip_x, tip_y = right, cy + 7
    dx, dy = tip_x - reach, tip_y - (cy + 22)
    scale = (ARROW_L - 1) / math.hypot(dx, dy)
    tooltip = "\n".join(label.tooltip for label in node.loop)
    out.append(
        f'<g class="{cls} sd-loop" data-from="{_esc(node.path)}" data-to="{_esc(node.path)}">'
        f"<title>{_esc(tooltip)}</title>"
        f'<path class="sd-line" d="M{_n(right)} {_n(cy - 7)}C{_n(reach)} {_n(cy - 22)}'
        f' {_n(reach)} {_n(cy + 22)} {_n(tip_x - dx * scale)} {_n(tip_y - dy * scale)}"'
        f' fill="none" stroke="{colour}" stroke-width="1.3"/>'
        f"{_arrow(tip_x, tip_y, dx, dy, colour)}"
    )
    text_colour = C_ERROR if "sd-error" in cls else C_TEXT
    out.append(_label_svg(node.loop_lines, reach + 6, cy, text_colour, pill=False))
    out.append("</g>")


def _arrow(x: float, y: float, dx: float, dy: float, colour: str) -> str:
    """A filled arrowhead with its tip at (x, y), pointing along (dx, dy)."""
    length = math.hypot(dx, dy) or 1.0
    ux, uy = dx / length, dy / length
    bx, by = x - ux * ARROW_L, y - uy * ARROW_L
    px, py = -uy * ARROW_HW, ux * ARROW_HW
    return (
        f'<path class="sd-arrow" d="M{_n(x)} {_n(y)}L{_n(bx + px)} {_n(by + py)}'
        f'L{_n(bx - px)} {_n(by - py)}Z" fill="{colour}"/>'
    )


def _curve(
    points: Sequence[tuple[float, float]], starts_sideways: bool, ends_sideways: bool
) -> str:
    """A smooth path through the points, vertical at each of them but a sideways end."""
    parts = [f"M{_n(points[0][0])} {_n(points[0][1])}"]
    last = len(points) - 2
    for index, ((x1, y1), (x2, y2)) in enumerate(itertools.pairwise(points)):
        sideways_from = index == 0 and starts_sideways
        sideways_to = index == last and ends_sideways
        if sideways_from or sideways_to:
            # A rounded corner: both control points on the corner of the L it rounds.
            corner = (x2, y1) if sideways_from else (x1, y2)
            c = f"{_n(corner[0])} {_n(corner[1])}"
            parts.append(f"C{c} {c} {_n(x2)} {_n(y2)}")
        elif abs(x1 - x2) < 0.5:
            parts.append(f"V{_n(y2)}")
        else:
            dy = (y2 - y1) / 2
            parts.append(f"C{_n(x1)} {_n(y1 + dy)} {_n(x2)} {_n(y2 - dy)} {_n(x2)} {_n(y2)}")
    return "".join(parts)


# ---------------------------------------------------------------------------------------
# Text


def _text(value: Any) -> str:
    return _XML_INVALID.sub("", str(value))


def _esc(value: str) -> str:
    return html.escape(_text(value), quote=True)


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + ELLIPSIS


def _text_width(text: str, size: float, *, bold: bool = False) -> float:
    em = 0.0
    for ch in text:
        if ch in _NARROW:
            em += 0.3
        elif ch in _SEMI:
            em += 0.38
        elif ch in _WIDE:
            em += 0.92
        elif ch in _SYMBOL:
            em += 0.84
        elif ch.isupper():
            em += 0.7
        elif ch.isdigit():
            em += 0.64
        elif ord(ch) > 0x7F:
            em += 0.85
        else:
            em += 0.6
    return em * size * (1.07 if bold else 1.0)


def _spans_width(spans: Sequence[_Span]) -> float:
    return sum(_text_width(s.text, EDGE_SIZE, bold=s.cls == "sd-ev") for s in spans)


def _mean(values: Sequence[float], default: float) -> float:
    return sum(values) / len(values) if values else default


def _n(value: float) -> str:
    """A coordinate, short and stable: one decimal, no trailing zeros, never '-0'."""
    text = f"{value:.1f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text
