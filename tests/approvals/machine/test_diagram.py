"""The workflow diagram: well-formed, complete, highlighted, escaped, laid out, stable."""

from __future__ import annotations

import copy
import itertools
import xml.etree.ElementTree as ET
from typing import Any

import pytest

from approvals.machine.diagram import render_svg

SVG = "{http://www.w3.org/2000/svg}"

PURCHASE_ORDER: dict[str, Any] = {
    "id": "purchase-order",
    "title": "Purchase order",
    "initial": "submitted",
    "states": {
        "submitted": {
            "description": "Routed by amount.",
            "always": [
                {"target": "finance_review", "guard": "amount < 1000"},
                {"target": "manager_review"},
            ],
        },
        "manager_review": {
            "meta": {"task": {"roles": ["manager"], "rule": "any", "sla": "P2D"}},
            "on": {
                "APPROVE": [
                    {"target": "finance_review", "guard": "amount >= 10000"},
                    {"target": "approved"},
                ],
                "REJECT": "rejected",
                "REQUEST_CHANGES": "changes_requested",
            },
        },
        "finance_review": {
            "meta": {"task": {"roles": ["finance"], "sla": "P2D"}},
            "on": {"APPROVE": "approved", "REJECT": "rejected"},
        },
        "changes_requested": {
            "meta": {"task": {"requester": True}},
            "on": {
                "RESUBMIT": {"target": "manager_review", "assign": {"revisions": "revisions + 1"}},
                "WITHDRAW": "withdrawn",
            },
            "after": {"P30D": {"target": "withdrawn", "description": "Nobody came back."}},
        },
        "approved": {"invoke": {"src": "notify", "onDone": "done", "onError": "done"}},
        "done": {"type": "final", "meta": {"outcome": "completed"}},
        "rejected": {"type": "final", "meta": {"outcome": "rejected"}},
        "withdrawn": {"type": "final", "meta": {"outcome": "cancelled"}},
    },
}

ORDER: dict[str, Any] = {
    "id": "order",
    "title": "Order",
    "initial": "review",
    "states": {
        "review": {
            "meta": {"task": {"roles": ["operator"], "sla": "P1D"}},
            "on": {"APPROVE": "fulfillment", "REJECT": "rejected"},
        },
        "fulfillment": {
            "type": "parallel",
            "states": {
                "inventory": {
                    "type": "compound",
                    "initial": "picking",
                    "states": {
                        "picking": {"on": {"PICKED": "packed"}},
                        "packed": {"type": "final"},
                    },
                },
                "shipping": {
                    "type": "compound",
                    "initial": "label",
                    "states": {
                        "label": {"on": {"LABEL_CREATED": "ready"}},
                        "ready": {"type": "final"},
                    },
                },
            },
            "onDone": "shipped",
            "on": {"CANCEL": "cancelled"},
        },
        "shipped": {"type": "final", "meta": {"outcome": "completed"}},
        "rejected": {"type": "final", "meta": {"outcome": "rejected"}},
        "cancelled": {"type": "final", "meta": {"outcome": "cancelled"}},
    },
}

MINIMAL: dict[str, Any] = {
    "id": "minimal",
    "title": "Minimal",
    "initial": "open",
    "states": {"open": {"on": {"CLOSE": "closed"}}, "closed": {"type": "final"}},
}

ALL_PATHS = {
    "purchase": list(PURCHASE_ORDER["states"]),
    "order": [
        "review",
        "fulfillment",
        "fulfillment.inventory.picking",
        "fulfillment.inventory.packed",
        "fulfillment.shipping.label",
        "fulfillment.shipping.ready",
        "shipped",
        "rejected",
        "cancelled",
    ],
    "minimal": ["open", "closed"],
}
CONFIGS = {"purchase": PURCHASE_ORDER, "order": ORDER, "minimal": MINIMAL}


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def groups(root: ET.Element, cls: str) -> list[ET.Element]:
    return [g for g in root.iter(f"{SVG}g") if cls in g.get("class", "").split()]


