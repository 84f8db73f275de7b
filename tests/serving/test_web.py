"""The web page of `movierec serve`, driven in Debian chromium by Playwright as a new visitor.

Screenshots of every step go to $MOVIEREC_SCREENSHOTS (default: a pytest tmp folder).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
RATE = [
    "star wars",
    "empire strikes back",
    "return of the jedi",
    "raiders of the lost ark",
    "fargo",
]


def _need(what: str, ok: bool) -> None:
    if ok:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{what} is missing (CI is set, so the browser test may not skip)")
    pytest.skip(f"{what} is missing")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status
    except Exception:
        return 0


@pytest.fixture(scope="module")
def server(ml100k, tmp_path_factory):
    """`movierec serve` on two quick models trained on all of ml-100k; yields its base URL."""
    from movierec import artifacts
    from movierec.models.ease import EASE
    from movierec.models.ials import ImplicitALS

    root = tmp_path_factory.mktemp("serve")
    models = root / "models"
    artifacts.save(EASE().fit(ml100k), models / "ease", train=ml100k)
    ials = ImplicitALS(factors=16, iterations=3, random_state=0).fit(ml100k)
    artifacts.save(ials, models / "ials", train=ml100k)
    port = _free_port()
    env = {**os.environ, "NUMBA_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "movierec.cli", "serve", str(models), "--host", "127.0.0.1"]
    cmd += ["--port", str(port), "--db", f"sqlite:///{root / 'feedback.db'}"]
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


@pytest.fixture(scope="module")
def browser():
    _need("chromium (/usr/bin/chromium)", Path(CHROMIUM).exists())
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _need("playwright (pip install playwright; never its browser download)", False)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    d = os.environ.get("MOVIEREC_SCREENSHOTS")
    folder = Path(d) if d else tmp_path_factory.mktemp("screens")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _shot(page, path: Path, full_page: bool = False) -> None:
    if full_page:
        page.evaluate("window.scrollTo(0, 0)")  # a sticky header stays on top in the capture
    page.screenshot(path=path, full_page=full_page)


def _card_ids(page) -> list[int]:
    return [
        int(x)
        for x in page.locator("#recs > li.card").evaluate_all("e => e.map(c => c.dataset.movieId)")
    ]


def _version(page) -> int:
    return int(page.locator("#recs").get_attribute("data-version") or 0)


def _wait_reload(page, after: int) -> None:
    """Wait until the recommendation list has been re-rendered after version `after`."""
    page.wait_for_function(
        "v => Number(document.querySelector('#recs').dataset.version || 0) > v", arg=after
    )


def _rate_from_search(page, q: str, stars: float) -> int:
    box = page.get_by_role("combobox", name="Search movies")
    box.fill("")
    box.press_sequentially(q, delay=30)
    first = page.locator(f'#search-list[data-query="{q}"] li[data-movie-id]').first
    first.wait_for()
    movie_id = int(first.get_attribute("data-movie-id"))
    first.click()
    dialog = page.locator("#movie-dialog")
    dialog.locator("#dlg-title").wait_for()
    slider = dialog.get_by_role("slider")
    box_ = slider.bounding_box()
    v = _version(page)
    # Click inside the star that gives `stars` (half stars: the left half of a star is .5).
    slider.click(position={"x": box_["width"] * (stars - 0.25) / 5, "y": box_["height"] / 2})
    _wait_reload(page, v)
    assert slider.get_attribute("aria-valuenow") == str(stars).rstrip("0").rstrip(".")
    return movie_id


def test_new_visitor_journey(server, browser, shots):
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server + "/")
    page.wait_for_selector("body[data-ready=true]")
    assert page.locator("#recs-title").inner_text() == "Popular right now"
    before = _card_ids(page)
    assert len(before) == 12
    _shot(page, shots / "01-home.png")

    # Suggestions while typing: "star wars" finds Star Wars (1977).
    box = page.get_by_role("combobox", name="Search movies")
    box.press_sequentially("star wars", delay=40)
    page.locator("#search-list li[data-movie-id]").first.wait_for()
    sugg = page.locator("#search-list li[data-movie-id]").all_inner_texts()
    assert any(s.startswith("Star Wars") for s in sugg), sugg
    _shot(page, shots / "02-search-suggestions.png")

    rated = []
    for i, q in enumerate(RATE):
        rated.append(_rate_from_search(page, q, [5, 4.5, 4, 4.5, 3.5][i]))
        if i == 0:
            _shot(page, shots / "03-movie-rated.png")
        page.locator("#dlg-close").click()
    assert rated[0] == 50  # Star Wars in ml-100k
    assert page.locator("#rated-list li").count() == 5
    assert page.locator("#profile-count").inner_text() == "5"
    after = _card_ids(page)
    assert len(after) == 12 and after != before
    assert not set(after) & set(rated), "rated movies must not be recommended again"
    assert page.locator("#recs-title").inner_text() == "Recommended for you"
    assert "5 ratings" in page.locator("#recs-sub").inner_text()
    because = page.locator("#recs .because").all_inner_texts()
    assert any(b.startswith("Because you rated ") for b in because), because
    _shot(page, shots / "04-recommendations.png", full_page=True)

    # A movie's similar movies, both kinds.
    page.locator("#recs > li.card .title-btn").first.click()
    dialog = page.locator("#movie-dialog")
    dialog.locator(".sim-list li").first.wait_for()
    assert dialog.locator(".sim-list li").count() > 0
    assert (
        dialog.get_by_role("tab", name="Viewers also liked").get_attribute("aria-selected")
        == "true"
    )
    _shot(page, shots / "05-similar-cf.png")
    cf = dialog.locator(".sim-list li").evaluate_all("e => e.map(x => x.dataset.movieId)")
    dialog.get_by_role("tab", name="Similar in content").click()
    page.wait_for_function(
        "() => document.querySelector('#tab-content').getAttribute('aria-selected') === 'true'"
        " && document.querySelector('#sim-panel .sim-list li')"
    )
    content = dialog.locator(".sim-list li").evaluate_all("e => e.map(x => x.dataset.movieId)")
    assert content and content != cf
    _shot(page, shots / "06-similar-content.png")
    page.locator("#dlg-close").click()

    # Genre filter: every shown recommendation has the genre.
    v = _version(page)
    page.locator("#genre-chips").get_by_role("button", name="Comedy", exact=True).click()
    _wait_reload(page, v)
    cards = page.locator("#recs > li.card")
    assert cards.count() > 0
    for genres in cards.locator(".genre-list").all_inner_texts():
        assert "Comedy" in genres.split("\n"), genres
    _shot(page, shots / "07-filter-comedy.png", full_page=True)

    # A favourite movie blends content-similar movies in (hybrid).
    v = _version(page)
    page.locator("#recs > li.card .fav-btn").first.click()
    _wait_reload(page, v)
    assert "favourite" in page.locator("#recs-sub").inner_text()
    assert page.locator("#favorite-box .fav-title").count() == 1

    # Switch model.
    sel = page.get_by_label("Model")
    labels = sel.locator("option").evaluate_all("o => o.map(x => x.value)")
    assert len(labels) >= 2
    other = next(x for x in labels if x != sel.input_value())
    v = _version(page)
    sel.select_option(other)
    _wait_reload(page, v)
    assert page.locator("#recs > li.card").count() > 0
    _shot(page, shots / "08-other-model.png", full_page=True)

    # A known MovieLens user: history and recommendations.
    page.locator("#clear-filters").click()
    v = _version(page)
    page.get_by_label("User id").fill("196")
    page.get_by_role("button", name="Show user").click()
    _wait_reload(page, v)
    page.locator("#rated-list li").first.wait_for()
    assert page.locator("#user-banner").is_visible()
    assert page.locator("#recs-title").inner_text() == "Recommended for user 196"
    assert page.locator("#rated-list li").count() > 0
    assert page.locator("#recs > li.card").count() > 0
    _shot(page, shots / "09-known-user.png", full_page=True)
    assert not errors, errors
    page.close()


def test_phone_layout_and_errors(server, browser, shots):
    ctx = browser.new_context(
        viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    page = ctx.new_page()
    page.goto(server + "/")
    page.wait_for_selector("body[data-ready=true]")
    assert page.locator("#recs > li.card").count() > 0
    # Nothing wider than the phone.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    _shot(page, shots / "10-phone-home.png")
    _shot(page, shots / "11-phone-full.png", full_page=True)

    # Search and a movie's details fit the phone too.
    box = page.get_by_role("combobox", name="Search movies")
    box.press_sequentially("star wars", delay=40)
    page.locator('#search-list[data-query="star wars"] li[data-movie-id]').first.wait_for()
    _shot(page, shots / "12-phone-search.png")
    page.locator('#search-list li[data-movie-id="50"]').click()
    page.locator("#movie-dialog .sim-list li").first.wait_for()
    assert page.locator("#dlg-title").inner_text() == "Star Wars"
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    _shot(page, shots / "13-phone-movie.png")
    page.locator("#dlg-close").click()

    # An unknown movie shows the API's message, not a dump.
    page.evaluate("openMovie(999999)")
    alert = page.locator("#dlg-body [role=alert]")
    alert.wait_for()
    text = alert.inner_text()
    assert "999999" in text and "{" not in text
    page.locator("#dlg-close").click()

    # A year range that excludes everything gives a friendly empty state.
    page.locator("#filters summary").click()
    v = _version(page)
    page.get_by_label("From year").fill("1800")
    page.get_by_label("To year").fill("1801")
    _wait_reload(page, v)
    assert page.locator("#recs-empty").is_visible()
    assert "No movies match these filters" in page.locator("#recs-empty").inner_text()
    _shot(page, shots / "14-phone-empty.png")
    ctx.close()
