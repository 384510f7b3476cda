"""comparison.xlsx with openpyxl: frozen header rows, number formats, autofilters, a colour scale on the
architecture x loss matrix. Opens cleanly in Excel and LibreOffice (a test converts it with LibreOffice)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from openpyxl import Workbook
from openpyxl.formatting.rule import ColorScaleRule
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from segbench.io import atomic_path, xlsx_bytes

HEADER = PatternFill("solid", fgColor="DDE6F0")
INTEGER_COLUMNS = {"rank", "seed", "fold", "epochs", "best_epoch", "n", "epoch"}


def _sheet(book: Workbook, title: str, frame: pd.DataFrame, note: str | None = None, index: bool = False):
    """A sheet holding ``frame`` under an optional note: bold frozen header, autofilter, number formats."""
    sheet = book.create_sheet(title[:31])
    if index:
        frame = frame.reset_index()
    start = 1
    if note:
        sheet.cell(1, 1, note).font = Font(italic=True)
        start = 3
    for c, name in enumerate(frame.columns, start=1):
        cell = sheet.cell(start, c, str(name))
        cell.font, cell.fill = Font(bold=True), HEADER
        cell.alignment = Alignment(wrap_text=True, vertical="top")
    for r, row in enumerate(frame.itertuples(index=False), start=start + 1):
        for c, (name, value) in enumerate(zip(frame.columns, row), start=1):
            if isinstance(value, (list, dict)):
                value = str(value)
            elif pd.isna(value) if not isinstance(value, str) else False:
                value = None
            cell = sheet.cell(r, c, value.item() if hasattr(value, "item") else value)
            if isinstance(cell.value, float):
                cell.number_format = "0" if str(name) in INTEGER_COLUMNS else "0.0000"
    sheet.freeze_panes = sheet.cell(start + 1, 1)
    if len(frame):
        sheet.auto_filter.ref = f"A{start}:{get_column_letter(len(frame.columns))}{start + len(frame)}"
    for c, name in enumerate(frame.columns, start=1):
        width = max([len(str(name))] + [len(str(v)) for v in frame.iloc[:200, c - 1]])
        sheet.column_dimensions[get_column_letter(c)].width = min(45, max(8, width + 2))
    return sheet


def write(path: Path, table: pd.DataFrame, matrix: pd.DataFrame, strata: pd.DataFrame,
          statistics: dict[str, pd.DataFrame], per_image: pd.DataFrame, counts: pd.DataFrame,
          runs: pd.DataFrame, setup: dict[str, str]) -> None:
    """Sheets: summary, comparison, dice matrix (colour scale), strata, statistics, per image, split counts, runs."""
    book = Workbook()
    book.remove(book.active)
    _sheet(book, "summary", pd.DataFrame({"item": list(setup), "value": list(setup.values())}))
    _sheet(book, "comparison", table, "One row per pair, best mean test Dice first.")
    sheet = _sheet(book, "dice matrix", matrix, "Mean test Dice: architectures (rows) x losses (columns).",
                   index=True)
    last = f"{get_column_letter(matrix.shape[1] + 1)}{matrix.shape[0] + 3}"
    sheet.conditional_formatting.add(f"B4:{last}", ColorScaleRule(start_type="min", start_color="F8696B",
                                                                  mid_type="percentile", mid_value=50,
                                                                  mid_color="FFEB84", end_type="max",
                                                                  end_color="63BE7B"))
    _sheet(book, "strata", strata, "Mean test metrics per stratum value (images with a lesion).")
    row = 1
    stats_sheet = book.create_sheet("statistics")
    for title, frame in statistics.items():
        stats_sheet.cell(row, 1, title).font = Font(bold=True)
        for c, name in enumerate(frame.columns, start=1):
            stats_sheet.cell(row + 1, c, str(name)).fill = HEADER
        for r, values in enumerate(frame.itertuples(index=False), start=row + 2):
            for c, value in enumerate(values, start=1):
                value = value.item() if hasattr(value, "item") else value
                cell = stats_sheet.cell(r, c, None if isinstance(value, float) and value != value else value)
                if isinstance(cell.value, float):
                    cell.number_format = "0.0000"
        row += len(frame) + 3
    stats_sheet.column_dimensions["A"].width = 40
    _sheet(book, "per image", per_image, "Every test image of every pair and seed.")
    _sheet(book, "split counts", counts, "Images per class and subset.")
    columns = [c for c in ("pair", "seed", "fold", "epochs", "best_epoch", "best_val_dice", "train_seconds",
                           "device", "mlflow_run_id") if c in runs]
    _sheet(book, "runs", runs[columns], "Training runs and their MLflow run ids.")
    with atomic_path(path) as tmp:
        tmp.write_bytes(xlsx_bytes(book))
