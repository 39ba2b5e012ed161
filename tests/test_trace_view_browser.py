"""The trace viewer's pages in a real headless Chromium: they load without a
console error and without fetching anything, the keyboard steps through
them, and a screenshot is what the documentation shows.

Run ``python3 tests/test_trace_view_browser.py docs/trace-view.png`` to
remake the documentation image.
"""

import json
import os
import struct
import sys
import zlib
from pathlib import Path

import pytest

from conftest import require

sys.path.insert(0, str(Path(__file__).resolve().parent))
from browser import Watched, browser_context, playwright_missing  # noqa: E402

from kubemc.checker import traces  # noqa: E402
from kubemc.checker.trace_view import render  # noqa: E402

pytestmark = pytest.mark.real

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = sorted((ROOT / "traces").rglob("*.itf.json"))
RAFT = ROOT / "traces/store/raft-leader_completeness-explore-figure8_commit.itf.json"
LASSO = ROOT / "traces/controllers/nodelifecycle-nodelifecycle_converges-explore-keeps_unknown_after_recovery.itf.json"
DOC_IMAGE = ROOT / "docs/trace-view.png"
#: the documentation image: the Figure 8 counterexample, at the step where
#: server 1 grants its vote (step 4)
DOC_TRACE, DOC_STEP = RAFT, 4


@pytest.fixture(scope="module")
def browser():
    missing = playwright_missing()
    require(missing is None, f"the browser test needs {missing}",
            "run the README's test command (it installs chromium and the test extras)")
    with browser_context() as context:
        yield Watched(context.new_page())


def page_of(path: Path, directory: Path) -> Path:
    out = directory / (path.name + ".html")
    out.write_text(render(traces.load(path), source=path.name), encoding="utf-8")
    return out


def sample() -> list[Path]:
    """The largest trace of every (component, engine, lasso or not): every
    shape of trace kubemc writes, at its most demanding. All of them with
    KUBEMC_BROWSER_ALL=1 (about 40 s; test_trace_view.py renders every
    one of them without a browser on every run)."""
    if os.environ.get("KUBEMC_BROWSER_ALL") == "1":
        return COMMITTED
    largest = {}
    for path in COMMITTED:
        trace = json.loads(path.read_text())
        kind = (path.parent.name, trace["#meta"].get("engine"), "loop" in trace)
        if kind not in largest or path.stat().st_size > largest[kind].stat().st_size:
            largest[kind] = path
    return sorted(largest.values())


def test_committed_traces_load_without_errors(browser, tmp_path):
    chosen = sample()
    engines = {json.loads(p.read_text())["#meta"]["engine"] for p in chosen}
    assert len(chosen) >= 20 and engines >= {"explore", "hypothesis", "z3"}
    failures = {}
    for path in chosen:
        html = page_of(path, tmp_path)
        page = browser.open(html.as_uri())
        n = len(traces.load(path)["states"])
        shown = page.evaluate("""() => [document.body.dataset.step,
            document.querySelectorAll('section.step:not([hidden])').length,
            document.querySelectorAll('#lanes .event').length]""")
        fetched = [u for u in browser.requests if u != html.as_uri()]
        initial = traces.load(path)["states"][0]["#meta"].get("action") == "Init"
        if browser.problems or fetched or shown != ["0", 1, n - initial]:
            failures[path.name] = (browser.problems[:3], fetched[:3], shown)
    assert failures == {}


def test_a_conformance_window_loads_without_errors(browser, tmp_path):
    from test_trace_view import conformance_trace

    path = conformance_trace(tmp_path)
    html = page_of(path, tmp_path)
    page = browser.open(html.as_uri())
    n = len(traces.load(path)["states"])
    assert page.locator("#lanes .event").count() == n       # every operation an event
    page.keyboard.press("End")
    assert page.evaluate("document.body.dataset.step") == str(n - 1)
    assert browser.problems == [] and browser.requests == [html.as_uri()]


