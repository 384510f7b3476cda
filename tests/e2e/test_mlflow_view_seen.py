"""The MLflow view `segbench report` links to, in the live MLflow UI in a real headless Chromium: the sweep's
training runs, best test Dice first, with the headline columns showing. Keeps its screenshot in build/screenshots/."""

import shutil

import pytest

from support import mlflow_server
from support.browser import BROWSER, SCREENSHOTS, open_page


@pytest.mark.skipif(not BROWSER, reason="Chromium (Debian's chromium) is not installed")
def test_the_printed_link_opens_the_runs_with_the_headline_columns(swept, tmp_path):
    from segbench.tracking import VIEW_COLUMNS, Tracker

    shutil.copy(swept / "mlflow.db", tmp_path / "mlflow.db")  # the swept project's store, read by a live server
    with mlflow_server(f"sqlite:///{tmp_path}/mlflow.db", tmp_path, workers=1) as url:  # one browser: one worker
        tracker = Tracker("synthetic", "tiny", uri=url)
        link = tracker.view_url()
        assert link.startswith(url) and "viewStateShareKey=segbench-synthetic-tiny" in link
        children = tracker.client.search_runs([tracker.experiment_id()], "tags.`segbench.role` = 'pair'")
        assert all(set(VIEW_COLUMNS) <= set(run.data.metrics) for run in children)
        with open_page(link, width=1600, height=900, expected=("status of 404",)) as page:  # the UI probes extras
            page.wait_for_selector(f"text={children[0].info.run_name}", timeout=60_000)
            header = page.locator("[role=columnheader]").all_inner_texts()
            shown = [m for m in VIEW_COLUMNS if any(m in h for h in header)]
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / "mlflow.png"))
            assert shown == list(VIEW_COLUMNS), header
            names = page.locator("[role=row] a").all_inner_texts()
            assert sum(run.info.run_name in names for run in children) == len(children)  # the runs, flat
