"""Bone Detect, the web page: the JSON API, its answers to bad input (and to fuzzing), its answers under load, and
the page in a real browser."""

import concurrent.futures
import copy
import io
import threading
import time

import numpy as np
import pytest
import requests
from fastapi.testclient import TestClient
from PIL import Image

from segbench.apps.runs import Run
from support import DATASET, SWEEP, TINY, asgi_server


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
    assert body["image"].startswith("data:image/jpeg;base64,") and body["probability"].startswith("data:image/jpeg")
    assert body["mask_overlay"].startswith("data:image/png;base64,") and body["mask"].startswith("data:image/png")
    assert body["lesion_count"] == len(body["lesions"]) and len(body["probability_scale"]) == 11
    truth = png((width, height), value=255)  # everything lesion
    scored = client.post("/api/predict", files={"file": ("x.jpeg", image), "truth": ("t.png", truth)}).json()
    assert 0 <= scored["dice"] <= 1 and 0 <= scored["iou"] <= scored["dice"]


def test_run_best_and_every_name_the_cli_takes(swept, monkeypatch):
    from segbench.apps.runs import resolve, trained_runs
    from segbench.apps.serve import create_app
    from segbench.config import validate_params

    monkeypatch.chdir(swept)
    params = validate_params(copy.deepcopy(TINY))
    runs = trained_runs(params, DATASET)
    best = resolve("best", params, DATASET).name
    client = TestClient(create_app(runs, best, resolve=lambda name: resolve(name, params, DATASET)))
    image = {"file": ("x.jpeg", xray(swept))}
    for name, expected in [("best", best), ("attention_unet__dice", "synthetic/tiny/attention_unet__dice/seed0"),
                           ("attention_unet__dice/seed0", "synthetic/tiny/attention_unet__dice/seed0"),
                           ("attention_unet__dice/seed0/fold0", "synthetic/tiny/attention_unet__dice/seed0/fold0"),
                           ("synthetic/tiny/smp_unet__dice/seed0", "synthetic/tiny/smp_unet__dice/seed0")]:
        answer = client.post("/api/predict", files=image, data={"run": name})
        assert answer.status_code == 200 and answer.json()["run"] == expected, (name, answer.text)
    answer = client.post("/api/predict", files=image, data={"run": "attention_unet__dise"})
    assert answer.status_code == 404 and "did you mean" in answer.json()["detail"]


def test_the_default_names_are_the_listed_runs_and_best(client):
    answer = client.post("/api/predict", files={"file": ("x.png", png())}, data={"run": "best"})
    assert answer.status_code == 200 and answer.json()["run"] == "smp_unet__dice_focal/seed0"


@pytest.mark.parametrize("files, data, status, message", [
    ({"file": ("x.png", b"this is text, whatever its name says")}, {}, 415,
     "x.png: cannot decode image: its content is not a PNG, JPEG, TIFF, BMP or DICOM image, whatever its name says"),
    ({"file": ("x.png", png((1400, 1400), "RGB") + b"\0" * (2 << 20))}, {}, 413,
     "x.png is larger than the limit of 1 MB; compress or downscale it"),
    ({"file": ("x.png", png())}, {"run": "nosuch"}, 404, "unknown run 'nosuch'; available: best, "),
    ({"file": ("x.png", png())}, {"run": "../../../../etc/passwd"}, 404, "unknown run"),
    ({"file": ("x.png", png()), "truth": ("t.png", png((10, 10)))}, {}, 422,
     "the ground-truth mask is 10x10, the image 120x90: upload the mask of this image"),
    ({"file": ("x.png", png()), "truth": ("t.png", b"GIF89a nonsense")}, {}, 415,
     "the ground-truth mask: cannot decode image: its content is not"),
    ({"file": ("x.png", b"")}, {}, 400, "x.png is empty"),
])
def test_bad_input_gets_a_plain_4xx_and_the_server_keeps_serving(client, files, data, status, message):
    answer = client.post("/api/predict", files=files, data=data)
    detail = answer.json()["detail"]
    assert answer.status_code == status and message in detail, detail
    assert " object at 0x" not in detail and "Traceback" not in detail  # no Python internals
    assert client.get("/health").status_code == 200


