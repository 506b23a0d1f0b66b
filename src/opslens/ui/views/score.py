"""The Score page: one instance through an analysis's model, answered as its recipe shows it.

The model is the predictor of the analysis's latest run
(:func:`opslens.api.load_predictor`, cached per run id so a new run is picked
up); the form follows ``predictor.input_schema()``: a text attribute is a
choice of the levels the model was trained on (or any other value), a number a
number input, a fleet device's readings a device of the session's data or an
uploaded CSV; a model that answers from live events (propensity) a user and items
(:mod:`.score_events`, the raw feature form only behind "advanced"). The answer is drawn with the recipe's figure where it offers one,
its probabilities as a bar chart, the whole answer as JSON and the recipe's
explanation where it offers one.

Example:
    >>> from types import SimpleNamespace
    >>> known_levels(SimpleNamespace(classifier=SimpleNamespace(levels_={"route": ["R01", "R02"]})))
    {'route': ['R01', 'R02']}
    >>> known_levels(object())
    {}
    >>> instance_title("eta", {"route": "R01", "hour_band": "morning", "readings": [1, 2]})
    'eta: route=R01, hour_band=morning'
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

import altair as alt
import matplotlib.pyplot as plt
import polars as pl
import streamlit as st

from opslens.api import load_predictor
from opslens.config import ProjectConfig
from opslens.core.predictor import Predictor
from opslens.errors import InstanceError, OpslensError, RunError
from opslens.explain.text import format_metric
from opslens.tracking.runs import open_run
from opslens.ui.images import show_figure
from opslens.ui.state import LoadedData, get_data, project, show_error
from opslens.ui.views.score_events import render_events

__all__ = ["OTHER", "instance_title", "known_levels", "render"]

OTHER = "other…"
RESULT = "opslens_score_result"
FROM_DATA = "A device of the loaded data"
FROM_UPLOAD = "An uploaded CSV of one device"


def known_levels(predictor: Any) -> dict[str, list[str]]:
    """The levels each attribute took in training, where the predictor exposes them."""
    levels = getattr(getattr(predictor, "classifier", None), "levels_", None)
    if not isinstance(levels, Mapping):
        return {}
    return {str(k): [str(v) for v in values] for k, values in levels.items()}


def instance_title(analysis: str, instance: Mapping[str, Any]) -> str:
    """A one-line title of an instance: its scalar fields (lists of readings left out)."""
    fields = [f"{k}={v}" for k, v in instance.items() if not isinstance(v, list | dict)]
    return f"{analysis}: {', '.join(fields)}" if fields else analysis


def _model_run(config: ProjectConfig, name: str) -> str | None:
    """The id of ``name``'s latest run if it holds a model."""
    try:
        run = open_run(config.runs_root(), name)
    except RunError:
        return None
    return run.run_id if run.has("model/model.joblib") else None


@st.cache_resource(show_spinner="Loading the model…", max_entries=16)
def _predictor(_config: ProjectConfig, runs_root: str, analysis: str, run_id: str) -> Predictor:
    """The analysis's predictor; the cache key is the run, so a new run loads its model."""
    return load_predictor(_config, analysis)


def _text_field(name: str, levels: list[str] | None) -> str:
    if not levels:
        return str(st.text_input(name, key=f"score_field_{name}"))
    choice = st.selectbox(name, [*levels, OTHER], key=f"score_field_{name}")
    if choice != OTHER:
        return str(choice)
    return str(st.text_input(f"{name} (a value not seen in training)", key=f"score_other_{name}"))


def _device_readings(predictor: Any, data: LoadedData, device: str) -> list[dict[str, Any]]:
    """The readings of one device of the loaded data, in the columns the model reads."""
    rows = data.frame.filter(pl.col(data.entity).cast(pl.String) == device)
    time = str(getattr(predictor, "time", data.time))
    if data.time != time and time not in rows.columns:
        rows = rows.rename({data.time: time})
    metrics = [str(m) for m in getattr(predictor, "metrics", data.metrics)]
    wanted = [c for c in [time, *metrics] if c in rows.columns]
    return rows.select(wanted).to_dicts()


def _uploaded_readings(entity: str) -> tuple[str | None, list[dict[str, Any]]]:
    upload = st.file_uploader("Readings of one device (CSV)", type=["csv"], key="score_upload")
    given = st.text_input("Device id (if the CSV has no id column)", key="score_device_id")
    if upload is None:
        return None, []
    try:
        frame = pl.read_csv(io.BytesIO(upload.getvalue()), try_parse_dates=True)
    except (pl.exceptions.PolarsError, UnicodeDecodeError, ValueError) as e:
        raise InstanceError(
            f"the uploaded file cannot be read as CSV ({str(e).splitlines()[0]})",
            fix="upload a comma-separated file with a header row",
        ) from None
    device = given or None
    if entity in frame.columns:
        ids = frame[entity].cast(pl.String).drop_nulls().unique().to_list()
        if len(ids) > 1:
            raise InstanceError(
                f"the uploaded file holds {len(ids)} devices",
                fix="upload the readings of one device",
            )
        device = device or (ids[0] if ids else None)
        frame = frame.drop(entity)
    return device or upload.name.rsplit(".", 1)[0], frame.to_dicts()