def state_of(page):
    return page.evaluate("""() => ({
        step: document.body.dataset.step,
        row: [...document.querySelectorAll('#lanes .row.current')].map(r => r.id),
        event: [...document.querySelectorAll('#lanes .event.current')].map(e => e.dataset.step),
        shown: [...document.querySelectorAll('section.step:not([hidden])')].map(s => s.id),
        cursor: document.getElementById('cursor').getAttribute('y'),
        position: document.getElementById('position').textContent})""")


def test_keyboard_and_clicks_step_through_the_trace(browser, tmp_path):
    n = len(traces.load(RAFT)["states"])
    page = browser.open(page_of(RAFT, tmp_path).as_uri())
    start = state_of(page)
    assert start["step"] == "0" and start["row"] == ["row-0"] and start["shown"] == ["step-0"]
    assert start["event"] == []                       # the initial state is no step
    page.keyboard.press("ArrowRight")
    one = state_of(page)
    assert (one["step"], one["row"], one["event"], one["shown"]) == \
        ("1", ["row-1"], ["1"], ["step-1"])
    assert one["cursor"] != start["cursor"] and one["position"] == f"step 1 of {n - 1}"
    assert page.locator("#step-1 h2").inner_text() == "Step 1: Timeout(0)"
    assert "currentTerm[0]" in page.locator("#step-1 ul.changes").inner_text()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowLeft")
    assert state_of(page)["step"] == "2"
    page.keyboard.press("End")
    end = state_of(page)
    assert (end["step"], end["shown"]) == (str(n - 1), [f"step-{n - 1}"])
    page.keyboard.press("ArrowRight")                 # past the end: stays
    assert state_of(page)["step"] == str(n - 1)
    page.keyboard.press("Home")
    assert state_of(page)["step"] == "0"
    page.keyboard.press("ArrowLeft")                  # before the start: stays
    assert state_of(page)["step"] == "0"
    page.locator("#row-7").click()
    assert state_of(page)["shown"] == ["step-7"]
    assert browser.problems == []


def test_a_lasso_shows_its_loop(browser, tmp_path):
    page = browser.open(page_of(LASSO, tmp_path).as_uri())
    band = page.locator("#lanes .loopband").bounding_box()
    first, last = (page.locator(f"#row-{k}").bounding_box() for k in (13, 16))
    assert abs(band["y"] - first["y"]) < 1
    assert abs(band["y"] + band["height"] - (last["y"] + last["height"])) < 1
    page.keyboard.press("End")
    assert "goes back to state 13" in page.locator("#step-16").inner_text()
    assert browser.problems == []


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


def screenshot(browser, directory: Path, png: Path) -> Path:
    page = browser.open(page_of(DOC_TRACE, directory).as_uri())
    for _ in range(DOC_STEP):
        page.keyboard.press("ArrowRight")
    page.screenshot(path=str(png))
    return png


def test_screenshot_as_in_the_documentation(browser, tmp_path):
    png = screenshot(browser, tmp_path, tmp_path / "shot.png")
    assert png_size(png) == (1400, 900)
    # not a blank page: the picture holds many distinct rows of pixels
    raw = zlib.decompress(b"".join(_chunks(png.read_bytes(), b"IDAT")))
    stride = len(raw) // 900
    assert len({raw[i * stride:(i + 1) * stride] for i in range(900)}) > 200
    assert browser.problems == []
    # the committed image is a screenshot of the same size, shown in the README
    assert png_size(DOC_IMAGE) == (1400, 900)
    assert "docs/trace-view.png" in (ROOT / "README.md").read_text()


def _chunks(data: bytes, kind: bytes):
    pos = 8
    while pos < len(data):
        length, name = struct.unpack(">I4s", data[pos:pos + 8])
        if name == kind:
            yield data[pos + 8:pos + 8 + length]
        pos += 12 + length


if __name__ == "__main__":
    import tempfile

    target = Path(sys.argv[1] if len(sys.argv) > 1 else DOC_IMAGE)
    with browser_context() as context, tempfile.TemporaryDirectory() as tmp:
        print(screenshot(Watched(context.new_page()), Path(tmp), target))
