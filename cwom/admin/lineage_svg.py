"""Lineage pictures drawn on the server as SVG: a run's chain, and an issue with its newest runs.

    issue  ->  context packets / constraint snapshot / doctrine refs  ->  run  ->  artifacts

A small layered layout: one column of boxes per layer, left to right; a layer with many boxes (a run's
artifacts) wraps into several columns inside one framed group, so a run with 100 artifacts stays a
picture of bounded height. Every box is a link to its object's admin page, filled by kind and striped by
status; every piece of text is escaped. The same function draws the admin's inline picture and the API's
``GET /runs/{id}/lineage.svg``, from the documents of :mod:`cwom.lineage` (no query of its own).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.urls import reverse
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from ..enums import Kind
from ..humanize import count, duration, usd, utc
from .rendering import admin_url

NODE_WIDTH = 210
NODE_HEIGHT = 44
ROW_GAP = 8
COLUMN_GAP = 56
GROUP_COLUMN_GAP = 12
PAD = 12
HEADER = 22
ROWS_PER_COLUMN = 20  # past this a layer wraps into another column
LABEL_CHARS = 30

# Light fills by kind; the stripe on the left of a box says its status.
KIND_FILL: dict[str, str] = {
    Kind.ISSUE: "#e8f0fe",
    Kind.CONTEXT_PACKET: "#e6f4ea",
    Kind.CONSTRAINT_SNAPSHOT: "#fef7e0",
    Kind.DOCTRINE_REF: "#f3e8fd",
    Kind.RUN: "#eceff1",
    Kind.ARTIFACT: "#e0f7fa",
}
STATE_COLOUR = {
    "done": "#188038",
    "passed": "#188038",
    "sealed": "#188038",
    "failed": "#d93025",
    "running": "#1a73e8",
    "blocked": "#e37400",
    "draft": "#e37400",
    "canceled": "#5f6368",
}
NEUTRAL = "#9aa0a6"
KIND_LABEL: dict[str, str] = {
    Kind.ISSUE: "Issue",
    Kind.CONTEXT_PACKET: "Context packet",
    Kind.CONSTRAINT_SNAPSHOT: "Constraint snapshot",
    Kind.DOCTRINE_REF: "Doctrine ref",
    Kind.RUN: "Run",
    Kind.ARTIFACT: "Artifact",
}


@dataclass
class Node:
    """One object of the picture: a box linked to the object's admin page."""

    kind: str
    object_id: str
    state: str
    text: str
    tooltip: str = ""
    x: float = 0
    y: float = 0


@dataclass
class Layer:
    """A column (or, past ROWS_PER_COLUMN boxes, a framed group of columns) of the picture."""

    title: str
    nodes: list[Node]
    footer: tuple[str, str | None] | None = None  # (text, link) under the layer: "+ more", "all runs"
    framed: bool = False
    x: float = 0
    width: float = 0
    top: float = 0
    height: float = 0


@dataclass
class Edge:
    source: Node | Layer
    target: Node | Layer
    dashed: bool = False


@dataclass
class Picture:
    label: str
    layers: list[Layer] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)


# --- what to draw -------------------------------------------------------------------------------------
def run_picture(bundle: dict[str, Any], standalone: bool = False) -> str:
    """A run's chain from :func:`cwom.lineage.run_bundle` as SVG (``standalone``: a document of its own)."""
    run, issue = bundle["run"], bundle["issue"]
    issue_node = _issue_node(issue["id"], issue["status"], issue["title"])
    roles = {ref["id"]: ref["role"] for ref in run["inputs"]["context_packets"]}
    own_doctrine = {ref["id"] for ref in run["inputs"]["doctrine_refs"]}
    packets = [_packet_node(p["id"], p["version"], p["sealed"], roles.get(p["id"])) for p in bundle["context_packets"]]
    snapshot = bundle["constraint_snapshot"]
    snapshots = [_snapshot_node(snapshot["id"], snapshot["scope"], snapshot["captured_at"])] if snapshot else []
    doctrines = [
        _doctrine_node(d["id"], d["namespace"], d["name"], d["priority"], d["version"]) for d in bundle["doctrine_refs"]
    ]
    telemetry, cost = run["telemetry"], run["cost"]
    facts = [run["mode"]]
    if telemetry["duration_s"] is not None:
        facts.append(duration(telemetry["duration_s"]))
    if cost["usd"] is not None:
        facts.append(usd(cost["usd"]))
    run_node = Node(Kind.RUN, run["id"], run["status"], " · ".join(facts), f"Run {run['id']}")
    artifacts = [
        Node(
            Kind.ARTIFACT,
            a["id"],
            a["verification"]["status"],
            f"{a['type']}: {a['title']}" if a["title"] else a["type"],
            f"{a['type']}: {a['title']} ({a['id']})",
        )
        for a in bundle["artifacts"]
    ]
    inputs = Layer("Inputs", [*packets, *snapshots, *doctrines])
    total = run["outputs"]["artifacts_total"]
    shown = f"newest {len(artifacts)} of {count(total)}" if total > len(artifacts) else count(total)
    artifact_layer = Layer(f"Artifacts ({shown})", artifacts, framed=len(artifacts) > ROWS_PER_COLUMN)
    picture = Picture(
        f"Lineage of run {run['id']}",
        [Layer("Issue", [issue_node]), inputs, Layer("Run", [run_node]), artifact_layer],
    )
    for node in inputs.nodes:
        picture.edges.append(Edge(issue_node, node))
        via_packet = node.kind == Kind.DOCTRINE_REF and node.object_id not in own_doctrine
        picture.edges.append(Edge(node, run_node, dashed=via_packet))
    if not inputs.nodes:
        picture.edges.append(Edge(issue_node, run_node))
    if artifact_layer.framed:
        picture.edges.append(Edge(run_node, artifact_layer))
    else:
        picture.edges += [Edge(run_node, node) for node in artifacts]
    return _draw(picture, standalone)


