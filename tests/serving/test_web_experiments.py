"""The experiment page of `movierec serve` in Debian chromium (Playwright): it renders a
report from the store, with its SVG charts, and a screenshot is taken."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest
import yaml
from serving.test_web import _free_port, _get, _shot, browser, shots  # noqa: F401 (fixtures)
from serving_data import build_run

from movierec.serving.abtest import Experiment
from movierec.serving.store import Store

pytestmark = [pytest.mark.browser, pytest.mark.slow]

EXPERIMENTS = [
    {"name": "pop-vs-ease", "variants": {"control": "popularity", "treatment": "ease"},
     "guardrails": ["mean_rating"]},
    {"name": "il", "unit": "session", "mode": "interleave",
     "variants": {"ials": "ials", "ease": "ease"}},
]  # fmt: skip


def _fill(store: Store, seed: int = 0) -> None:
    """Six days of a pop-vs-ease test (the treatment clicks more) and of an interleaving."""
    rng = np.random.default_rng(seed)
    ab, il = (Experiment.model_validate(e) for e in EXPERIMENTS)
    store.save_experiments([ab.definition(), il.definition()])
    t0 = 1_700_000_000
    rows, events = [], []
    for u in range(240):
        v = ab.assign(u)
        day = u % 6
        for j in range(2):
            rid = f"ab{u}-{j}"
            items = [[7 + 10 * ((u + p) % 40), p + 1] for p in range(5)]
            ts = t0 + (day + j) * 86_400 + u
            rows.append({"request_id": rid, "unit": f"user:{u}", "experiment": ab.name,
                         "variant": v, "model_version": "x", "items": items, "ts": ts,
                         "pre": float(u % 11)})  # fmt: skip
            p = 0.12 if v == "treatment" else 0.06
            for m, _ in items:
                if rng.random() < p:
                    events.append((rid, m, "click", None, ts + 5))
                    events.append((rid, m, "rating", float(rng.integers(6, 11)) / 2, ts + 6))
        rid = f"il{u}"
        teams = ["ials" if (u + p) % 2 else "ease" for p in range(5)]
        items = [[7 + 10 * ((u + p) % 40), p + 1] for p in range(5)]
        ts = t0 + day * 86_400 + u
        rows.append({"request_id": rid, "unit": f"session:s{u}", "experiment": il.name,
                     "variant": "interleaved", "model_version": "x", "items": items,
                     "ts": ts, "teams": teams})  # fmt: skip
        for (m, _), t in zip(items, teams, strict=True):
            if rng.random() < (0.3 if t == "ease" else 0.15):
                events.append((rid, m, "click", None, ts + 5))
    store.add_exposures(rows)
    for rid, m, typ, val, ts in events:
        store.add_outcome(rid, m, typ, val, ts=ts)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("abweb")
    run = build_run(root)
    cfg = root / "serve.yaml"
    cfg.write_text(yaml.safe_dump({"experiments": EXPERIMENTS}, sort_keys=False))
    url_db = f"sqlite:///{root / 'fb.db'}"
    with Store(url_db) as s:
        _fill(s)
    port = _free_port()
    env = {**os.environ, "NUMBA_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "movierec.cli", "serve", str(run), "--host", "127.0.0.1",
           "--port", str(port), "--db", url_db, "--config", str(cfg)]  # fmt: skip
    log = open(root / "server.log", "wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while _get(url + "/ready") != 200:
            if proc.poll() is not None or time.monotonic() > deadline:
                log.flush()
                raise RuntimeError(
                    "movierec serve did not start:\n" + (root / "server.log").read_text()
                )
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_experiment_page_renders_with_its_plots(server, browser, shots) -> None:  # noqa: F811
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server + "/")
    page.wait_for_selector("body[data-ready=true]")
    page.get_by_role("link", name="Experiments").click()
    page.wait_for_selector("body[data-ready=true]")
    assert page.locator("#exp-title").inner_text() == "Experiment pop-vs-ease"
    assert "Sample ratio check passed" in page.locator("#srm").inner_text()
    assert "Stopping now is valid" in page.locator("#verdict").inner_text()
    # the cumulative lift: a band and a line over the six daily looks
    chart = page.locator("#lift-chart svg")
    assert int(chart.get_attribute("data-points")) == 7
    assert page.locator("#lift-chart polygon.band").count() == 1
    assert page.locator("#lift-chart circle.dot").count() == 7
    # per-variant bars with intervals
    assert page.locator("#bars-chart rect.bar").count() == 2
    assert page.locator("#bars-chart line.whisker").count() == 6
    assert page.locator("#variants tr").count() == 3
    assert page.locator("#comparisons tr[data-metric=ctr] td").count() == 6
    extras = page.locator("#extras").inner_text()
    assert "always-valid p" in extras and "CUPED" in extras and "Minimum detectable" in extras
    _shot(page, shots / "20-experiment-ab.png", full_page=True)

    page.locator("body").evaluate("b => b.dataset.ready = 'false'")
    page.get_by_label("Experiment").select_option("il")
    page.wait_for_selector("body[data-ready=true]")
    assert page.locator("#exp-title").inner_text() == "Experiment il"
    assert "Preference for ease" in page.locator("#extras").inner_text()
    assert page.locator("#lift-chart polygon.band").count() == 1
    assert page.locator("#bars-chart rect.bar").count() == 2
    assert page.locator("#comparisons-panel").is_hidden()
    _shot(page, shots / "21-experiment-interleave.png", full_page=True)
    assert not errors, errors
    page.close()