def node(root: ET.Element, path: str) -> ET.Element:
    found = [g for g in root.iter(f"{SVG}g") if g.get("data-state") == path]
    assert len(found) == 1, path
    return found[0]


def classes(element: ET.Element) -> set[str]:
    return set(element.get("class", "").split())


def text_of(element: ET.Element) -> str:
    """The visible text: what its <text> elements say, not its tooltips."""
    return "".join("".join(t.itertext()) for t in element.iter(f"{SVG}text"))


def edge(root: ET.Element, source: str, target: str) -> ET.Element:
    found = [
        g
        for g in groups(root, "sd-edge")
        if g.get("data-from") == source and g.get("data-to") == target
    ]
    assert len(found) == 1, (source, target)
    return found[0]


def edge_label(element: ET.Element) -> str:
    return "".join(text_of(g) for g in element.iter(f"{SVG}g") if "sd-label" in classes(g))


@pytest.mark.parametrize("name", CONFIGS)
def test_valid_svg_with_title_and_size(name: str) -> None:
    config = CONFIGS[name]
    root = parse(render_svg(config))
    assert root.tag == f"{SVG}svg"
    assert root.get("role") == "img"
    assert config["title"] in root.get("aria-label", "")
    assert root.find(f"{SVG}title").text == config["title"]
    _, _, width, height = (float(v) for v in root.get("viewBox", "").split())
    assert 0 < width < 2000 and 0 < height < 2000
    # Its natural width; the stylesheet scales it down. No style= attribute: the pages'
    # Content-Security-Policy would refuse it.
    assert float(root.get("width")) == width
    assert root.get("style") is None


@pytest.mark.parametrize("name", CONFIGS)
def test_every_state_is_a_labelled_node(name: str) -> None:
    root = parse(render_svg(CONFIGS[name]))
    drawn = [g.get("data-state") for g in groups(root, "sd-state") + groups(root, "sd-container")]
    assert sorted(drawn) == sorted(ALL_PATHS[name])
    for path in ALL_PATHS[name]:
        names = [t for t in node(root, path).iter(f"{SVG}text") if "sd-name" in classes(t)]
        assert names and text_of(names[0]).strip()
        # The real name is in the tooltip even where the box shows a friendlier one.
        assert path.rsplit(".", 1)[-1] in node(root, path).find(f"{SVG}title").text


def test_labels_task_subtitles_and_final_states() -> None:
    root = parse(render_svg(PURCHASE_ORDER))
    assert text_of(node(root, "manager_review")) == "Manager review" + "manager \u00b7 P2D"
    assert "requester" in text_of(node(root, "changes_requested"))
    assert "invoke notify" in text_of(node(root, "approved"))
    done = node(root, "done")
    assert {"sd-final", "sd-outcome-completed"} <= classes(done)
    assert len(done.findall(f"{SVG}rect")) == 2  # the double border
    assert "sd-final" not in classes(node(root, "approved"))


def test_edges_are_labelled_with_what_triggers_them() -> None:
    root = parse(render_svg(PURCHASE_ORDER))
    assert edge_label(edge(root, "submitted", "finance_review")) == "always [amount < 1000]"
    assert edge_label(edge(root, "submitted", "manager_review")) == "always"
    assert edge_label(edge(root, "manager_review", "finance_review")) == (
        "APPROVE [amount >= 10000]"
    )
    assert edge_label(edge(root, "changes_requested", "withdrawn")) == "WITHDRAW, after P30D"
    # onDone and onError to the same state share one edge.
    assert edge_label(edge(root, "approved", "done")) == "invoke \u2713, invoke \u2717"
    # A transition's description is in the edge's tooltip.
    tooltip = edge(root, "changes_requested", "withdrawn").find(f"{SVG}title").text
    assert "Nobody came back." in tooltip
    for element in groups(root, "sd-edge"):
        assert element.find(f"{SVG}path[@class='sd-arrow']") is not None


