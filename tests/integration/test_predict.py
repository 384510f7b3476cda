"""`segbench predict`, the Python API and the MLflow model: new images at their own size."""

import hashlib
import io
import json
import zipfile

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from segbench import paths
from segbench.apps.cli import main
from support import BIN, SWEEP, TINY, tool_env, with_dataset
from support.archives import labelme, row

W, H = 1000, 700
BTXRD = paths.Sweep("btxrd", "tiny")


def xray(seed: int) -> tuple[bytes, list]:
    """A 1,000 x 700 JPEG with a bright lesion, and the lesion's polygon."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(20, 90, (H, W), np.uint8)
    cx, cy, r = rng.integers(200, 800), rng.integers(150, 550), rng.integers(40, 120)
    yy, xx = np.ogrid[:H, :W]
    pixels[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = 200
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG", quality=90)
    angles = np.linspace(0, 2 * np.pi, 16, endpoint=False)
    return out.getvalue(), [[float(cx + r * np.cos(a)), float(cy + r * np.sin(a))] for a in angles]


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    """A BTXRD-format project of 20 X-rays of 1,000 x 700 px, trained (1 epoch) and evaluated."""
    root = tmp_path_factory.mktemp("big")
    archive, rows = io.BytesIO(), []
    with zipfile.ZipFile(archive, "w") as zf:
        for i in range(1, 21):
            image, polygon = xray(i)
            name = f"IMG{i:06d}.jpeg"
            zf.writestr(f"BTXRD/images/{name}", image)
            zf.writestr(f"BTXRD/Annotations/IMG{i:06d}.json", labelme(
                [{"label": "osteosarcoma", "points": polygon, "shape_type": "polygon", "group_id": None,
                  "flags": {}}], W, H, name))
            rows.append(row(name, ["osteosarcoma"]))
        xlsx = io.BytesIO()
        pd.DataFrame(rows).to_excel(xlsx, index=False, engine="openpyxl")
        zf.writestr("BTXRD/dataset.xlsx", xlsx.getvalue())
    (root / "BTXRD.zip").write_bytes(archive.getvalue())
    params = with_dataset(TINY, name="btxrd", source=str(root / "BTXRD.zip"),
                          checksum="sha256:" + hashlib.sha256(archive.getvalue()).hexdigest())
    params["sweep"].update(architectures=["attention_unet"], losses=["dice"])
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        for stage in (["download"], ["preprocess"], ["split"], ["train", "--arch", "attention_unet", "--loss", "dice"],
                      ["evaluate", "--arch", "attention_unet", "--loss", "dice"]):
            assert main(stage) == 0, stage
    return root


def test_predict_gives_the_images_own_size_and_evaluations_mask(big, monkeypatch, tmp_path):
    monkeypatch.chdir(big)
    split = pd.read_csv(big / "data/splits/btxrd.csv")
    sample = split.loc[split["subset"] == "test", "sample_id"].iloc[0]
    image = big / f"data/raw/btxrd/extracted/BTXRD/images/{sample}.jpeg"
    assert main(["predict", str(image), "--run", "attention_unet__dice", "--out", str(tmp_path)]) == 0
    mask = np.asarray(Image.open(tmp_path / f"{sample}.jpeg.mask.png"))
    assert mask.shape == (H, W) and set(np.unique(mask)) <= {0, 255}
    with np.load(big / BTXRD.seed("attention_unet", "dice", 0) / "test_predictions.npz") as evaluated:
        assert (mask // 255 == evaluated[sample]).all()  # the same image, the same mask, pixel for pixel
    record = json.loads((tmp_path / f"{sample}.jpeg.json").read_text())
    assert (record["width"], record["height"]) == (W, H) and record["lesion_count"] == len(record["lesions"])
    for lesion in record["lesions"]:
        assert set(lesion) == {"id", "class", "area_px", "area_percent", "bbox", "mean_probability"}
        assert lesion["area_percent"] == pytest.approx(100 * lesion["area_px"] / (W * H), abs=1e-4)
    assert Image.open(tmp_path / f"{sample}.jpeg.overlay.png").size == (W, H)


def test_python_api_three_lines(big, monkeypatch):
    from segbench.predict.predictor import Predictor

    predictor = Predictor.from_run(big / BTXRD.seed("attention_unet", "dice", 0))
    mask, probability = predictor.predict(np.asarray(Image.open(next((big / "data/raw/btxrd/extracted/BTXRD/images")
                                                                      .glob("*.jpeg")))))
    assert mask.shape == probability.shape == (H, W) and 0 <= probability.min() <= probability.max() <= 1


def test_folders_png_rgb_exif_and_dicom(big, monkeypatch, tmp_path, caplog, capsys):
    import pydicom
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    folder = tmp_path / "in"
    (folder / "nested").mkdir(parents=True)
    Image.new("RGB", (300, 200), (90, 90, 90)).save(folder / "rgb.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated: stored 300 x 200, shown 200 x 300
    Image.new("L", (300, 200), 60).save(folder / "nested" / "rotated.jpg", exif=exif)
    (folder / "notes.txt").write_text("not an image, and not an image suffix")
    (folder / "broken.png").write_bytes(b"\x89PNG not really")
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = "1.2.840.10008.5.1.4.1.1.1", generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(folder / "scan.dcm"), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.Rows, ds.Columns, ds.BitsAllocated, ds.BitsStored, ds.HighBit = 120, 160, 16, 12, 11
    ds.SamplesPerPixel, ds.PixelRepresentation, ds.PhotometricInterpretation = 1, 0, "MONOCHROME2"
    ds.PixelData = np.random.default_rng(0).integers(0, 4096, (120, 160), np.uint16).tobytes()
    ds.save_as(folder / "scan.dcm", enforce_file_format=True)
    assert pydicom.dcmread(folder / "scan.dcm").pixel_array.shape == (120, 160)
    monkeypatch.chdir(big)
    Image.new("L", (90, 60), 60).save(folder / "rgb.jpeg")  # the same stem as rgb.png: its own outputs
    Image.new("L", (70, 50), 60).save(folder / "nested" / "rgb.png")  # the same name, another folder
    monkeypatch.chdir(big)
    assert main(["predict", str(folder), "--run", "attention_unet__dice/seed0", "--out", str(tmp_path / "out")]) == 0
    assert "broken.png: cannot decode image" in caplog.text
    out = tmp_path / "out"
    sizes = {p.relative_to(out).as_posix(): Image.open(p).size for p in out.rglob("*.mask.png")}
    assert sizes == {"rgb.png.mask.png": (300, 200), "rgb.jpeg.mask.png": (90, 60), "nested/rgb.png.mask.png": (70, 50),
                     "nested/rotated.jpg.mask.png": (200, 300), "scan.dcm.mask.png": (160, 120)}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["images"] == 5 and [s["image"] for s in summary["skipped"]] == [str(folder / "broken.png")]
    assert summary["skipped"][0]["reason"].startswith("cannot decode image: its content is not")
    assert "skipped " + str(folder / "broken.png") in capsys.readouterr().out  # and the printed summary says why


def test_a_dicom_over_the_pixel_limit_is_refused_before_its_pixels_are_decoded(tmp_path, monkeypatch):
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    from segbench.data.images import TooLarge, load_image

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = "1.2.840.10008.5.1.4.1.1.1", generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset("big.dcm", {}, file_meta=meta, preamble=b"\0" * 128)
    ds.Rows, ds.Columns, ds.BitsAllocated, ds.BitsStored, ds.HighBit = 3000, 4000, 8, 8, 7
    ds.SamplesPerPixel, ds.PixelRepresentation, ds.PhotometricInterpretation = 1, 0, "MONOCHROME2"
    ds.PixelData = b"\0" * 12  # a header that claims 12 MP: decoding the pixels would fail, the guard comes first
    ds.save_as(tmp_path / "big.dcm", enforce_file_format=True)
    with pytest.raises(TooLarge, match=r"4,000 x 3,000 pixels \(12 megapixels\) is over the limit of 10 megapixels"):
        load_image((tmp_path / "big.dcm").read_bytes(), "L", max_pixels=10_000_000)


def test_runs_are_named_and_unknown_names_listed(big, monkeypatch, tmp_path, capsys):
    monkeypatch.chdir(big)
    image = str(next((big / "data/raw/btxrd/extracted/BTXRD/images").glob("*.jpeg")))
    assert main(["predict", image, "--run", "attention_unet__dice/seed0/fold0", "--out", str(tmp_path)]) == 0
    assert main(["predict", image, "--run", "attention_unet__dise", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "not a trained run; trained: ['btxrd/tiny/attention_unet__dice/seed0']" in err and "did you mean" in err
    assert main(["predict", image, "--out", str(tmp_path)]) == 1  # best: no report yet
    assert "summary.json is missing; run `segbench report`" in capsys.readouterr().err
    assert main(["predict", str(tmp_path / "nope.png")]) == 1
    assert "nope.png: no such file or folder" in capsys.readouterr().err


def test_the_mlflow_model_is_a_pyfunc_the_champion_and_loads_without_pickle(swept, monkeypatch, tmp_path):
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{swept}/mlflow.db")
    client = mlflow.MlflowClient()
    champion = client.get_model_version_by_alias("segbench-synthetic-tiny", "champion")
    best = json.loads((swept / SWEEP.report / "summary.json").read_text())["best_pair"]
    assert champion.tags["segbench.run"] == f"{best}/seed0"
    model = mlflow.pyfunc.load_model("models:/segbench-synthetic-tiny@champion", dst_path=str(tmp_path))
    assert [c.name for c in model.metadata.get_input_schema().inputs] == ["image"]
    image = next((swept / "data/raw/synthetic/extracted/BTXRD/images").glob("*.jpeg"))
    out = model.predict(pd.DataFrame({"image": [image.read_bytes()]}))
    mask = Image.open(io.BytesIO(out["mask_png"][0]))
    assert mask.size == Image.open(image).size and out["lesion_count"][0] == len(json.loads(out["lesions"][0]))
    stored = {p.name for p in (swept / "mlruns").rglob("*") if p.is_file()}
    assert "python_model.pkl" not in stored and "mlflow_model.py" in stored  # models from code: nothing pickled


@pytest.mark.e2e
def test_mlflow_models_serve_answers_posted_images_with_masks(swept, tmp_path):
    """`mlflow models serve -m models:/<sweep>@champion`, a real server on 127.0.0.1."""
    import base64
    import socket
    import subprocess
    import time

    import requests

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # MLflow runs `uvicorn` from PATH, and downloads the model into TMPDIR
    env = tool_env(MLFLOW_TRACKING_URI=f"sqlite:///{swept}/mlflow.db", TMPDIR=str(tmp_path))
    server = subprocess.Popen([str(BIN / "mlflow"), "models", "serve", "-m",
                               "models:/segbench-synthetic-tiny@champion", "--env-manager", "local",
                               "-h", "127.0.0.1", "-p", str(port)],
                              cwd=swept, env=env, stdout=subprocess.DEVNULL, stderr=open(tmp_path / "serve.log", "w"))
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                if requests.get(f"http://127.0.0.1:{port}/ping", timeout=2).ok:
                    break
            except requests.ConnectionError:
                time.sleep(1)
        else:
            raise AssertionError((tmp_path / "serve.log").read_text()[-3000:])
        image = next((swept / "data/raw/synthetic/extracted/BTXRD/images").glob("*.jpeg"))
        payload = {"dataframe_split": {"columns": ["image"], "data": [[base64.b64encode(image.read_bytes()).decode()]]}}
        answer = requests.post(f"http://127.0.0.1:{port}/invocations", json=payload, timeout=120)
        assert answer.ok, answer.text
        prediction = answer.json()["predictions"][0]
        mask = Image.open(io.BytesIO(base64.b64decode(prediction["mask_png"])))
        assert mask.size == Image.open(image).size and prediction["lesion_count"] >= 0
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_from_run_loads_with_weights_only_and_reuses_evaluations_choice(swept):
    from segbench.io import read_json
    from segbench.predict.predictor import Predictor

    seed_dir = swept / SWEEP.seed("attention_unet", "dice", 0)
    run = Predictor.from_run(seed_dir)
    assert run.postprocessing == read_json(seed_dir / "metrics.json")["postprocessing"]
    assert len(run.members) == 1 and run.size == 32 and run.channels == 1 and run.classes == 2
    single = Predictor.from_run(seed_dir / "folds/fold0")
    assert single.postprocessing == run.postprocessing
    image = np.asarray(Image.open(next((swept / "data/raw/synthetic/extracted/BTXRD/images").glob("*.jp*g"))))
    mask, probability = run.predict(image)
    assert mask.shape == probability.shape == image.shape[:2]
    with pytest.raises(Exception, match="no trained model here"):
        Predictor.from_run(swept / "results")