def issue_picture(overview: dict[str, Any], standalone: bool = False) -> str:
    """An issue, its inputs and its newest runs (oldest of them at the top) from
    :func:`cwom.lineage.issue_overview`, with a link to all its runs."""
    issue = overview["issue"]
    issue_node = _issue_node(issue.pk, issue.status, issue.title)
    packets = [_packet_node(p["id"], p["version"], p["sealed"], p["role"]) for p in overview["context_packets"]]
    snapshots = [_snapshot_node(s["id"], s["scope"], s["captured_at"]) for s in overview["constraint_snapshots"]]
    doctrines = [
        _doctrine_node(d["id"], d["namespace"], d["name"], d["priority"], None) for d in overview["doctrine_refs"]
    ]
    more = [name for name in ("context_packets", "constraint_snapshots", "doctrine_refs") if overview[f"more_{name}"]]
    inputs = Layer(
        "Inputs",
        [*packets, *snapshots, *doctrines],
        footer=(f"+ more {', '.join(name.replace('_', ' ') for name in more)}: see below", None) if more else None,
    )
    runs = []
    for r in reversed(overview["runs"]):
        facts = [utc(r.created_at)[:16].replace("T", " ")]
        if r.duration_s is not None:
            facts.append(duration(r.duration_s))
        facts.append(f"{r.artifact_count} art.")
        runs.append(Node(Kind.RUN, r.pk, r.status, " · ".join(facts), f"Run {r.pk}, created {utc(r.created_at)}"))
    total = overview["run_count"]
    shown = len(runs)
    title = f"Runs, oldest → newest ({shown} of {count(total)})" if total > shown else "Runs, oldest → newest"
    all_runs = reverse("admin:cwom_run_changelist") + f"?for_issue__id__exact={issue.pk}"
    run_layer = Layer(title, runs, footer=(f"all {count(total)} runs →", all_runs) if total else None)
    picture = Picture(f"Lineage of issue {issue.pk}", [Layer("Issue", [issue_node]), inputs, run_layer])
    picture.edges += [Edge(issue_node, node) for node in inputs.nodes]
    if runs:  # what the issue holds feeds its runs; an issue with no inputs leads to them directly
        picture.edges += [Edge(node, run_layer) for node in inputs.nodes] or [Edge(issue_node, run_layer)]
    return _draw(picture, standalone)


def _issue_node(object_id: str, status: str, title: str) -> Node:
    return Node(Kind.ISSUE, object_id, status, title, f"Issue {object_id}: {title}")


def _packet_node(object_id: str, version: str, sealed: bool, role: str | None) -> Node:
    text = f"version {version}" + (f" · {role}" if role else "")
    return Node(Kind.CONTEXT_PACKET, object_id, "sealed" if sealed else "draft", text, f"Context packet {object_id}")


def _snapshot_node(object_id: str, scope: str, captured_at: Any) -> Node:
    text = f"{scope} · {utc(captured_at)[:10]}"
    return Node(Kind.CONSTRAINT_SNAPSHOT, object_id, scope, text, f"Constraint snapshot {object_id}")


def _doctrine_node(object_id: str, namespace: str, name: str, priority: str, version: str | None) -> Node:
    text = f"{namespace}/{name}" + (f"@{version}" if version else "")
    return Node(Kind.DOCTRINE_REF, object_id, priority, text, f"Doctrine ref {object_id}: {text}")


