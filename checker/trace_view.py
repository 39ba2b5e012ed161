"""``kubemc trace view``: a trace as one self-contained HTML page of swimlanes.

Why a page and not a text dump: a counterexample of forty interleaved steps
across three servers is read as a sequence diagram — who acted, who heard
it, what changed — and a browser is what every reader has. The page is one
file with inline SVG, CSS and a few lines of JavaScript, fetching nothing,
so it opens offline, can be attached to a bug report, and shows the same
thing in ten years. The SVG is drawn here, in Python, so the picture exists
without JavaScript; the script only moves the cursor (←/→, ↑/↓, Home/End,
a click) and shows the chosen step's diff.

Lanes and arrows come from :mod:`checker.trace_lanes` (its docstring states
the rule), the per-step diff from :mod:`checker.trace_diff`, the page's
frame from the template ``trace_view.html`` shipped beside this module.
"""

from __future__ import annotations

import errno
import html
import os
import re
from importlib import resources
from pathlib import Path
from typing import Any

from kubemc.checker import itf, trace_lanes
from kubemc.checker.errors import BadInput, MissingEnvironment
from kubemc.checker.trace_diff import diff, fmt

GUTTER, LANE_W, TOP, ROW_H = 48, 132, 46, 30
#: room right of the lanes for a lasso's arrow back and its label
LOOP_W = 110
BOX_W = LANE_W - 14
TEMPLATE = "trace_view.html"


def default_out(trace_file: str | Path) -> Path:
    """``NAME.html`` in the current directory for a trace ``NAME.itf.json``:
    never beside the trace, whose directory may be a committed corpus."""
    name = Path(trace_file).name
    for ext in (".itf.json", ".json"):
        if name.endswith(ext) and len(name) > len(ext):
            name = name[: -len(ext)]
            break
    return Path(name + ".html")


def view(trace_file: str | Path, out: str | Path | None = None) -> Path:
    """Read ``trace_file``, write its page, return the path written.

    ``out`` given: that file, which must not exist (a user's file is never
    overwritten). ``out`` omitted: :func:`default_out`, or the next free
    name of its series (``NAME-1.html`` …) as ``kubemc check`` does for traces.
    """
    from kubemc.checker.traces import load

    trace = load(trace_file)
    page = render(trace, source=Path(trace_file).name)
    if out is None:
        return write_new(default_out(trace_file), page, series=True)
    return write_new(Path(out), page, series=False)


# ---------------------------------------------------------------------------
# writing: atomic and exclusive
# ---------------------------------------------------------------------------


def write_new(path: Path, text: str, *, series: bool) -> Path:
    """Write ``text`` to a new file, atomically and exclusively
    (:func:`checker.itf.write_text`). ``series``: take the next free name
    instead of refusing."""
    shown = itf.shown(path)
    if not series and os.path.lexists(path):
        raise BadInput(f"--out {shown} exists: kubemc never overwrites a file; "
                       "name a new one")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise BadInput(f"--out {shown}: {itf.shown(parent)} is not a directory")
    try:
        return itf.write_text(path, text, series=series)
    except FileExistsError:
        raise BadInput(f"--out {shown} exists: kubemc never overwrites a file; "
                       "name a new one") from None
    except OSError as exc:
        raise _unwritable(parent, exc) from None


