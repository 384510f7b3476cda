"""A real headless Chromium (Debian's package), driven by Playwright, for tests that check what a person sees.

Playwright's own browser download cannot reach the network here, so it drives the system browser.
"""

from __future__ import annotations

import contextlib
import shutil

from support import REPO

BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")
SCREENSHOTS = REPO / "build" / "screenshots"  # what the tests saw, kept to look at (the README's: `make screenshots`)
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


@contextlib.contextmanager
def open_page(url: str, width: int = 1280, height: int = 900, expected: tuple[str, ...] = ()):
    """Yield a Playwright page at ``url``; fail if the page logs a console error or throws, except errors
    containing one of ``expected`` (an answer the test provokes on purpose)."""
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=BROWSER, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(url)
            yield page
        finally:
            browser.close()
    unexpected = [e for e in errors if not any(text in e for text in expected)]
    assert unexpected == [], f"the page logged errors: {unexpected}"
