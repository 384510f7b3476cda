import pytest

from segbench.apps.cli import main
from support import SWEEP


def test_stage_before_its_input_names_the_missing_file(project, capsys):
    assert main(["split"]) == 1
    assert "data/processed/synthetic/meta.csv: missing; run `segbench preprocess` first" in capsys.readouterr().err


def test_unknown_pair_is_named_with_a_hint(project, capsys):
    assert main(["train", "--arch", "smp_unet", "--loss", "dice_focall"]) == 1
    assert "--loss 'dice_focall': not defined under 'losses:'" in capsys.readouterr().err
    assert main(["evaluate", "--arch", "atention_unet", "--loss", "dice"]) == 1
    assert "did you mean 'attention_unet'?" in capsys.readouterr().err


def test_params_go_before_or_after_the_stage(project, capsys, tmp_path):
    other = project / "other.yaml"
    other.write_text((project / "params.yaml").read_text().replace("name: tiny", "name: other"))
    (project / "params.yaml").write_text("train: {lr: fast}\n")
    assert main(["--params", str(other), "split"]) == 1 and "meta.csv: missing" in capsys.readouterr().err
    assert main(["split", "--params", str(other)]) == 1 and "meta.csv: missing" in capsys.readouterr().err


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
    for stage in ("download", "preprocess", "split"):
        assert main([stage]) == 0
    assert main(["evaluate", "--arch", "smp_unet", "--loss", "dice"]) == 1
    missing = f"{SWEEP.fold('smp_unet', 'dice', 0, 0)}/train.json: missing; train this run first"
    assert missing in capsys.readouterr().err
    assert main(["report"]) == 1
    assert (f"{SWEEP.latency('smp_unet')}: missing; run `segbench latency --arch smp_unet`"
            in capsys.readouterr().err)
    assert not (project / SWEEP.report).exists()


def test_list_shows_every_entry_and_its_options_fast(capsys):
    import subprocess
    import sys

    assert main(["list", "architectures"]) == 0
    out = capsys.readouterr().out
    assert "transunet          Chen et al., 2021" in out and "hidden=256, layers=4, heads=8" in out
    assert main(["list", "losses"]) == 0
    out = capsys.readouterr().out
    assert "focal_tversky" in out and "gamma=1.3333333333333333" in out and "Abraham & Khan" in out
    code = "import sys; from segbench.apps.cli import main; main(['list', 'losses']); print(sorted(sys.modules))"
    modules = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    assert "'torch'" not in modules and "'monai'" not in modules


def test_list_architectures_with_complexity_counts_parameters(capsys):
    assert main(["list", "architectures", "--complexity", "--size", "32"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[1:]]
    assert len(rows) >= 22
    table = {row[0]: row for row in rows}
    assert table["unet"][1] == "31,036,481"  # Ronneberger's U-Net: 31.0 M parameters
    assert table["smp_pan"][2] == "-"  # PAN needs at least 128 px
    assert float(table["attention_unet"][2]) > 0
