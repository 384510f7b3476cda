"""report.html: one self-contained page (figures embedded as data URIs, nothing fetched; a few lines of script
sort a table by the column clicked).

It fits a 1,280 px window without a horizontal scrollbar: wide tables are split by subject, cells wrap,
and long names break anywhere.
"""

from __future__ import annotations

import base64
import html
import math
from importlib.resources import files
from pathlib import Path

import pandas as pd

from segbench.report.tables import display

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5rem auto; max-width: 1180px;
       color: #222; line-height: 1.45; padding: 0 1rem; }
h1 { margin-bottom: .2rem; font-size: 1.6rem; } h2 { border-bottom: 1px solid #ddd; padding-bottom: .2rem;
margin-top: 2rem; } h3 { font-size: 1rem; margin: 1.2rem 0 .3rem; }
.verdict { background: #eef6ee; border-left: 4px solid #3a7d44; padding: .8rem 1rem; font-size: 1rem; }
.caveats { background: #fff7e0; border-left: 4px solid #d9a400; padding: .5rem 1rem; font-size: .9rem; }
.failed { background: #fde8e6; }
table { border-collapse: collapse; font-size: .78rem; margin: .4rem 0 1rem; width: 100%; }
th, td { border: 1px solid #ddd; padding: .2rem .4rem; text-align: right; vertical-align: top; }
td.num { white-space: nowrap; } td.text { overflow-wrap: break-word; min-width: 4rem; }
th { background: #f2f2f2; cursor: pointer; user-select: none; } th.sorted-up::after { content: " ▲"; }
th.sorted-down::after { content: " ▼"; } td.text, th.text { text-align: left; }
figure { margin: 1rem 0; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: .85rem; color: #444; }
dl { display: grid; grid-template-columns: minmax(8rem, max-content) minmax(0, 1fr); gap: .2rem 1rem;
     font-size: .88rem; } dd { margin: 0; overflow-wrap: anywhere; } dt { font-weight: 600; }
nav { font-size: .9rem; } nav a { margin-right: .7rem; white-space: nowrap; }
p.note { font-size: .85rem; color: #444; }
"""
# Click a header to sort by it (numbers by value, text alphabetically); click again to reverse.
SCRIPT = """
document.querySelectorAll("table.sortable th").forEach((th, column) => th.addEventListener("click", () => {
  const table = th.closest("table"), body = table.tBodies[0], up = !th.classList.contains("sorted-up");
  table.querySelectorAll("th").forEach(h => h.classList.remove("sorted-up", "sorted-down"));
  th.classList.add(up ? "sorted-up" : "sorted-down");
  const key = row => { const cell = row.cells[column], v = cell.dataset.v;
    return v === undefined ? cell.textContent : (v === "" ? Infinity : parseFloat(v)); };
  [...body.rows].sort((a, b) => { const x = key(a), y = key(b);
    const order = typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y));
    return up ? order : -order; }).forEach(row => body.appendChild(row));
}));
"""


def caption(figure: str) -> str:
    """A figure's caption: ``captions/<figure>.rst``, which Snakemake's report shows too."""
    return " ".join(files("segbench.report").joinpath("captions", f"{figure}.rst").read_text().split())


def _sort_value(value) -> str | None:
    """The number a cell sorts by ("" for a missing number), or None for text."""
    if isinstance(value, tuple):
        value = value[0]
    if isinstance(value, bool) or isinstance(value, str):
        return None
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{float(value):.10g}"


def _is_text(column: pd.Series) -> bool:
    """A column of words (which wrap), missing cells aside."""
    present = [v for v in column if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return bool(present) and all(isinstance(v, str) for v in present)


def table(frame: pd.DataFrame, rows_failed: list[bool] | None = None) -> str:
    """A sortable table of ``frame`` as people read it (``tables.display``); failed runs' rows shaded."""
    if frame is None or frame.empty:
        return "<p>(none)</p>"
    shown = display(frame)
    text = [_is_text(frame[c]) for c in frame.columns]
    head = "".join(f'<th class="{"text" if t else "num"}">{_header(str(c))}</th>' for c, t in zip(frame.columns, text))
    body = []
    for i in range(len(frame)):
        cells = []
        for j in range(len(frame.columns)):
            value = _sort_value(frame.iloc[i, j])
            attribute = f' data-v="{value}"' if value is not None else ""
            content = html.escape(shown.iloc[i, j])
            if text[j]:  # long names break after an underscore or a slash, not inside a word
                content = content.replace("_", "_<wbr>").replace("/", "/<wbr>")
            cells.append(f'<td class="{"text" if text[j] else "num"}"{attribute}>{content}</td>')
        shade = ' class="failed"' if rows_failed and rows_failed[i] else ""
        body.append(f"<tr{shade}>{''.join(cells)}</tr>")
    return f'<table class="sortable"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


LONG_NAME = 14  # characters: a longer name in a header (a baseline's run, "nnunet_resenc_m__default") may break


def _header(name: str) -> str:
    """A column header, escaped; its long names break after an underscore (the columns against a baseline are
    headed by its name: two baselines' would widen the page past 1,280 px)."""
    return " ".join(word.replace("_", "_<wbr>") if len(word) > LONG_NAME else word
                    for word in html.escape(name).split(" "))


def definitions(items: dict) -> str:
    return "<dl>" + "".join(f"<dt>{html.escape(str(k))}</dt><dd>{html.escape(str(v))}</dd>"
                            for k, v in items.items()) + "</dl>"


def figure(key: str, path: Path) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode()
    text = html.escape(caption(key))
    return (f'<figure id="fig-{key}"><img alt="{text}" src="data:image/png;base64,{data}">'
            f"<figcaption>{text}</figcaption></figure>")


def note(text: str) -> str:
    return f'<p class="note">{html.escape(text)}</p>'


def page(title: str, verdict: str, caveats: list[str], sections: list[tuple[str, str, str]]) -> str:
    """The whole page: ``sections`` are (anchor, heading, html content)."""
    nav = "".join(f'<a href="#{key}">{html.escape(name)}</a>' for key, name, _ in sections)
    warnings = ("<div class=\"caveats\"><strong>Read with care:</strong><ul>"
                + "".join(f"<li>{html.escape(c)}</li>" for c in caveats) + "</ul></div>") if caveats else ""
    body = "".join(f'<section id="{key}"><h2>{html.escape(name)}</h2>{content}</section>'
                   for key, name, content in sections)
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{STYLE}</style></head>'
            f'<body><h1>{html.escape(title)}</h1><nav>{nav}</nav><p class="verdict">{html.escape(verdict)}</p>'
            f"{warnings}{body}<script>{SCRIPT}</script></body></html>")