def test_initial_state_is_marked() -> None:
    for name, config in CONFIGS.items():
        root = parse(render_svg(config))
        markers = groups(root, "sd-initial")
        # One for the machine, one per region of a parallel state.
        assert len(markers) == (3 if name == "order" else 1)
        assert all(m.find(f"{SVG}circle") is not None for m in markers)


def test_back_edge_is_drawn_apart() -> None:
    root = parse(render_svg(PURCHASE_ORDER))
    resubmit = edge(root, "changes_requested", "manager_review")
    assert "sd-back" in classes(resubmit)
    assert resubmit.find(f"{SVG}path").get("stroke-dasharray")
    assert edge_label(resubmit) == "RESUBMIT"
    assert "assigns revisions" in resubmit.find(f"{SVG}title").text
    assert [g.get("data-from") for g in groups(root, "sd-back")] == ["changes_requested"]


def test_self_loop_for_a_transition_without_target() -> None:
    config = copy.deepcopy(MINIMAL)
    config["states"]["open"]["on"]["NOTE"] = {"assign": {"notes": "notes + 1"}}
    config["states"]["open"]["after"] = {"5000": "open"}
    root = parse(render_svg(config))
    loop = edge(root, "open", "open")
    assert "sd-loop" in classes(loop)
    assert edge_label(loop) == "NOTE, after 5s"


def test_parallel_state_is_a_container_with_regions() -> None:
    root = parse(render_svg(ORDER))
    container = node(root, "fulfillment")
    assert {"sd-container", "sd-parallel"} <= classes(container)
    regions = [g for g in container.iter(f"{SVG}g") if "sd-region" in classes(g)]
    assert [r.get("data-state") for r in regions] == [
        "fulfillment.inventory",
        "fulfillment.shipping",
    ]
    inventory = [g.get("data-state") for g in regions[0].iter(f"{SVG}g") if g.get("data-state")]
    assert inventory == [
        "fulfillment.inventory",
        "fulfillment.inventory.picking",
        "fulfillment.inventory.packed",
    ]
    assert len(container.findall(f".//{SVG}path[@class='sd-divider']")) == 1
    # Edges inside a region join its leaves; the container's own edges leave its border.
    assert edge_label(
        edge(root, "fulfillment.inventory.picking", "fulfillment.inventory.packed")
    ) == ("PICKED")
    assert edge_label(edge(root, "fulfillment", "shipped")) == "done"
    assert edge_label(edge(root, "fulfillment", "cancelled")) == "CANCEL"
    box = container.find(f"{SVG}rect")
    bottom = float(box.get("y")) + float(box.get("height"))
    start = edge(root, "fulfillment", "shipped").find(f"{SVG}path").get("d")
    assert float(start[1:].split()[1].split("C")[0].split("V")[0]) == pytest.approx(bottom)


def test_active_and_visited_states_are_highlighted() -> None:
    root = parse(
        render_svg(PURCHASE_ORDER, active=["manager_review"], visited=["submitted", "rejected"])
    )
    assert "sd-active" in classes(node(root, "manager_review"))
    assert "sd-visited" in classes(node(root, "submitted"))
    assert "sd-visited" in classes(node(root, "rejected"))
    others = set(PURCHASE_ORDER["states"]) - {"manager_review", "submitted", "rejected"}
    for path in others:
        assert not classes(node(root, path)) & {"sd-active", "sd-visited"}
    # Without the stylesheet too: the box is filled with the accent colour.
    assert node(root, "manager_review").find(f"{SVG}rect").get("fill") == "#2f5bea"
    assert "current: Manager review" in root.get("aria-label", "")


def test_highlighting_inside_a_parallel_state() -> None:
    root = parse(
        render_svg(
            ORDER,
            active=["fulfillment", "fulfillment.inventory.picking", "fulfillment.shipping.ready"],
            visited=["review", "fulfillment.shipping.label"],
        )
    )
    assert "sd-active" in classes(node(root, "fulfillment"))
    assert "sd-active" in classes(node(root, "fulfillment.inventory.picking"))
    assert "sd-active" in classes(node(root, "fulfillment.shipping.ready"))
    assert "sd-visited" in classes(node(root, "fulfillment.shipping.label"))
    assert "sd-visited" in classes(node(root, "review"))
    packed = classes(node(root, "fulfillment.inventory.packed"))
    assert not packed & {"sd-active", "sd-visited"}


