import pytest

from segbench.cli import main


def test_stage_before_its_input_names_the_missing_file(project, capsys):
    assert main(["split"]) == 1
    assert "data/processed/synthetic/meta.csv: missing; run `segbench preprocess` first" in capsys.readouterr().err


def test_unknown_pair_is_named(project, capsys):
    assert main(["train", "--arch", "smp_unet", "--loss", "tversky"]) == 1
    assert "'tversky' is not defined under 'losses:'" in capsys.readouterr().err


def test_bad_params_file_is_named(project, capsys):
    (project / "params.yaml").write_text("train: {lr: fast}\n")
    assert main(["download"]) == 1
    assert "params.yaml: train.lr:" in capsys.readouterr().err


def test_stages_run_in_order_through_the_cli(project):
    for stage in ("download", "preprocess", "split"):
        assert main([stage]) == 0
    assert (project / "data/raw/synthetic/extracted/BTXRD/dataset.xlsx").exists()
    assert (project / "data/splits/synthetic.csv").read_text().startswith("sample_id,subset")
    assert main(["download"]) == 0  # idempotent: the valid archive and tree are kept


def test_help_lists_every_stage(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert all(stage in out for stage in ("download", "preprocess", "split", "train", "evaluate", "report"))


def test_evaluate_and_report_name_the_missing_run_files(project, capsys):
    assert main(["evaluate", "--arch", "smp_unet", "--loss", "dice"]) == 1
    assert "results/runs/smp_unet__dice/model_best.pt: missing" in capsys.readouterr().err
    assert main(["report"]) == 1
    assert "metrics.json: missing; run train and evaluate" in capsys.readouterr().err
    assert not (project / "results/report").exists()


def test_list_architectures_shows_every_entry_with_its_parameters(capsys):
    assert main(["list", "architectures", "--size", "32"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[1:]]
    assert len(rows) >= 22
    table = {row[0]: row for row in rows}
    assert table["unet"][1] == "31,036,481"  # Ronneberger's U-Net: 31.0 M parameters
    assert table["smp_pan"][2] == "-"  # PAN needs at least 128 px
    assert float(table["attention_unet"][2]) > 0
