"""The README's screenshots of the demo, its report and Bone Detect, taken in a real headless Chromium.

    make demo && python docs/screenshots.py [--project DIR] [--check]

Opens the demo's ``report.html`` at 1280 x 900 px, and Bone Detect (``segbench serve`` on the demo's best pair,
one of the demo's X-rays uploaded); writes ``workflow/report/screenshots/report.png`` and ``bone_detect.png``, and
``screenshots.json``: when, on which commit, and a digest of the code they show (every demo job's code, and the
page's). ``--check`` fails when that code changed since: run ``make demo`` and this script again (``make
screenshots`` does both).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "workflow/report/screenshots"
RECORD = OUT / "screenshots.json"
BROWSER_FLAGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]


def code(root: Path) -> str:
    """The digest of what the pictures show, in the project ``root``: params.yaml, every job's code in its demo
    sweep and the web page's files."""
    from segbench import pipeline
    from segbench.config import load_params
    from segbench.provenance import code_digest

    serve = REPO / "src/segbench/apps/serve"
    page = [str(p.relative_to(REPO)) for p in serve.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    return code_digest(sorted({*pipeline.sweep_code(load_params(REPO / "params.yaml")), *page, "params.yaml"}), root)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def shoot(project: Path) -> None:
    from playwright.sync_api import sync_playwright

    report = project / "results/synthetic/demo/report/report.html"
    image = next((project / "data/raw/synthetic/extracted/BTXRD/images").glob("*.jpeg"), None)
    if not report.exists() or image is None:
        sys.exit(f"{project}: no demo report or demo images; run `make demo` there first")
    port = free_port()
    server = subprocess.Popen([str(Path(sys.executable).parent / "segbench"), "serve", "--port", str(port)],
                              cwd=project, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except OSError:
                if server.poll() is not None:
                    sys.exit(f"segbench serve stopped: {server.stderr.read()[-2000:]}")
                time.sleep(0.5)
        browser_path = shutil.which("chromium") or shutil.which("chromium-browser")
        if not browser_path:
            sys.exit("Chromium is not installed (Debian: apt-get install chromium)")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=browser_path, args=BROWSER_FLAGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(report.as_uri())
            page.screenshot(path=str(OUT / "report.png"))
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"http://127.0.0.1:{port}/")
            page.set_input_files("#file", str(image))
            page.click("#submit")
            page.wait_for_selector("#result", state="visible", timeout=120_000)
            page.screenshot(path=str(OUT / "bone_detect.png"), full_page=True)
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, default=REPO, help="where `make demo` ran (default: here)")
    parser.add_argument("--check", action="store_true", help="fail if the code changed since the screenshots")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO / "src"))
    from segbench.provenance import git_commit

    digest = code(REPO)
    if args.check:
        recorded = json.loads(RECORD.read_text()).get("code") if RECORD.exists() else None
        if recorded != digest:
            sys.exit(f"{RECORD.relative_to(REPO)}: the screenshots show code {recorded}, the code is now {digest}: "
                     "run `make screenshots`")
        print(f"the screenshots are current (code {digest})")
        return
    project = args.project.resolve()
    if project != REPO and code(project) != digest:
        sys.exit(f"{project}: its code differs from this checkout's; update it and run `make demo` there again")
    commit = git_commit(short=True)  # before the pictures are rewritten (which makes the checkout dirty)
    shoot(project)
    record = {"taken": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "commit": commit,
              "code": digest, "files": ["report.png", "bone_detect.png"]}
    tmp = RECORD.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(tmp, RECORD)
    print(f"{OUT.relative_to(REPO)}: report.png, bone_detect.png (code {digest})")


if __name__ == "__main__":
    main()
