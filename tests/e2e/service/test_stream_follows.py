"""`stream --from registry` follows promotions: a version promoted while the stream runs
answers the lines after it, and every line names the run that answered it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import pytest

from opslens.api import load_project
from opslens.online.stream import stream_instances
from opslens.runner import run_analysis
from opslens.synthetic.trips import make_trips
from opslens.tracking.models import load_registered

pytestmark = pytest.mark.slow

PROJECT = """
tracking: {uri: "sqlite:///mlflow.db"}
analyses:
  - name: trip-eta
    recipe: distribution
    source: {kind: file, path: trips.parquet}
    columns: {time: started_at, target: duration_min, categorical: [route, hour_band]}
    params: {min_combination_size: 20, k_max: 4, unit: min, xgboost: {n_estimators: 20}}
"""


class Lines:
    """Instances as JSON lines; after ``promote_after`` lines the champion moves to ``to``."""

    def __init__(self, instances: list[dict[str, Any]], promote_after: int, move: Any) -> None:
        self.instances, self.promote_after, self.move = instances, promote_after, move

    def __iter__(self) -> Iterator[str]:
        for i, instance in enumerate(self.instances):
            if i == self.promote_after:
                self.move()
            yield json.dumps(instance) + "\n"


def test_a_promotion_mid_stream_answers_the_lines_after_it(tmp_path: Path) -> None:
    (tmp_path / "project.yaml").write_text(PROJECT)
    project = load_project(tmp_path / "project.yaml")
    runs = []
    for seed in (0, 1):  # two versions trained on different trips: their answers differ
        make_trips(n_rows=3000, seed=seed, n_routes=3).trips.write_parquet(
            tmp_path / "trips.parquet"
        )
        runs.append(run_analysis(project, "trip-eta", promote=True).run_id)
    uri = project.tracking_uri()
    client = mlflow.MlflowClient(tracking_uri=uri)
    client.set_registered_model_alias("trip-eta", "champion", "1")
    instance = {"route": "R01", "hour_band": "morning"}
    answers = {}
    for v in ("1", "2"):
        client.set_registered_model_alias("trip-eta", "champion", v)
        answers[v] = load_registered(uri, "trip-eta").predictor.predict_one(instance)
    assert answers["1"] != answers["2"]
    client.set_registered_model_alias("trip-eta", "champion", "1")
    out = tmp_path / "answers.jsonl"
    lines = Lines(
        [instance] * 6, 3, lambda: client.set_registered_model_alias("trip-eta", "champion", "2")
    )
    summary = stream_instances(
        project,
        "trip-eta",
        stdin=lines,  # type: ignore[arg-type]
        output=out,
        plots=False,
        model_source="registry",
        refresh_seconds=0.0,
    )
    assert summary.scored == 6
    got = [json.loads(line) for line in out.read_text().splitlines()]
    assert [g["run_id"] for g in got] == [runs[0]] * 3 + [runs[1]] * 3
    for g in got:
        version = "1" if g["run_id"] == runs[0] else "2"
        assert g["cluster"] == answers[version]["cluster"]
        assert g["prediction"] == answers[version]["prediction"]
