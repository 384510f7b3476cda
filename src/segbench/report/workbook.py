"""comparison.xlsx with openpyxl: one table per sheet, each with a bold frozen header row, an autofilter,
number formats (integers as integers, p-values with 4 decimals), and a print set-up that fits one page wide
in landscape, repeating the header on every page. Opens cleanly in Excel and LibreOffice (a test converts it
with LibreOffice)."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
from openpyxl import Workbook
from openpyxl.formatting.rule import ColorScaleRule
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from segbench.io import atomic_path, xlsx_bytes
from segbench.report.tables import INTEGERS

HEADER = PatternFill("solid", fgColor="DDE6F0")
WIDEST = 60  # characters: a wider column's text wraps


def _flat(frame: pd.DataFrame) -> pd.DataFrame:
    """Interval columns (tuples) as two number columns, "<name> low" and "<name> high"."""
    out = {}
    for column in frame.columns:
        values = frame[column]
        if values.map(lambda v: isinstance(v, tuple)).any():
            out[f"{column} low"] = values.map(lambda v: v[0] if isinstance(v, tuple) else None)
            out[f"{column} high"] = values.map(lambda v: v[1] if isinstance(v, tuple) else None)
        else:
            out[column] = values
    return pd.DataFrame(out)


def _format(column: str) -> str:
    name = column.lower()
    if name in INTEGERS or name.startswith("n "):
        return "#,##0"
    if name.startswith(("p ", "p_")):
        return "0.0000"
    return "0.000"


def sheet(book: Workbook, title: str, frame: pd.DataFrame, note: str | None = None):
    """A sheet holding ``frame`` under an optional note: bold frozen header, autofilter, number formats, fit to
    one page wide in landscape with the header repeated."""
    ws = book.create_sheet(title[:31])
    frame = _flat(frame.reset_index(drop=True))
    start = 1
    if note:
        ws.cell(1, 1, note).font = Font(italic=True)
        start = 3
    for c, name in enumerate(frame.columns, start=1):
        cell = ws.cell(start, c, str(name))
        cell.font, cell.fill = Font(bold=True), HEADER
        cell.alignment = Alignment(wrap_text=True, vertical="top")
    for r, row in enumerate(frame.itertuples(index=False), start=start + 1):
        for c, (name, value) in enumerate(zip(frame.columns, row), start=1):
            if isinstance(value, (list, dict)):
                value = str(value)
            elif isinstance(value, bool):
                value = "yes" if value else "no"
            elif value is None or (isinstance(value, float) and math.isnan(value)):
                value = None
            cell = ws.cell(r, c, value.item() if hasattr(value, "item") else value)
            if isinstance(cell.value, (int, float)):
                cell.number_format = _format(str(name))
    ws.freeze_panes = ws.cell(start + 1, 1)
    last = get_column_letter(max(1, len(frame.columns)))
    ws.auto_filter.ref = f"A{start}:{last}{start + max(1, len(frame))}"
    wrap = Alignment(wrap_text=True, vertical="top")
    for c, name in enumerate(frame.columns, start=1):
        longest = max([len(str(name)) // 2 + 2] + [len(str(v)) for v in frame.iloc[:200, c - 1]])
        width = min(WIDEST, max(8, longest + 2))
        ws.column_dimensions[get_column_letter(c)].width = width
        if longest + 2 > width:  # long text wraps inside its cell instead of running off the printed page
            for (cell,) in ws.iter_rows(min_row=start + 1, min_col=c, max_col=c):
                cell.alignment = wrap
    ws.page_setup.orientation = "landscape"
    ws.page_setup.fitToWidth, ws.page_setup.fitToHeight = 1, 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.print_title_rows = f"{start}:{start}"
    return ws


def write(path: Path, tables: dict[str, tuple[pd.DataFrame, str]], matrix: pd.DataFrame, setup: dict[str, str],
          matrix_note: str = "Mean test Dice: architectures (rows) x losses (columns).") -> None:
    """Sheets: summary (verdict, set-up, definitions), then one per table of ``tables`` (title -> (frame, note)),
    the Dice matrix with a colour scale among them."""
    book = Workbook()
    book.remove(book.active)
    sheet(book, "summary", pd.DataFrame({"item": list(setup), "value": list(setup.values())}))
    for title, (frame, note) in tables.items():
        sheet(book, title, frame, note)
    ws = sheet(book, "dice matrix", matrix.reset_index(), matrix_note)
    last = f"{get_column_letter(matrix.shape[1] + 1)}{matrix.shape[0] + 3}"
    ws.conditional_formatting.add(f"B4:{last}", ColorScaleRule(start_type="min", start_color="F8696B",
                                                               mid_type="percentile", mid_value=50,
                                                               mid_color="FFEB84", end_type="max",
                                                               end_color="63BE7B"))
    with atomic_path(path) as tmp:
        tmp.write_bytes(xlsx_bytes(book))
