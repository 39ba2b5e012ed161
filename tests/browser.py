"""A real headless Chromium for tests that look at pages kubemc writes.

Playwright (PyPI) drives the system's Chromium (Debian ``chromium``) over the
DevTools protocol; no browser is downloaded. The flags keep the browser off
the network and away from any profile: a new empty ``--user-data-dir`` that
is removed afterwards, no sync, no component updates, no background fetches.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile

FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium_path() -> str | None:
    return shutil.which("chromium")


def playwright_missing() -> str | None:
    """Why the browser cannot be driven, or None when it can."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package (python3 -m pip install -e '.[test]')"
    if chromium_path() is None:
        return "chromium (apt-get install chromium)"
    return None


@contextlib.contextmanager
def browser_context(width: int = 1400, height: int = 900):
    """A headless Chromium context with a fresh profile, closed and removed
    on exit."""
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="kubemc-chromium-")
    try:
        with sync_playwright() as p:
            context = p.chromium.launch_persistent_context(
                profile, executable_path=chromium_path(), headless=True, args=FLAGS,
                viewport={"width": width, "height": height})
            try:
                yield context
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


class Watched:
    """A page whose console errors and warnings, uncaught exceptions, and
    requests other than for the page itself are recorded."""

    def __init__(self, page):
        self.page = page
        self.problems: list[str] = []
        self.requests: list[str] = []
        page.on("console", lambda m: self.problems.append(f"console {m.type}: {m.text}")
                if m.type in ("error", "warning") else None)
        page.on("pageerror", lambda e: self.problems.append(f"uncaught: {e}"))
        page.on("request", lambda r: self.requests.append(r.url))

    def open(self, url: str):
        self.problems.clear()
        self.requests.clear()
        self.page.goto(url, wait_until="load")
        return self.page