def test_container_is_highlighted_through_its_states() -> None:
    root = parse(render_svg(ORDER, visited=["fulfillment.inventory.picking"]))
    assert "sd-visited" in classes(node(root, "fulfillment"))
    assert "sd-visited" not in classes(node(root, "review"))


def test_text_from_the_definition_is_escaped() -> None:
    nasty = '<script>alert("x")</script> & co'
    config = copy.deepcopy(PURCHASE_ORDER)
    config["title"] = nasty
    submitted = config["states"]["submitted"]
    submitted["description"] = nasty
    submitted["meta"] = {"label": "A & <b>B</b>"}
    submitted["always"][0]["guard"] = "a < b && c > d"
    submitted["always"][0]["description"] = nasty
    config["states"]["manager_review"]["meta"]["task"]["roles"] = ["<i>boss</i>"]
    svg = render_svg(config, active=["submitted"])
    assert "<script" not in svg and "<b>" not in svg and "<i>" not in svg
    assert "&lt;script&gt;" in svg and "&amp; co" in svg
    root = parse(svg)
    assert root.find(f"{SVG}title").text == nasty
    assert nasty in root.get("aria-label", "")
    assert nasty in node(root, "submitted").find(f"{SVG}title").text
    assert text_of(node(root, "submitted")) == "A & <b>B</b>"
    routed = edge(root, "submitted", "finance_review")
    assert edge_label(routed) == "always [a < b && c > d]"
    assert nasty in routed.find(f"{SVG}title").text
    assert "<i>boss</i>" in text_of(node(root, "manager_review"))


def test_characters_xml_cannot_carry_are_dropped() -> None:
    config = copy.deepcopy(MINIMAL)
    config["title"] = "bell\x07 and nul\x00"
    assert parse(render_svg(config)).find(f"{SVG}title").text == "bell and nul"


def test_long_guard_is_shortened_with_the_full_text_in_the_tooltip() -> None:
    guard = "amount >= 10000 && department != 'research' && vendor.approved == true"
    config = copy.deepcopy(PURCHASE_ORDER)
    config["states"]["manager_review"]["on"]["APPROVE"][0]["guard"] = guard
    root = parse(render_svg(config))
    approve = edge(root, "manager_review", "finance_review")
    label = edge_label(approve)
    assert label.startswith("APPROVE [amount >= 10000") and label.endswith("\u2026]")
    assert len(label) < len(guard)
    assert guard in approve.find(f"{SVG}title").text


def test_output_is_deterministic() -> None:
    for config in CONFIGS.values():
        kwargs: dict[str, Any] = {"active": ["review"], "visited": ["fulfillment"]}
        first = render_svg(config, **kwargs)
        assert render_svg(copy.deepcopy(config), **kwargs) == first
        assert render_svg(config, active=("review",), visited={"fulfillment"}) == first
        assert render_svg(config, active="review", visited="fulfillment") == first


def test_layout_goes_down_from_the_initial_state() -> None:
    root = parse(render_svg(PURCHASE_ORDER))

    def top(path: str) -> float:
        return float(node(root, path).find(f"{SVG}rect").get("y"))

    assert top("submitted") < top("manager_review") < top("changes_requested")
    assert top("manager_review") < top("finance_review") < top("approved") < top("done")


def _boxes(element: ET.Element, owner: str = "") -> list[tuple[str, float, float, float, float]]:
    """Every state box and edge label background, with the path of what it belongs to."""
    if element.get("data-state"):
        owner = element.get("data-state", "")
    elif element.get("data-from"):
        owner = f"{owner}/{element.get('data-from')}->{element.get('data-to')}"
    result = []
    for child in element:
        if child.tag == f"{SVG}rect" and child.get("class") in ("sd-box", "sd-label-bg"):
            size = (float(child.get(k, "")) for k in ("x", "y", "width", "height"))
            result.append((owner, *size))
        else:
            result.extend(_boxes(child, owner))
    return result


