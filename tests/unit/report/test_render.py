"""report.html: self-contained, numbers from facts, the right narrative, reused stages marked."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import pytest
from markupsafe import escape

import opslens
from opslens.errors import RunError
from opslens.explain.text import fmt
from opslens.report.narrators.template import TemplateNarrator, generic_narrative
from opslens.report.render import render_report, write_report
from opslens.runner import RunResult
from opslens.synthetic.trips import make_trips
from opslens.tracking.runs import RunWriter, open_run

KW: dict[str, Any] = {
    "recipe": "distribution",
    "columns": {"target": "duration_min", "categorical": ["route", "hour_band"]},
    "params": {"min_combination_size": 20, "xgboost": {"n_estimators": 10}},
}
PLOTS = [
    "cluster_profiles",
    "confusion_matrix",
    "holdout_scores",
    "initial_distributions",
    "k_selection",
]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[RunResult, RunResult]:
    """A full distribution run, then a rerun of its classify stage only (the rest reused)."""
    root = tmp_path_factory.mktemp("report-runs")
    trips = make_trips(n_rows=3000, seed=1, n_routes=3).trips
    full = opslens.run(trips, runs_dir=root, **KW)
    partial = opslens.run(trips, runs_dir=root, stages=["classify"], **KW)
    return full, partial


def _captions(html: str) -> list[str]:
    return re.findall(r"<figcaption>(.*?)</figcaption>", html)


# --- a real run ----------------------------------------------------------------------------


@pytest.mark.slow
def test_the_report_embeds_every_plot_and_links_nothing(runs: tuple[RunResult, RunResult]) -> None:
    full, _ = runs
    path = write_report(full.view)
    assert path == full.path / "report.html"
    assert not (full.path / "report.html.part").exists()
    html = path.read_text(encoding="utf-8")

    assert sorted(p.stem for p in full.view.plots()) == PLOTS
    for plot in full.view.plots():
        encoded = base64.b64encode(plot.read_bytes()).decode("ascii")
        alt = plot.stem.replace("_", " ")
        assert f'<img alt="{alt}" src="data:image/png;base64,{encoded}">' in html
    assert html.count("<img ") == len(PLOTS)
    # self-contained: every src is inline data, no links to fetch, no scripts
    assert re.findall(r'src="([a-z]+):', html) == ["data"] * len(PLOTS)
    assert "http://" not in html
    assert "https://" not in html
    assert "<link" not in html
    assert "<script" not in html
    assert "@import" not in html
    assert "url(" not in html


@pytest.mark.slow
def test_the_report_states_the_numbers_of_facts(runs: tuple[RunResult, RunResult]) -> None:
    full, _ = runs
    facts = full.facts
    html = render_report(full.view)
    prep, clf, k = facts["prepare"], facts["classify"], facts["choose_k"]["k"]

    assert "<title>analysis: distribution patterns · opslens report</title>" in html
    assert f"run {full.run_id} · recipe distribution" in html
    assert "narrator: template" in html
    scores = clf["holdout_scores"]["blended"]
    summary = (
        f"{k} patterns of 'duration_min' across {prep['combinations_kept']} "
        f"combinations of {prep['categorical'][0]} and {prep['categorical'][1]}."
    )
    assert fmt(scores["log_score"]) in html
    assert f'<div class="summary">{escape(summary)}' in html
    assert prep["rows_read"] == 3000
    assert "3,000 rows from the in-memory frame &#39;analysis&#39;" in html
    assert (
        f"Scored on {clf['test_combinations']} combinations it did not see in training "
        f"({fmt(clf['test_rows'])} rows)"
    ) in html
    assert escape(facts["choose_k"]["reason"]) in html
    for cluster in facts["cluster"]["clusters"]:
        assert f"<td>{fmt(cluster['n_rows'])}</td>" in html
        assert f"<td>{fmt(cluster['median'])}</td>" in html
    # a full run reuses nothing
    assert 'class="note"' not in html
    assert "reused" not in html
    assert _captions(html) == [
        "initial distributions",
        "k selection",
        "cluster profiles",
        "holdout scores",
        "confusion matrix",
    ]


@pytest.mark.slow
def test_a_partial_rerun_marks_what_it_reused(runs: tuple[RunResult, RunResult]) -> None:
    full, partial = runs
    html = render_report(partial.view)
    assert re.findall(r'<div class="note">(.*?)</div>', html) == [
        "This run reran only some stages; the results of prepare, quantize, choose_k, cluster "
        f"are reused from run(s) {full.run_id} and marked below."
    ]
    assert _captions(html) == [
        f"initial distributions · reused from run {full.run_id}",
        f"k selection · reused from run {full.run_id}",
        f"cluster profiles · reused from run {full.run_id}",
        "holdout scores",
        "confusion matrix",
    ]
    assert partial.run_id not in "".join(_captions(html))


# --- the narrative of a recipe this version does not know ---------------------------------------


def _unknown_facts() -> dict[str, Any]:
    return {
        "analysis": {
            "name": "shops",
            "recipe": "nosuch",
            "run_id": "20260101T000000Z-aaaa",
            "source": "file shops.csv",
        },
        "train": {"rows": 1200, "rmse": 0.53, "k": 3, "names": ["a", "b"], "ok": True},
        "score": {"threshold": 0.25, "nested": {"x": 1}},
        "notes": "not a stage",
    }


def test_an_unknown_recipe_gets_the_generic_narrative() -> None:
    facts = _unknown_facts()
    n = TemplateNarrator().narrate(facts, ["train_curve", "overview"])
    assert n.title == "shops: nosuch analysis"
    assert n.summary == (
        "Facts of run 20260101T000000Z-aaaa of the nosuch recipe from file shops.csv."
    )
    assert [s.title for s in n.sections] == ["train", "score", "Figures"]
    train, score, figures = n.sections
    assert train.table is not None
    assert train.table.columns == ["fact", "value"]
    assert train.table.rows == [["rows", "1,200"], ["rmse", "0.53"], ["k", "3"], ["ok", "yes"]]
    assert train.plots == ["train_curve"]
    assert score.table is not None
    assert score.table.rows == [["threshold", "0.25"]]
    assert score.plots == []
    assert figures.plots == ["overview"]
    assert n == generic_narrative(facts, ["train_curve", "overview"])
    text = repr(n)
    assert "patterns of" not in text
    assert "distribution" not in text


def test_facts_without_a_recipe_get_the_generic_narrative() -> None:
    n = TemplateNarrator().narrate({"analysis": {"name": "x"}, "s": {"a": 1}}, [])
    assert n.title == "x: unknown analysis"
    assert [s.title for s in n.sections] == ["s"]


@pytest.mark.slow
def test_a_known_recipe_gets_its_own_narrative(runs: tuple[RunResult, RunResult]) -> None:
    facts = runs[0].facts
    n = TemplateNarrator().narrate(facts, [])
    assert n.title == "analysis: distribution patterns"
    assert n.summary.startswith(f"{facts['choose_k']['k']} patterns of 'duration_min'")


def test_facts_their_model_rejects_are_an_error_naming_the_field(tmp_path: Path) -> None:
    writer = RunWriter(tmp_path, "eta", "20260101T000000Z-aaaa")
    writer.write_json("manifest.json", {"status": "complete"})
    writer.write_json(
        "facts.json",
        {
            "analysis": {"name": "eta", "recipe": "fleet", "run_id": writer.run_id},
            "rare": {"devices": 60, "no_such_fact": 1},
        },
    )
    writer.commit()
    with pytest.raises(RunError) as raised:
        write_report(open_run(tmp_path, "eta"))
    message = str(raised.value)
    assert "facts.json does not match the fleet recipe's facts model at 'rare." in message
    assert "\n" not in message
    assert not (tmp_path / "eta" / writer.run_id / "report.html").exists()


def test_the_report_of_an_unknown_recipe_is_not_a_distribution_report(tmp_path: Path) -> None:
    writer = RunWriter(tmp_path, "shops", "20260101T000000Z-aaaa")
    figure, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    writer.write_plot("train_curve", figure)
    plt.close(figure)
    writer.write_json("manifest.json", {"status": "complete"})
    writer.write_json("facts.json", _unknown_facts())
    writer.commit()

    html = render_report(open_run(tmp_path, "shops"))
    assert "<h1>shops: nosuch analysis</h1>" in html
    assert "recipe nosuch" in html
    assert "<h2>train</h2>" in html
    assert "<td>rows</td><td>1,200</td>" in html
    assert html.count("<img ") == 1
    assert _captions(html) == ["train curve"]
    assert "distinct patterns" not in html
    assert "distribution patterns" not in html
    assert "AUROC" not in html


# --- reused stages and plots marked from the manifest ----------------------------------------------


def test_a_manifest_that_marks_reuse_gets_the_note_and_the_captions(tmp_path: Path) -> None:
    old = "20250101T000000Z-0ld0"
    writer = RunWriter(tmp_path, "eta", "20260101T000000Z-aaaa")
    for name in ("k_selection", "confusion_matrix"):
        figure, ax = plt.subplots()
        ax.bar([0, 1], [1, 2])
        writer.write_plot(name, figure)
        plt.close(figure)
    writer.write_json(
        "manifest.json",
        {
            "status": "complete",
            "stages": {
                "prepare": {"status": "reused", "run_id": old},
                "choose_k": {"status": "reused", "run_id": old},
                "classify": {"status": "ran", "run_id": writer.run_id, "seconds": 0.1},
            },
            "artifacts": {
                "plots/k_selection.png": {"stage": "choose_k", "run_id": old, "status": "reused"},
                "plots/confusion_matrix.png": {
                    "stage": "classify",
                    "run_id": writer.run_id,
                    "status": "produced",
                },
            },
        },
    )
    writer.write_json(
        "facts.json",
        {
            "analysis": {"name": "eta", "recipe": "nosuch", "run_id": writer.run_id},
            "prepare": {"rows_read": 100, "target": "minutes"},
            "choose_k": {"k": 2, "reason": "K=2 has the highest silhouette score"},
            "classify": {"accuracy": 0.9, "auroc_weighted": 0.95, "test_rows": 25},
        },
    )
    writer.commit()

    html = write_report(open_run(tmp_path, "eta")).read_text(encoding="utf-8")
    assert re.findall(r'<div class="note">(.*?)</div>', html) == [
        "This run reran only some stages; the results of prepare, choose_k are reused "
        f"from run(s) {old} and marked below."
    ]
    assert _captions(html) == ["confusion matrix", f"k selection · reused from run {old}"]
    assert html.count(f"reused from run {old}") == 1


def test_a_manifest_without_stages_or_artifacts_marks_nothing(tmp_path: Path) -> None:
    writer = RunWriter(tmp_path, "eta", "20260101T000000Z-aaaa")
    figure, ax = plt.subplots()
    ax.bar([0, 1], [1, 2])
    writer.write_plot("k_selection", figure)
    plt.close(figure)
    writer.write_json("manifest.json", {"status": "complete"})
    writer.write_json(
        "facts.json",
        {
            "analysis": {"name": "eta", "recipe": "nosuch", "run_id": writer.run_id},
            "choose_k": {"k": 2, "reason": "K=2"},
        },
    )
    writer.commit()
    html = render_report(open_run(tmp_path, "eta"))
    assert 'class="note"' not in html
    assert _captions(html) == ["k selection"]