# --- layout and drawing -------------------------------------------------------------------------------
def _layout(picture: Picture) -> tuple[float, float]:
    x = PAD
    tallest = 0
    for layer in picture.layers:
        columns = max(1, -(-len(layer.nodes) // ROWS_PER_COLUMN))
        rows = min(len(layer.nodes), ROWS_PER_COLUMN)
        inner = PAD if layer.framed else 0
        layer.width = columns * NODE_WIDTH + (columns - 1) * GROUP_COLUMN_GAP + 2 * inner
        layer.height = max(rows, 1) * (NODE_HEIGHT + ROW_GAP) - ROW_GAP + 2 * inner + (20 if layer.footer else 0)
        layer.x = x
        x += layer.width + COLUMN_GAP
        tallest = max(tallest, layer.height)
    for layer in picture.layers:
        inner = PAD if layer.framed else 0
        layer.top = PAD + HEADER + (tallest - layer.height) / 2
        for index, node in enumerate(layer.nodes):
            column, row = divmod(index, ROWS_PER_COLUMN)
            node.x = layer.x + inner + column * (NODE_WIDTH + GROUP_COLUMN_GAP)
            node.y = layer.top + inner + row * (NODE_HEIGHT + ROW_GAP)
    return x - COLUMN_GAP + PAD, PAD + HEADER + tallest + PAD


def _anchor(item: Node | Layer, right: bool) -> tuple[float, float]:
    if isinstance(item, Node):
        return (item.x + NODE_WIDTH if right else item.x), item.y + NODE_HEIGHT / 2
    return (item.x + item.width if right else item.x), item.top + (item.height - (20 if item.footer else 0)) / 2


def _clip(text: str, limit: int = LABEL_CHARS) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _draw_node(node: Node) -> str:
    colour = STATE_COLOUR.get(node.state, NEUTRAL)
    url = admin_url(node.kind, node.object_id) or ""
    heading = f"{KIND_LABEL[node.kind]} · {node.state}"
    return (
        f'<a class="lineage-node" href="{escape(url)}" data-kind="{escape(node.kind)}" '
        f'data-id="{escape(node.object_id)}" data-state="{escape(node.state)}">'
        f"<title>{escape(node.tooltip or node.text)}</title>"
        f'<rect x="{node.x:.0f}" y="{node.y:.0f}" width="{NODE_WIDTH}" height="{NODE_HEIGHT}" rx="5" '
        f'fill="{KIND_FILL[node.kind]}" stroke="{colour}"/>'
        f'<rect x="{node.x:.0f}" y="{node.y:.0f}" width="5" height="{NODE_HEIGHT}" rx="2" fill="{colour}"/>'
        f'<text x="{node.x + 12:.0f}" y="{node.y + 17:.0f}" font-weight="600" fill="#202124">'
        f"{escape(_clip(heading))}</text>"
        f'<text x="{node.x + 12:.0f}" y="{node.y + 34:.0f}" fill="#3c4043">{escape(_clip(node.text))}</text>'
        "</a>"
    )


def _draw_edge(edge: Edge) -> str:
    x1, y1 = _anchor(edge.source, right=True)
    x2, y2 = _anchor(edge.target, right=False)
    bend = (x2 - x1) / 2
    dash = ' stroke-dasharray="4 3"' if edge.dashed else ""
    return (
        f'<path d="M{x1:.0f},{y1:.0f} C{x1 + bend:.0f},{y1:.0f} {x2 - bend:.0f},{y2:.0f} {x2:.0f},{y2:.0f}" '
        f'fill="none" stroke="#80868b" stroke-width="1.2"{dash}/>'
    )


def _draw_layer(layer: Layer) -> Iterable[str]:
    yield f'<text x="{layer.x:.0f}" y="{PAD + 13}" font-weight="600" fill="#5f6368">{escape(layer.title)}</text>'
    if layer.framed:
        frame_height = layer.height - (20 if layer.footer else 0)
        yield (
            f'<rect x="{layer.x:.0f}" y="{layer.top:.0f}" width="{layer.width:.0f}" height="{frame_height:.0f}" '
            'rx="8" fill="none" stroke="#bdc1c6" stroke-dasharray="5 4"/>'
        )
    if not layer.nodes:
        yield f'<text x="{layer.x:.0f}" y="{layer.top + NODE_HEIGHT / 2:.0f}" fill="#80868b">none</text>'
    yield from (_draw_node(node) for node in layer.nodes)
    if layer.footer:
        text, url = layer.footer
        y = layer.top + layer.height - 4
        label = f'<text x="{layer.x:.0f}" y="{y:.0f}" fill="#1a73e8">{escape(text)}</text>'
        yield f'<a class="lineage-more" href="{escape(url)}">{label}</a>' if url else label


def _draw(picture: Picture, standalone: bool) -> str:
    width, height = _layout(picture)
    prologue = '<?xml version="1.0" encoding="UTF-8"?>\n' if standalone else ""
    parts = [
        f'{prologue}<svg xmlns="http://www.w3.org/2000/svg" class="cwom-lineage" role="img" '
        f'width="{width:.0f}" height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" '
        'font-family="system-ui, -apple-system, Segoe UI, sans-serif" font-size="12">',
        f"<title>{escape(picture.label)}</title>",
        *(_draw_edge(edge) for edge in picture.edges),
        *(part for layer in picture.layers for part in _draw_layer(layer)),
        "</svg>",
    ]
    return "".join(parts)


def inline(svg: str) -> SafeString:
    """The picture inside the admin page, in a box that scrolls when the picture is wider than it."""
    return mark_safe(f'<div class="cwom-scroll cwom-picture">{svg}</div>')  # noqa: S308 - every text escaped above
