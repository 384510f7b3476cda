"""Bone Detect, the web page: the JSON API, its answers to bad input, and the page in a real browser."""

import io
import threading
import time

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from support import SWEEP
from support.browser import BROWSER
from segbench.apps.runs import Run


def png(size=(120, 90), mode="L", value=128) -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, value).save(out, "PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def app(swept):
    from segbench.apps.serve import create_app

    runs = [Run("smp_unet__dice_focal/seed0", swept / SWEEP.seed("smp_unet", "dice_focal", 0), 0.5),
            Run("attention_unet__dice/seed0", swept / SWEEP.seed("attention_unet", "dice", 0), 0.1)]
    return create_app(runs, runs[0].name, max_upload_mb=1)


@pytest.fixture(scope="module")
def client(app):
    return TestClient(app)


def xray(swept) -> bytes:
    return next((swept / "data/raw/synthetic/extracted/BTXRD/images").glob("*.jpeg")).read_bytes()


def test_health_and_the_model_picker_best_first(client):
    assert client.get("/health").json() == {"status": "ok", "runs": 2}
    runs = client.get("/api/runs").json()
    assert [r["name"] for r in runs] == ["smp_unet__dice_focal/seed0", "attention_unet__dice/seed0"]
    assert runs[0]["default"] and runs[0]["test_dice"] == 0.5
    page = client.get("/").text
    assert "Research use only, not for diagnosis" in page and 'id="opacity"' in page


def test_predict_returns_the_mask_at_the_images_size_and_scores_a_truth(client, swept):
    image = xray(swept)
    width, height = Image.open(io.BytesIO(image)).size
    answer = client.post("/api/predict", files={"file": ("x.jpeg", image)}, data={"run": "attention_unet__dice/seed0"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["width"], body["height"]) == (width, height) and body["run"] == "attention_unet__dice/seed0"
    for key in ("image", "mask_overlay", "probability", "mask"):
        assert body[key].startswith("data:image/png;base64,")
    assert body["lesion_count"] == len(body["lesions"])
    truth = png((width, height), value=255)  # everything lesion
    scored = client.post("/api/predict", files={"file": ("x.jpeg", image), "truth": ("t.png", truth)}).json()
    assert 0 <= scored["dice"] <= 1 and 0 <= scored["iou"] <= scored["dice"]


@pytest.mark.parametrize("files, data, status, message", [
    ({"file": ("x.png", b"this is text, whatever its name says")}, {}, 415, "not an image segbench can read"),
    ({"file": ("x.png", png((1400, 1400), "RGB") + b"\0" * (2 << 20))}, {}, 413, "larger than the limit of 1 MB"),
    ({"file": ("x.png", png())}, {"run": "nosuch"}, 404, "unknown run 'nosuch'; available"),
    ({"file": ("x.png", png())}, {"run": "../../../../etc/passwd"}, 404, "unknown run"),
    ({"file": ("x.png", png()), "truth": ("t.png", png((10, 10)))}, {}, 422, "the ground-truth mask is 10x10"),
    ({"file": ("x.png", b"")}, {}, 400, "the image is empty"),
])
def test_bad_input_gets_a_clear_4xx_and_the_server_keeps_serving(client, files, data, status, message):
    answer = client.post("/api/predict", files=files, data=data)
    assert answer.status_code == status and message in answer.json()["detail"]
    assert client.get("/health").status_code == 200


def test_a_decompression_bomb_is_refused_before_decoding(client):
    bomb = io.BytesIO()
    Image.new("1", (12_000, 12_000)).save(bomb, "PNG")  # 144 MP, a few KB compressed
    answer = client.post("/api/predict", files={"file": ("bomb.png", bomb.getvalue())})
    assert answer.status_code == 413 and "limit" in answer.json()["detail"]


@pytest.mark.skipif(not BROWSER, reason="Chromium (Debian's chromium) is not installed")
def test_the_page_in_a_real_browser_uploads_and_shows_the_overlay_and_lesions(app, swept, tmp_path):
    import uvicorn

    from support.browser import open_page

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    upload = tmp_path / "xray.jpeg"
    upload.write_bytes(xray(swept))
    try:
        with open_page(f"http://127.0.0.1:{port}/", expected=("status of 415",)) as page:
            assert page.locator("#notice").inner_text().startswith("Research use only")
            page.wait_for_function("document.querySelectorAll('#run option').length === 2")
            page.set_input_files("#file", str(upload))
            page.click("#submit")
            page.wait_for_selector("#result", state="visible", timeout=60_000)
            assert page.evaluate("document.getElementById('overlay').naturalWidth") == Image.open(upload).size[0]
            assert page.locator("#lesions thead th").count() == 6
            assert "lesion(s) in" in page.locator("#summary").inner_text()
            page.fill("#opacity", "0.8")
            page.dispatch_event("#opacity", "input")
            assert page.evaluate("getComputedStyle(document.getElementById('overlay')).opacity") == "0.8"
            page.set_input_files("#file", {"name": "notes.png", "mimeType": "image/png", "buffer": b"not an image"})
            page.click("#submit")
            page.wait_for_selector("#error", state="visible")
            assert "not an image segbench can read" in page.locator("#error").inner_text()
            page.screenshot(path=str(tmp_path / "bone_detect.png"), full_page=True)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