def _readings_instance(predictor: Any, schema: Mapping[str, str]) -> dict[str, Any] | None:
    """A {device, readings} instance: a device of the loaded data or an uploaded CSV."""
    entity = str(getattr(predictor, "entity", next((k for k in schema if k != "readings"), "id")))
    data = get_data()
    options = [FROM_DATA, FROM_UPLOAD] if data is not None else [FROM_UPLOAD]
    source = st.radio("Readings", options, key="score_readings_source", horizontal=True)
    if source == FROM_DATA and data is not None:
        chosen = st.selectbox("Device", data.devices(), key="score_device")
        if chosen is None:
            return None
        st.caption(f"From {data.label}.")
        return {entity: str(chosen), "readings": _device_readings(predictor, data, str(chosen))}
    if data is None:
        st.caption("Load fleet data on the Data page to pick one of its devices.")
    try:
        uploaded, readings = _uploaded_readings(entity)
    except OpslensError as e:
        show_error(e)
        return None
    return {entity: uploaded, "readings": readings} if uploaded is not None else None


def _instance(predictor: Predictor) -> dict[str, Any] | None:
    """The form: one input per field of the model's input schema."""
    schema = predictor.input_schema()
    if any(kind == "list" for kind in schema.values()):
        return _readings_instance(predictor, schema)
    levels = known_levels(predictor)
    instance: dict[str, Any] = {}
    columns = st.columns(min(max(len(schema), 1), 4))
    for i, (name, kind) in enumerate(schema.items()):
        with columns[i % len(columns)]:
            if kind == "number":
                instance[name] = st.number_input(name, value=0.0, key=f"score_field_{name}")
            else:
                instance[name] = _text_field(name, levels.get(name))
    target = getattr(predictor, "target", None)
    if isinstance(target, str) and target not in schema and predictor.supports("figure"):
        value = st.number_input(
            f"{target} (optional: drawn on the plot)", value=None, key="score_target"
        )
        if value is not None:
            instance[target] = float(value)
    return instance


def _score(predictor: Predictor, name: str, run_id: str, instance: dict[str, Any]) -> None:
    try:
        answer = predictor.predict_one(instance)
        explanation = predictor.explain_one(instance) if predictor.supports("explain_one") else None
    except OpslensError as e:
        st.session_state.pop(RESULT, None)
        show_error(e)
        return
    except Exception as e:  # last resort: never a traceback
        st.session_state.pop(RESULT, None)
        show_error(e)
        return
    st.session_state[RESULT] = {
        "analysis": name,
        "run_id": run_id,
        "instance": instance,
        "answer": answer,
        "explanation": explanation,
    }


def _headline(answer: Mapping[str, Any]) -> None:
    scalars = [(k, v) for k, v in answer.items() if isinstance(v, bool | int | float)][:5]
    for column, (key, value) in zip(st.columns(max(len(scalars), 1)), scalars, strict=False):
        shown = ("yes" if value else "no") if isinstance(value, bool) else format_metric(value)
        column.metric(key, shown)


def _probabilities(probabilities: Mapping[str, float]) -> None:
    st.subheader("Probabilities")
    frame = pl.DataFrame(
        {"pattern": list(probabilities), "probability": [float(p) for p in probabilities.values()]}
    )
    chart = (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X("pattern:N", title="pattern", sort=None),
            y=alt.Y("probability:Q", title="probability", scale=alt.Scale(domain=[0, 1])),
            tooltip=["pattern", alt.Tooltip("probability:Q", format=".3f")],
        )
        .interactive()
    )
    st.altair_chart(chart, width="stretch")


def _explanation(explanation: Mapping[str, Any]) -> None:
    st.subheader("Explanation")
    for key, value in explanation.items():
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            st.caption(key.replace("_", " "))
            st.dataframe(pl.DataFrame(value), hide_index=True)
    st.json(dict(explanation), expanded=False)


def _show(predictor: Predictor, result: Mapping[str, Any]) -> None:
    name, instance, answer = result["analysis"], result["instance"], result["answer"]
    title = instance_title(name, instance)
    st.caption(f"Scored {title}")
    _headline(answer)
    if predictor.supports("figure"):
        try:
            # the caption above names the instance; the figure lists its values under its title
            figure = predictor.figure(instance, answer, title=name)
            show_figure(figure)
            plt.close(figure)
        except Exception as e:  # a figure that cannot be drawn leaves the answer shown
            show_error(e)
    probabilities = answer.get("probabilities")
    if isinstance(probabilities, Mapping) and probabilities:
        _probabilities(probabilities)
    st.subheader("Answer")
    st.json(dict(answer))
    explanation = result.get("explanation")
    if isinstance(explanation, Mapping):
        _explanation(explanation)


def render() -> None:
    """The Score page."""
    st.title("Score")
    config = project()
    if config is None:
        st.info(
            "Scoring uses a project's trained models: start the app with "
            "`opslens ui -p project.yaml`."
        )
        return
    runs = {a.name: _model_run(config, a.name) for a in config.analyses}
    scorable = [name for name, run_id in runs.items() if run_id is not None]
    if not scorable:
        st.info("No analysis of the project has a trained model yet: run one on the Runs page.")
        return
    name = st.selectbox("Analysis", scorable, key="score_analysis")
    if name is None:
        return
    run_id = str(runs[name])
    st.caption(f"The model of run {run_id} ({config.analysis(name).recipe} recipe).")
    try:
        predictor = _predictor(config, str(config.runs_root()), name, run_id)
    except Exception as e:
        show_error(e)
        return
    if predictor.supports("online_scorer") and not st.toggle(
        "advanced: score a raw feature row", key="score_advanced"
    ):
        render_events(config, name, run_id, predictor)
        return
    instance = _instance(predictor)
    if st.button("Score", key="score", type="primary"):
        if instance is None:
            st.warning("Choose the instance to score first.")
        else:
            _score(predictor, name, run_id, instance)
    result = st.session_state.get(RESULT)
    if isinstance(result, Mapping) and (result["analysis"], result["run_id"]) == (name, run_id):
        _show(predictor, result)