@pytest.mark.parametrize("size", [(12_000, 12_000), (10_000, 10_000)])
def test_an_image_over_the_pixel_limit_is_refused_by_name_before_decoding(client, size):
    """12,000 px: PIL's own bomb guard fires too; 10,000 px: a valid PNG, over 80 MP. Both say what to do."""
    big = io.BytesIO()
    Image.new("1", size).save(big, "PNG")  # a few KB compressed
    answer = client.post("/api/predict", files={"file": ("big.png", big.getvalue())})
    detail = answer.json()["detail"]
    assert answer.status_code == 413 and detail.startswith(f"big.png: {size[0]:,} x {size[1]:,} pixels"), detail
    assert "over the limit of 80 megapixels; downscale it" in detail


@pytest.mark.parametrize("side", [200, 4000])
def test_lesion_numbers_sit_in_a_badge_scaled_to_the_image(side):
    """Legible at 200 px and at 4,000 px: the badge is at least 12 px and about 3 % of the image's longest side."""
    from segbench.apps.drawing import annotate

    image = Image.new("RGB", (side, side * 3 // 4), (255, 255, 255))
    box = [side // 4, side // 4, side // 2, side // 2]
    drawn = np.asarray(annotate(image, [{"id": 7, "bbox": box}]))
    badge = np.argwhere((drawn == 20).all(-1))  # the badge's near-black fill
    height = badge[:, 0].max() - badge[:, 0].min() + 1
    assert height >= 12 and 0.025 * side <= height <= 0.08 * side, height
    assert badge[:, 0].max() <= box[1] + 2  # above the box: the lesion stays visible
    text = (drawn[badge[:, 0].min():badge[:, 0].max(), badge[:, 1].min():badge[:, 1].max()] > 180).all(-1)
    assert text.mean() > 0.05  # white digits inside it


def test_the_api_survives_fuzzing_from_its_openapi_schema(app):
    """Schemathesis generates requests from the app's own OpenAPI schema: none may get a 5xx."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from schemathesis.checks import not_a_server_error

    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    for operation in schema.get_all_operations():
        operation = operation.ok()

        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(case=operation.as_strategy())
        def fuzz(case):
            case.call_and_validate(checks=[not_a_server_error])

        fuzz()


def test_health_answers_within_a_second_while_eight_uploads_run(app, swept):
    """Inference runs off the event loop: eight parallel uploads all get their answer, and /health, polled
    all the while, never waits a second."""
    image = xray(swept)
    with asgi_server(app) as url:
        def upload(k):
            return requests.post(f"{url}/api/predict", files={"file": (f"x{k}.jpeg", image)}, timeout=120).status_code

        waits, done = [], threading.Event()

        def poll():
            while not done.is_set():
                start = time.perf_counter()
                assert requests.get(f"{url}/health", timeout=10).status_code == 200
                waits.append(time.perf_counter() - start)
                time.sleep(0.02)

        poller = threading.Thread(target=poll)
        poller.start()
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(upload, range(8)))
        done.set()
        poller.join()
    assert statuses == [200] * 8 and len(waits) >= 3 and max(waits) < 1.0, (statuses, max(waits))


def test_a_model_the_server_cannot_load_is_a_server_error_not_the_uploads(swept, tmp_path):
    """A run whose checkpoint is missing or corrupt on the server: 500 with a plain message naming the run; a
    good upload is never answered as unsupported (415)."""
    import shutil

    from segbench.apps.serve import create_app

    broken = tmp_path / "seed0"
    shutil.copytree(swept / SWEEP.seed("attention_unet", "dice", 0), broken)
    (broken / "folds/fold0/model_best.pt").write_bytes(b"not a checkpoint")
    client = TestClient(create_app([Run("broken/seed0", broken, 0.1)], "broken/seed0"))
    answer = client.post("/api/predict", files={"file": ("x.jpeg", xray(swept))})
    assert answer.status_code == 500, answer.text
    assert answer.json()["detail"].startswith("run broken/seed0: its model cannot be loaded on the server")
