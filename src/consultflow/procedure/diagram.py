"""Diagrams of a definition: Mermaid (renders on GitHub and in most docs tools), Graphviz DOT, and
the transition table as Markdown. Internal steps (the state stays) are left out of the diagrams."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence

from ..steps import NEW, Transition
from ..vocabulary import FINAL_STATES, State

__all__ = ["dot", "markdown", "mermaid"]


def _edges(defined: Sequence[Transition]) -> Iterator[tuple[str, str, str]]:
    seen: set[tuple[str, str, str]] = set()
    for t in defined:
        if t.target is None or t.source == NEW:
            continue
        label = t.trigger.value + (f" [{', '.join(t.routes)}]" if t.routes else "")
        edge = (t.source, t.target, label)
        if edge not in seen:
            seen.add(edge)
            yield edge


def mermaid(defined: Sequence[Transition]) -> str:
    """A Mermaid state diagram."""
    lines = ["stateDiagram-v2", f"    [*] --> {State.PROPOSED.value}"]
    lines.extend(f"    {source} --> {target}: {label}" for source, target, label in _edges(defined))
    lines.extend(f"    {s} --> [*]" for s in sorted(s.value for s in FINAL_STATES))
    return "\n".join(lines) + "\n"


def _q(text: str) -> str:
    """A DOT string: quoted and escaped, Chinese kept as it is (Graphviz reads UTF-8)."""
    return json.dumps(text, ensure_ascii=False)


def dot(defined: Sequence[Transition], name: str = "procedure") -> str:
    """A Graphviz digraph (``dot -Tsvg``); final states are drawn double."""
    lines = [f"digraph {_q(name)} {{", "    rankdir=LR;", '    start [shape=point, label=""];']
    lines.extend(f"    {_q(s.value)} [shape=doublecircle];" for s in sorted(FINAL_STATES))
    lines.append(f"    start -> {_q(State.PROPOSED.value)};")
    lines.extend(f"    {_q(source)} -> {_q(target)} [label={_q(label)}];" for source, target, label in _edges(defined))
    lines.append("}")
    return "\n".join(lines) + "\n"


def markdown(defined: Sequence[Transition]) -> str:
    """The transition table as Markdown: trigger, from, to, routes, guards, roles."""
    rows = ["| trigger | from | to | when | guards | roles |", "| --- | --- | --- | --- | --- | --- |"]
    for t in defined:
        rows.append(
            f"| {t.trigger.value} | {t.source} | {t.target or '(stays)'} | {', '.join(t.routes) or '-'} | "
            f"{', '.join(t.guards) or '-'} | {', '.join(sorted(r.value for r in t.roles))} |"
        )
    return "\n".join(rows) + "\n"
