"""Datasets as a sweep axis: two synthetic datasets of different domains in one `snakemake` run, each with its
report, the cross-dataset summary, out-of-domain scores with their gap, a centre hold-out, and `dvc repro`."""

import copy
import json

import pandas as pd
import pytest
from openpyxl import load_workbook

from segbench import paths
from support import TINY, new_project, run

SWEEP = "tiny"


@pytest.fixture(scope="module")
def two_domains(tmp_path_factory):
    """synth_a: centres 1-3, centre 3 held out; synth_b: centre 3 only. Pairs trained on either are scored on
    the other's test images."""
    params = copy.deepcopy(TINY)
    del params["datasets"]
    params["datasets"] = {
        "synth_a": {"name": "synthetic", "synthetic": {"n_images": 150, "seed": 1, "normal_fraction": 0.0},
                    "split": {"test_fraction": 0.2, "holdout": {"by": "center", "values": [3]}}},
        "synth_b": {"name": "synthetic", "synthetic": {"n_images": 60, "seed": 2, "centers": [3],
                                                       "normal_fraction": 0.0}},
    }
    params["sweep"]["datasets"] = ["synth_a", "synth_b"]
    params["sweep"]["references"] = ["synth_a"]  # the gap at equal training size on the held-out centre
    params["evaluate"]["external"] = ["synth_a", "synth_b"]
    params["train"]["epochs"] = 8
    params["tracking"] = {"mlflow": False}  # tested with the demo sweep (tests/e2e/test_pipeline.py)
    params["sweep"]["architectures"] = ["attention_unet"]  # 2 pairs per dataset: enough to rank
    root = new_project(tmp_path_factory.mktemp("datasets"), params)
    run(root, "snakemake", "--cores", "2")
    return root


def test_each_dataset_has_its_report_and_the_summary_ranks_pairs_across_them(two_domains):
    for dataset in ("synth_a", "synth_b"):
        assert (two_domains / paths.Sweep(dataset, SWEEP).report / "report.html").exists()
    summary = two_domains / paths.cross_dataset({"name": SWEEP, "datasets": ["synth_a"]})
    found = json.loads((summary / paths.CROSS_JSON).read_text())
    failed = {row["pair"] for row in found["failed"]}  # a pair that did not learn on a dataset is listed apart
    assert found["datasets"] == ["synth_a", "synth_b"] and len(found["table"]) + len(failed) == 2
    ranks = [row["mean rank"] for row in found["table"]]
    assert ranks == sorted(ranks) and sum(ranks) == pytest.approx(sum(range(1, len(ranks) + 1)))
    assert {w["dataset"] for w in found["winners"]} == {"synth_a", "synth_b"}
    assert found["friedman"]["mean_ranks"] and "Friedman's test over datasets" in found["verdict"]
    page = (summary / paths.CROSS_PAGE).read_text()
    assert "Pairs across datasets" in page and "synth_b Dice" in page and "data:image/png;base64," in page
    assert (summary / "figures" / f"{paths.CROSS_FIGURE}.png").stat().st_size > 5000
    sheet = load_workbook(summary / paths.CROSS_WORKBOOK)["across datasets"]
    assert any(cell.value == "within best's CI" for row in sheet.iter_rows() for cell in row)


def test_the_held_out_center_is_only_in_test_and_generalises_worse(two_domains):
    split = pd.read_csv(two_domains / "data/splits/synth_a.csv").astype({"sample_id": str})
    meta = pd.read_csv(two_domains / "data/processed/synth_a/meta.csv").astype({"sample_id": str})
    center = split.merge(meta, on="sample_id").set_index("sample_id")
    assert (center.loc[center["subset"] == "test", "center"] == 3).all()
    assert set(center.loc[center["subset"] != "test", "center"]) == {1, 2}
    assert (center["subset"] == "in_group").sum() >= 15
    statistics = json.loads((two_domains / paths.Sweep("synth_a", SWEEP).report / "statistics.json").read_text())
    held = statistics["generalisation"]["in_group"]
    best = held["pairs"][statistics["best"]]
    assert best["gap"] > 0 and best["gap_low"] is not None and not best["paired"], best
    assert best["gap"] == pytest.approx(best["reference"] - best["other"])
    page = (two_domains / paths.Sweep("synth_a", SWEEP).report / "report.html").read_text()
    assert "In-group test images against held-out group (the test images)" in page


