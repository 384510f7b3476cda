"""Comparison table: one row per architecture x loss pair, sorted by test Dice."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from segbench import SegbenchError
from segbench.io import atomic_path, read_json

COLUMNS = {"dice": "Dice", "dice_std": "Dice std", "iou": "IoU", "precision": "Precision",
           "recall": "Recall", "dice_pooled": "Dice (pooled)", "n_images": "test images"}


def comparison_table(run_dirs: dict[tuple[str, str], Path]) -> pd.DataFrame:
    """Collect each pair's metrics.json and train.json into one table, best Dice first."""
    rows = []
    for (arch, loss), run_dir in run_dirs.items():
        for name in ("metrics.json", "train.json"):
            if not (run_dir / name).exists():
                raise SegbenchError(f"{run_dir / name}: missing; run train and evaluate for {arch} x {loss}")
        metrics, train = read_json(run_dir / "metrics.json"), read_json(run_dir / "train.json")
        rows.append({"architecture": arch, "loss": loss, **{label: metrics.get(key) for key, label in COLUMNS.items()},
                     "parameters": train["n_params"], "GFLOPs": train.get("gflops"), "epochs": train["epochs"],
                     "best epoch": train["best_epoch"],
                     "train seconds": round(train["train_seconds"])})
    table = pd.DataFrame(rows).sort_values("Dice", ascending=False, kind="stable").reset_index(drop=True)
    table.insert(0, "rank", range(1, len(table) + 1))
    return table


def write_excel(table: pd.DataFrame, path: Path, extra_sheets: dict[str, pd.DataFrame] | None = None) -> None:
    """comparison.xlsx via openpyxl: a 'comparison' sheet, then any extra sheets."""
    with atomic_path(path) as tmp:
        with pd.ExcelWriter(tmp, engine="openpyxl") as writer:
            table.to_excel(writer, sheet_name="comparison", index=False, float_format="%.4f")
            for name, sheet in (extra_sheets or {}).items():
                sheet.to_excel(writer, sheet_name=name, index=False)
            for column in writer.sheets["comparison"].columns:
                width = max(len(str(cell.value or "")) for cell in column)
                writer.sheets["comparison"].column_dimensions[column[0].column_letter].width = min(40, width + 2)


def write_markdown(table: pd.DataFrame, path: Path, title: str, notes: list[str],
                   sections: dict[str, pd.DataFrame] | None = None) -> None:
    """comparison.md: the table, its notes, then one titled table per extra section."""
    text = f"# {title}\n\n" + table.to_markdown(index=False, floatfmt=".4f") + "\n\n"
    text += "".join(f"- {note}\n" for note in notes)
    for name, section in (sections or {}).items():
        text += f"\n## {name}\n\n" + section.to_markdown(index=False) + "\n"
    with atomic_path(path) as tmp:
        tmp.write_text(text)