@pytest.mark.parametrize("name", CONFIGS)
def test_boxes_and_labels_do_not_overlap(name: str) -> None:
    root = parse(render_svg(CONFIGS[name]))
    _, _, width, height = (float(v) for v in root.get("viewBox", "").split())
    boxes = _boxes(root)
    for owner, x, y, w, h in boxes:
        assert 0 <= x <= x + w <= width, owner
        assert 0 <= y <= y + h <= height, owner
    for (a, ax, ay, aw, ah), (b, bx, by, bw, bh) in itertools.combinations(boxes, 2):
        if b.startswith((a + ".", a + "/")) or a.startswith((b + ".", b + "/")):
            continue  # a state or an edge inside its container
        apart = ax + aw <= bx or bx + bw <= ax or ay + ah <= by or by + bh <= ay
        assert apart, (a, b)


def test_empty_and_odd_configs_still_render() -> None:
    assert parse(render_svg({"id": "x", "title": "Nothing", "states": {}})).tag == f"{SVG}svg"
    odd = {
        "id": "odd",
        "title": "Odd",
        "initial": "a",
        "states": {
            "a": {"on": {"GO": ["b", {"target": "nowhere"}], "BACK": "a"}},
            "b": {"on": {"GO": "c"}},
            "c": {"on": {"GO": "a"}, "always": {"target": "b", "guard": "x"}},
        },
    }
    root = parse(render_svg(odd))
    assert {g.get("data-from") for g in groups(root, "sd-back")} == {"c"}


def _texts(svg: str) -> list[str]:
    root = ET.fromstring(svg)
    return ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]


def test_the_reader_view_says_it_in_words() -> None:
    config = copy.deepcopy(PURCHASE_ORDER)
    config["form"] = {"properties": {"amount": {"type": "number"}}}
    svg = render_svg(config, reader=True)
    texts = _texts(svg)
    assert "Approve (10,000 or more)" in texts
    assert "under 1,000" in texts
    assert "if it fails" in " ".join(texts)
    assert "after 30 days" in " ".join(texts)
    assert "Manager · 2 days" in texts
    joined = " ".join(texts)
    for engine_word in ("invoke", "P30D", "P2D", "APPROVE", "[", "always", "amount >="):
        assert engine_word not in joined, engine_word
    assert 'class="sd-svg sd-reader"' in svg


def test_the_reader_view_uses_a_transitions_description() -> None:
    config = copy.deepcopy(PURCHASE_ORDER)
    config["states"]["manager_review"]["on"]["APPROVE"][0]["description"] = (
        "the amount is 10,000 or more"
    )
    texts = " ".join(_texts(render_svg(config, reader=True)))
    assert "Approve (the amount is 10,000 or more)" in texts


def test_the_technical_view_keeps_guards_and_engine_terms() -> None:
    texts = " ".join(_texts(render_svg(PURCHASE_ORDER)))
    assert "[amount >= 10000]" in texts and "after P30D" in texts and "invoke" in texts


def test_no_text_is_under_11_px_at_the_natural_size() -> None:
    root = ET.fromstring(render_svg(PURCHASE_ORDER, reader=True))
    sizes = [float(t.get("font-size")) for t in root.iter() if t.get("font-size")]
    assert sizes and min(sizes) >= 11


def test_a_step_every_member_approves_says_so_in_both_views() -> None:
    config = {
        "id": "board",
        "initial": "vote",
        "states": {
            "vote": {
                "meta": {"task": {"roles": ["board"], "rule": "everyone"}},
                "on": {"APPROVE": "done"},
            },
            "done": {"type": "final"},
        },
    }
    assert "Everyone in Board" in _texts(render_svg(config, reader=True))
    assert "board · everyone" in _texts(render_svg(config))