def test_the_held_out_group_reports_the_gap_at_equal_training_size_beside_the_raw_gap(two_domains):
    """sweep.references: per pair, a model trained in centre 3 and one trained on as many images of centres 1 and 2
    score the centre-3 images the first never saw; recomputed here from their per-image scores. synth_b, not
    listed, trains none."""
    where = paths.Sweep("synth_a", SWEEP)
    statistics = json.loads((two_domains / where.report / "statistics.json").read_text())
    equal = statistics["equal_size"]
    leakage = json.loads((two_domains / "data/splits/synth_a_leakage.json").read_text())
    assert equal["sizes"]["in"] == equal["sizes"]["out"]
    assert 0 < equal["sizes"]["in"]["train"] < equal["sizes"]["sweep"]["train"]  # centre 3 is the smaller
    assert set(equal["pairs"]) | set(equal["failed"]) == set(statistics["ranking"]) and equal["pairs"]
    for pair in equal["pairs"]:
        arch, loss = pair.split(paths.PAIR_SEPARATOR)
        scores = pd.read_csv(two_domains / where.reference(arch, loss, 0) / "scores.csv").astype({"sample_id": str})
        scores = scores[scores["lesion"] & ~scores["sample_id"].isin(leakage["reference_leaked_images"])]
        dice = scores.pivot(index="sample_id", columns="model", values="dice")
        sweep = pd.read_csv(two_domains / where.seed(arch, loss, 0) / paths.PER_IMAGE).astype({"sample_id": str})
        sweep = sweep.set_index("sample_id").loc[dice.index, "dice_raw"]
        found = equal["pairs"][pair]
        assert found["n"] == len(dice) > 5
        assert found["gap"] == pytest.approx(dice["in"].mean() - dice["out"].mean())
        assert found["raw_gap"] == pytest.approx(dice["in"].mean() - sweep.mean())
        assert found["gap_low"] <= found["gap"] <= found["gap_high"]
    page = (two_domains / where.report / "report.html").read_text()
    assert "gap at equal size" in page and "raw gap" in page
    assert not (two_domains / paths.Sweep("synth_b", SWEEP).reference("attention_unet", "dice", 0)).exists()


def test_every_pair_is_scored_out_of_domain_with_its_gap(two_domains):
    statistics = json.loads((two_domains / paths.Sweep("synth_b", SWEEP).report / "statistics.json").read_text())
    external = statistics["generalisation"]["synth_a"]
    assert set(external["pairs"]) == set(statistics["ranking"])
    for gap in external["pairs"].values():
        assert gap["gap"] == pytest.approx(gap["reference"] - gap["other"]) and gap["gap_low"] <= gap["gap"]
    rows = pd.read_csv(two_domains / paths.Sweep("synth_b", SWEEP).seed("attention_unet", "dice", 0)
                       / paths.GENERALISATION / "synth_a.csv").astype({"sample_id": str})
    test_a = pd.read_csv(two_domains / "data/splits/synth_a.csv").query("subset == 'test'")
    assert set(rows["sample_id"]) == set(test_a["sample_id"].astype(str))  # synth_a's test images, zero-shot
    assert "Generalisation" in (two_domains / paths.Sweep("synth_b", SWEEP).report / "report.html").read_text()


def test_nothing_left_to_do_and_dvc_repro_rebuilds_the_summary(two_domains):
    assert "Nothing to be done" in run(two_domains, "snakemake", "-n", "--cores", "1")
    page = two_domains / paths.cross_dataset({"name": SWEEP, "datasets": ["synth_a"]}) / paths.CROSS_JSON
    before = page.read_text()
    page.unlink()
    run(two_domains, "dvc", "repro")
    assert page.read_text() == before
    assert "up to date" in run(two_domains, "dvc", "status")


def test_snakemakes_own_report_names_every_dataset(two_domains, tmp_path):
    import zipfile

    run(two_domains, "snakemake", "--report", str(tmp_path / "report.zip"))
    with zipfile.ZipFile(tmp_path / "report.zip") as archive:
        text = " ".join(archive.read(n).decode(errors="replace") for n in archive.namelist()
                        if n.endswith((".html", ".js")))
    assert "synth_a, synth_b" in text


def test_a_pair_has_one_colour_on_every_page_of_the_sweep(two_domains):
    """The held-out report (synth_a), the other dataset's (synth_b) and the cross-dataset page: the same colour for
    the same pair in every figure, whatever its rank on each."""
    colours = [json.loads((two_domains / paths.Sweep(d, SWEEP).report / "statistics.json").read_text())["colours"]
               for d in ("synth_a", "synth_b")]
    colours.append(json.loads((two_domains / paths.cross_dataset({"name": SWEEP, "datasets": ["synth_a"]})
                               / paths.CROSS_JSON).read_text())["colours"])
    assert colours[0] == colours[1] == colours[2] and len(set(colours[0].values())) == len(colours[0])
