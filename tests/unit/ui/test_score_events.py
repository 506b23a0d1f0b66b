"""The Score page for propensity: a user and items → ranked probabilities with their drivers;
the raw feature form only behind "advanced"."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

import opslens
from opslens.synthetic.clickstream import clickstream_frame

PAGE = str(Path(__file__).resolve().parents[3] / "src/opslens/ui/pages/score.py")
OPTIONS = {"num_users": 400, "num_items": 30, "num_days": 30}
PROJECT = f"""\
tracking: {{enabled: false}}
analyses:
  - name: shop
    recipe: propensity
    source: {{kind: synthetic, generator: clickstream, seed: 5, options: {OPTIONS}}}
    params:
      features: {{lookback: 7d, horizon: 3d}}
      models: {{n_estimators: 20, bootstrap: 100}}
"""


@pytest.fixture(scope="module")
def project_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("score_events") / "project.yaml"
    path.write_text(PROJECT.replace("'", '"'))
    opslens.run(path, analysis="shop")
    return path


@pytest.fixture
def page(project_file: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("OPSLENS_PROJECT", str(project_file))
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.run()
    assert not at.exception
    return at


@pytest.mark.slow
def test_a_user_and_items_are_scored_from_their_events(page: AppTest, project_file: Path) -> None:
    at = page
    assert not at.number_input  # no raw 48-feature form unless asked for
    raw = clickstream_frame(seed=5, **OPTIONS)
    user = str(raw["user_id"][-1])
    at.selectbox(key="score_user").set_value(user).run()
    items = at.multiselect(key="score_items").value
    assert items  # the user's recent items by default
    at.button(key="score_events").click().run()
    assert not at.exception and not at.error
    table = at.dataframe[0].value
    assert list(table.columns) == ["item", "probability", "category", "drivers"]
    assert sorted(table["item"]) == sorted(items)
    probs = list(table["probability"])
    assert probs == sorted(probs, reverse=True) and all("(" in d for d in table["drivers"])
    model = opslens.load_predictor(project_file, "shop")
    scorer = model.online_scorer(
        opslens.load_project(project_file).analysis("shop"),
        raw,  # type: ignore[attr-defined]
    )
    at_time = raw["timestamp"].max() + timedelta(seconds=1)
    expected = scorer.predict(user, items, at_time.isoformat())
    assert [r["item_id"] for r in expected["items"]] == list(table["item"])
    assert [round(r["probability"], 4) for r in expected["items"]] == probs


@pytest.mark.slow
def test_a_new_user_is_a_cold_start_and_advanced_shows_the_raw_form(page: AppTest) -> None:
    at = page
    at.selectbox(key="score_user").set_value("a new user (no history)").run()
    at.button(key="score_events").click().run()
    assert not at.exception
    assert any("cold start" in i.value for i in at.info)
    at.toggle(key="score_advanced").set_value(True).run()
    assert len(at.number_input) >= 40  # the raw feature form, only now


@pytest.mark.slow
def test_uploaded_events_change_the_answer(page: AppTest) -> None:
    at = page
    raw = clickstream_frame(seed=5, **OPTIONS)
    last = raw["timestamp"].max()
    events = pl.DataFrame(
        {
            "user_id": ["visitor-1"] * 6,
            "item_id": ["i00002"] * 5 + ["i00003"],
            "event_type": ["view", "view", "add_to_cart", "view", "view", "wishlist"],
            "timestamp": [last + timedelta(minutes=m) for m in range(6)],
        }
    )
    at.file_uploader(key="score_events_upload").set_value(
        ("e.csv", events.write_csv().encode(), "text/csv")
    ).run()
    assert any("5 of 6 uploaded events added" in c.value for c in at.caption)
    assert any("wishlist" in w.value for w in at.warning)
    at.selectbox(key="score_user").set_value("visitor-1").run()
    at.button(key="score_events").click().run()
    assert not at.exception and not at.info  # not a cold start any more
