"""Bone Detect in a real headless Chromium: upload, overlay, colour bar, lesion table, full model names, errors.
Skips, saying why, where Chromium is missing. Keeps its screenshot in build/screenshots/."""


import pytest
from PIL import Image

from segbench.apps.runs import Run
from support import SWEEP, asgi_server
from support.browser import BROWSER, SCREENSHOTS


@pytest.fixture(scope="module")
def app(swept):
    from segbench.apps.serve import create_app

    runs = [Run(f"synthetic/tiny/{pair}/seed0", swept / SWEEP.seed(*pair.split("__"), 0), dice)
            for pair, dice in (("smp_unet__dice_focal", 0.5), ("attention_unet__dice", 0.1))]
    return create_app(runs, runs[0].name, max_upload_mb=1)


@pytest.mark.skipif(not BROWSER, reason="Chromium (Debian's chromium) is not installed")
def test_the_page_uploads_and_shows_the_overlay_the_colour_bar_and_lesions(app, swept, tmp_path):
    from support.browser import open_page

    upload = tmp_path / "xray.jpeg"
    upload.write_bytes(next((swept / "data/raw/synthetic/extracted/BTXRD/images").glob("*.jpeg")).read_bytes())
    with asgi_server(app) as url:
        with open_page(f"{url}/", expected=("status of 415",)) as page:
            assert page.locator("#notice").inner_text().startswith("Research use only")
            page.wait_for_function("document.querySelectorAll('#run option').length === 2")
            page.set_input_files("#file", str(upload))
            page.click("#submit")
            page.wait_for_selector("#result", state="visible", timeout=60_000)
            assert page.evaluate("document.getElementById('overlay').naturalWidth") == Image.open(upload).size[0]
            assert page.locator("#lesions thead th").count() == 6
            assert "lesion(s) in" in page.locator("#summary").inner_text()
            assert "linear-gradient" in page.evaluate("getComputedStyle(document.getElementById('scale-bar'))"
                                                      ".backgroundImage")
            fits = page.evaluate("""() => {  // the longest model name, in the picker's font, fits its width
                const select = document.getElementById('run'), style = getComputedStyle(select);
                const context = document.createElement('canvas').getContext('2d');
                context.font = `${style.fontSize} ${style.fontFamily}`;
                const widest = Math.max(...[...select.options].map(o => context.measureText(o.text).width));
                return [widest, select.clientWidth]; }""")
            assert fits[0] + 30 < fits[1], fits  # 30 px: the drop-down arrow
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / "bone_detect.png"), full_page=True)
            page.fill("#opacity", "0.8")
            page.dispatch_event("#opacity", "input")
            assert page.evaluate("getComputedStyle(document.getElementById('overlay')).opacity") == "0.8"
            page.set_input_files("#file", {"name": "notes.png", "mimeType": "image/png", "buffer": b"not an image"})
            page.click("#submit")
            page.wait_for_selector("#error", state="visible")
            error = page.locator("#error").inner_text()
            assert error.startswith("Could not segment notes.png.") and "cannot decode image" in error
            assert not page.locator("#result").is_visible()  # no old overlay under the new error
            assert page.evaluate("document.getElementById('overlay').getAttribute('src')") is None
            assert page.locator("#summary").inner_text() == ""
