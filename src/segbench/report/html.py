"""report.html: one self-contained page (figures embedded as data URIs, no script, nothing fetched)."""

from __future__ import annotations

import base64
import html
import json
from importlib.resources import files
from pathlib import Path

import pandas as pd

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 1200px;
       color: #222; line-height: 1.45; padding: 0 1rem; }
h1 { margin-bottom: .2rem; } h2 { border-bottom: 1px solid #ddd; padding-bottom: .2rem; margin-top: 2.2rem; }
.verdict { background: #eef6ee; border-left: 4px solid #3a7d44; padding: .8rem 1rem; font-size: 1.05rem; }
table { border-collapse: collapse; font-size: .82rem; margin: .5rem 0 1rem; }
th, td { border: 1px solid #ddd; padding: .25rem .45rem; text-align: right; }
th { background: #f4f4f4; position: sticky; top: 0; } td:nth-child(-n+3) { text-align: left; }
.scroll { overflow-x: auto; max-width: 100%; }
figure { margin: 1rem 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: .85rem; color: #555; }
dl { display: grid; grid-template-columns: max-content auto; gap: .2rem 1rem; font-size: .9rem; }
dt { font-weight: 600; } nav a { margin-right: .8rem; }
"""


def caption(figure: str) -> str:
    """A figure's caption: ``captions/<figure>.rst``, which Snakemake's report shows too."""
    return " ".join(files("segbench.report").joinpath("captions", f"{figure}.rst").read_text().split())


def _table(frame: pd.DataFrame) -> str:
    if frame is None or frame.empty:
        return "<p>(none)</p>"
    body = frame.to_html(index=False, float_format=lambda v: f"{v:.4f}", na_rep="", border=0, escape=True)
    return f'<div class="scroll">{body}</div>'


def _dl(items: dict) -> str:
    return "<dl>" + "".join(f"<dt>{html.escape(str(k))}</dt><dd>{html.escape(str(v))}</dd>"
                            for k, v in items.items()) + "</dl>"


def _figure(key: str, path: Path) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode()
    text = html.escape(caption(key))
    return (f'<figure id="fig-{key}"><img alt="{text}" src="data:image/png;base64,{data}">'
            f"<figcaption>{text}</figcaption></figure>")


def page(title: str, verdict: str, table: pd.DataFrame, figures: dict[str, Path], setup: dict, losses: dict,
         metrics: dict, statistics: dict[str, pd.DataFrame], strata: pd.DataFrame, counts: pd.DataFrame,
         leakage: dict, provenance: dict) -> str:
    """The whole page as a string."""
    figs = {key: _figure(key, path) for key, path in figures.items()}
    stats = "".join(f"<h3>{html.escape(t)}</h3>{_table(f)}" for t, f in statistics.items())
    sections = [
        ("comparison", "Comparison", _table(table) + figs.get("dice_matrix", "")),
        ("distributions", "Per-image results", figs.get("distributions", "") + figs.get("strata", "")),
        ("statistics", "Statistics", figs.get("critical_difference", "") + figs.get("rank_stability", "") + stats),
        ("efficiency", "Accuracy against cost", figs.get("pareto", "")),
        ("training", "Training", figs.get("learning_curves", "")),
        ("cases", "Cases", figs.get("cases", "")),
        ("strata", "Strata", _table(strata)),
        ("setup", "Set-up and definitions", "<h3>Set-up</h3>" + _dl(setup) + "<h3>Losses</h3>" + _dl(losses)
         + "<h3>Metrics</h3>" + _dl(metrics)),
        ("split", "Split", _table(counts) + "<h3>Leakage report</h3><pre>"
         + html.escape(json.dumps(leakage, indent=2)) + "</pre>"),
        ("provenance", "Provenance", _dl(provenance)),
    ]
    nav = "".join(f'<a href="#{key}">{html.escape(name)}</a>' for key, name, _ in sections)
    body = "".join(f'<section id="{key}"><h2>{html.escape(name)}</h2>{content}</section>'
                   for key, name, content in sections)
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{STYLE}</style></head>'
            f'<body><h1>{html.escape(title)}</h1><nav>{nav}</nav><p class="verdict">{html.escape(verdict)}</p>'
            f"{body}</body></html>")