def _unwritable(directory: Path, exc: OSError) -> Exception:
    reason = exc.strerror or str(exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return MissingEnvironment(f"cannot write into {itf.shown(directory)}: {reason}; "
                                  "free some space or name another file with --out")
    return BadInput(f"cannot write into {itf.shown(directory)}: {reason}; "
                    "name a writable place with --out")


# ---------------------------------------------------------------------------
# rendering
# ---------------------------------------------------------------------------


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _call(action: str, params: list) -> str:
    return f"{action}({', '.join(fmt(p) for p in params)})"


def render(trace: dict, source: str = "trace") -> str:
    """The whole page for a trace that passed ``checker.traces.load``."""
    lanes = trace_lanes.derive(trace)
    events, arrows = trace_lanes.layout(trace, lanes)
    meta = trace.get("#meta") if isinstance(trace.get("#meta"), dict) else {}
    loop = trace.get("loop")
    slots = {
        "TITLE": _e(f"{meta.get('property', source)} — kubemc trace"),
        "HEADER": _header(meta, trace, source, lanes),
        "SVG": _svg(trace, lanes, events, arrows, meta, loop),
        "STEPS": _steps(trace, lanes, events, arrows, meta, loop),
        "NSTEPS": str(len(trace["states"])),
    }
    template = resources.files("kubemc.checker").joinpath(TEMPLATE).read_text(encoding="utf-8")
    return re.sub(r"__(TITLE|HEADER|SVG|STEPS|NSTEPS)__", lambda m: slots[m.group(1)], template)


def _header(meta: dict, trace: dict, source: str, lanes) -> str:
    rows = []

    def row(label, value, cls=""):
        if value not in (None, "", "none"):
            rows.append(f'<dt>{_e(label)}</dt><dd class="{cls}">{_e(value)}</dd>')

    prop = meta.get("property")
    title = f"{prop} violated" if prop else f"trace {source}"
    row("statement", meta.get("description"))
    row("kind", meta.get("kind"))
    row("engine", meta.get("engine"))
    row("model", " / ".join(str(meta[k]) for k in ("component", "model") if meta.get(k)))
    row("mutant", meta.get("mutant"))
    row("seed", meta.get("seed"))
    row("reproduce", meta.get("command"), "command")
    if isinstance(meta.get("config"), dict) and meta["config"]:
        row("bounds", ", ".join(f"{k}={fmt(v)}" for k, v in meta["config"].items()))
    more = len(rows)
    row("provenance", meta.get("provenance"))
    row("fairness", meta.get("fairness"))
    n = len(trace["states"])
    loop = trace.get("loop")
    if isinstance(loop, int):
        shape = meta.get("lasso") or f"the last state loops back to state {loop}"
        states = f"state {loop} repeats" if loop == n - 1 else f"states {loop}..{n - 1} repeat"
        row("lasso", f"{states} forever: {shape}", "lasso")
    elif meta.get("note"):
        row("note", meta.get("note"))
    row("trace", f"{source}: {n} states, {len(lanes.names)} lanes ({lanes.rule} rule)")
    details = rows[more:]
    head = rows[:more]
    # the lasso line reads best right under the property: move it up
    lasso = [r for r in details if 'class="lasso"' in r]
    details = [r for r in details if r not in lasso]
    return (f'<h1>{_e(title)}</h1><dl id="meta">{"".join(head + lasso)}</dl>'
            f'<details><summary>provenance, fairness, file</summary>'
            f'<dl class="more">{"".join(details)}</dl></details>')


def _x(lanes, name: str) -> float:
    return GUTTER + LANE_W * lanes.names.index(name) + LANE_W / 2


def _y(row: float) -> float:
    return TOP + ROW_H * row + ROW_H / 2


def _svg(trace, lanes, events, arrows, meta, loop) -> str:
    n = len(trace["states"])
    right = GUTTER + LANE_W * max(len(lanes.names), 1)
    width = right + (LOOP_W if isinstance(loop, int) else 16)
    height = TOP + ROW_H * (n + 1) + 8
    out = [f'<svg id="lanes" xmlns="http://www.w3.org/2000/svg" width="{width}" '
           f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
           f'aria-label="swimlanes of the trace">',
           '<defs><marker id="head" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
           'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z"/>'
           '</marker></defs>']
    for row in range(n):
        y = TOP + ROW_H * row
        out.append(f'<rect class="row" id="row-{row}" data-step="{row}" x="0" y="{y}" '
                   f'width="{width}" height="{ROW_H}"/>')
    if isinstance(loop, int):
        y0, y1 = TOP + ROW_H * loop, TOP + ROW_H * n
        out.append(f'<rect class="loopband" x="{GUTTER - 4}" y="{y0}" '
                   f'width="{width - GUTTER + 4}" height="{y1 - y0}"/>')
        back = meta.get("loop_action") if isinstance(meta.get("loop_action"), dict) else {}
        label = back.get("action", "back")
        label = "stutters" if label == "stutter" else f"{label} ↑"
        x0, bend = right + 4, right + 4 + min(36, 12 + 6 * (n - loop))
        # from below the last row's middle to above the loop row's: a loop of
        # one state still reads as an arrow going back up
        ya, yb = _y(n - 1) + 7, _y(loop) - 7
        out.append(f'<path class="loopback" marker-end="url(#head)" d="M{x0},{ya} '
                   f'C{bend},{ya} {bend},{yb} {x0 + 2},{yb}"/>')
        out.append(f'<text class="looplabel" x="{bend + 4}" y="{(_y(loop) + _y(n - 1)) / 2 + 4}">'
                   f'⟲ {_e(_clip(label, 10))}'
                   f'<title>{_e(meta.get("lasso", "the last state loops back"))}</title></text>')
    out.append(f'<rect id="cursor" x="0" y="{TOP}" width="{width}" height="{ROW_H}"/>')
    for i, name in enumerate(lanes.names):
        x = GUTTER + LANE_W * i + LANE_W / 2
        out.append(f'<line class="lane" x1="{x}" y1="{TOP - 6}" x2="{x}" y2="{height - 4}"/>')
        out.append(f'<text class="lanename" x="{x}" y="{TOP - 14}" text-anchor="middle">'
                   f'{_e(_clip(name, 19))}<title>{_e(name)}</title></text>')
    for row in range(n):
        out.append(f'<text class="stepno" x="{GUTTER - 10}" y="{_y(row) + 4}" '
                   f'text-anchor="end">{row}</text>')
    if not any(e.row == 0 for e in events):
        out.append(f'<text class="init" x="{GUTTER + 6}" y="{_y(0) + 4}">initial state</text>')
    for a in arrows:
        out.append(_arrow(lanes, a, n))
    for ev in events:
        out.append(_event(lanes, ev))
    out.append("</svg>")
    return "\n".join(out)


def _arrow(lanes, a, n) -> str:
    x1, x2 = _x(lanes, a.src), _x(lanes, a.dst)
    y1 = _y(a.sent)
    y2 = _y(a.received) if a.received is not None else TOP + ROW_H * n + 4
    cls = "arrow" + (" inflight" if a.received is None else "") + \
        (" call" if a.sent == a.received else "")
    half = BOX_W / 2
    if x1 == x2:  # to itself: a loop on the right of the box
        d = f"M{x1 + half},{y1} C{x1 + half + 30},{y1} {x2 + half + 30},{y2} {x2 + half},{y2}"
    else:
        sign = 1 if x2 > x1 else -1
        end_offset = half if a.received is not None else 0
        d = f"M{x1 + sign * half},{y1} L{x2 - sign * end_offset},{y2}"
    title = f"{a.label}: {a.src} → {a.dst}, step {a.sent} → " + \
        (f"step {a.received}" if a.received is not None else "still in flight at the end")
    return (f'<path class="{cls}" marker-end="url(#head)" d="{d}">'
            f'<title>{_e(title)}</title></path>')


def _event(lanes, ev) -> str:
    y = _y(ev.row)
    out = [f'<g class="event" data-step="{ev.row}">']
    xs = [_x(lanes, t) for t in ev.touched]
    if len(xs) > 1:
        out.append(f'<line class="span" x1="{min(xs)}" y1="{y}" x2="{max(xs)}" y2="{y}"/>')
    for t in ev.touched:
        if t != ev.home:
            out.append(f'<circle class="touch" cx="{_x(lanes, t)}" cy="{y}" r="4"/>')
    label = _call(ev.action, ev.params)
    # on a lane, a composition's "caller->callee.Link" is just "Link": the
    # lane says who, the arrow says to whom
    short = _call(ev.action.split(".", 1)[1], ev.params) \
        if lanes.rule == "components" and "." in ev.action else label
    if ev.home is not None:
        x = _x(lanes, ev.home)
        out.append(f'<rect class="box" x="{x - BOX_W / 2}" y="{y - ROW_H / 2 + 4}" '
                   f'width="{BOX_W}" height="{ROW_H - 8}" rx="4"/>')
        out.append(f'<text class="action" x="{x}" y="{y + 4}" text-anchor="middle">'
                   f'{_e(_clip(short, 17))}</text>')
    out.append(f"<title>{_e(f'step {ev.row}: {label}')}</title></g>")
    return "".join(out)


def _steps(trace, lanes, events, arrows, meta, loop) -> str:
    """One section per state: the step that led to it, the changed parts
    (before → after), and the whole state with changed variables marked.
    The script shows one at a time; without it, all of them read in order."""
    states = trace["states"]
    variables = trace["vars"]
    by_row = {e.row: e for e in events}
    out = []
    for k, state in enumerate(states):
        ev = by_row.get(k)
        if k == 0 and ev is None:
            head = "State 0 — the initial state"
        else:
            action, params = trace_lanes.action_of(state)
            head = f"Step {k}: {_call(action, params)}"
        notes = []
        if k == loop:
            notes.append("the loop begins here")
        if isinstance(loop, int) and k == len(states) - 1:
            back = meta.get("loop_action") if isinstance(meta.get("loop_action"), dict) else {}
            if back.get("action") == "stutter" or not back:
                notes.append(f"then it stutters in state {loop} forever: "
                             "no system step is enabled")
            else:
                notes.append(f"then {_call(back.get('action', '?'), back.get('params') or [])}"
                             f" goes back to state {loop}, and the loop repeats")
        changes, changed_vars = [], set()
        # a history's states are operations, not successive states of one
        # system: an operation is read whole, never as a diff of the last one
        diffed = k > 0 and lanes.rule != "history"
        if diffed:
            for v in variables:
                c = diff(v, states[k - 1].get(v), state.get(v), bag=v in lanes.network)
                if c:
                    changed_vars.add(v)
                    changes += c
        lanes_line = ""
        if ev is not None and ev.touched:
            lanes_line = (f'<p class="where">on <b>{_e(ev.home)}</b>'
                          + (f", touching {_e(', '.join(t for t in ev.touched if t != ev.home))}"
                             if len(ev.touched) > 1 else "") + "</p>")
        for a in arrows:
            if a.sent == k and a.received != k:
                notes.append(f"{a.src} sends {a.label} to {a.dst}"
                             + (f" (delivered at step {a.received})" if a.received is not None
                                else " (still in flight at the end)"))
            if a.received == k and a.sent != k:
                notes.append(f"{a.dst} receives {a.label} from {a.src} (sent at step {a.sent})")
        parts = [f'<section class="step" id="step-{k}" data-step="{k}">',
                 f"<h2>{_e(head)}</h2>", lanes_line]
        parts += [f'<p class="note">{_e(n)}</p>' for n in notes]
        if diffed:
            if changes:
                parts.append(f'<h3>changed ({len(changes)})</h3><ul class="changes">')
                for c in changes:
                    if c.before is None:
                        body = f'<ins>+ {_e(c.after)}</ins>'
                    elif c.after is None:
                        body = f'<del>− {_e(c.before)}</del>'
                    else:
                        body = f'<del>{_e(c.before)}</del> → <ins>{_e(c.after)}</ins>'
                    parts.append(f'<li><code>{_e(c.path)}</code> {body}</li>')
                parts.append("</ul>")
            else:
                parts.append('<h3>changed</h3><p class="nochange">nothing: the state is the '
                             'same as before</p>')
        parts.append(f'<h3>{"operation" if lanes.rule == "history" else "state"}</h3>'
                     '<table class="state">')
        for v in variables:
            cls = ' class="changed"' if v in changed_vars else ""
            parts.append(f"<tr{cls}><th>{_e(v)}</th><td>{_e(fmt(state.get(v)))}</td></tr>")
        parts.append("</table></section>")
        out.append("".join(parts))
    return "\n".join(out)
