"""Property tests: any params a recipe's schema accepts, on small generated data, end in exit 0
or exit 2 with one ``error:`` line, never an internal error (exit 1); and any arguments to any
command of the CLI do the same.

The params are drawn from the recipe's JSON Schema (each number and integer between its
bounds, its bounds included; enums; booleans; null where allowed), a few keys at a time, and
kept when the recipe's params model accepts them (model validators such as split shares
summing to 1 are the model's to judge). Unbounded sizes (trees, resamples) are drawn up to a
small cap so an example stays a few seconds. The budget is small (``OPSLENS_FUZZ_EXAMPLES``
scales it for a long hunt).
"""

from __future__ import annotations

import functools
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from opslens.recipes import get_recipe, params_json_schema
from opslens.synthetic.clickstream import make_clickstream
from opslens.synthetic.patients import FEATURES, make_patients
from opslens.synthetic.trips import make_trips
from tests.fakes.cli import Result, run_cli

pytestmark = pytest.mark.slow

SCALE = int(os.environ.get("OPSLENS_FUZZ_EXAMPLES", "200")) / 200
RUNS = settings(
    max_examples=max(3, int(6 * SCALE)),
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
ARGS = settings(RUNS, max_examples=max(10, int(60 * SCALE)))
CAP = 40
"""Unbounded integers (trees, resamples, windows of rows) are drawn up to this (or their
minimum + this): what matters is the range's lower edge and the default, not the run time."""

Leaf = tuple[tuple[str, ...], st.SearchStrategy[Any]]


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if ref is not None:
        return _resolve(schema, schema["$defs"][ref.rsplit("/", 1)[1]])
    return node


def _number(node: dict[str, Any], integer: bool) -> st.SearchStrategy[Any] | None:
    lo = node.get("minimum", node.get("exclusiveMinimum"))
    hi = node.get("maximum", node.get("exclusiveMaximum"))
    default = node.get("default")
    if not isinstance(default, int | float) or isinstance(default, bool):
        default = None
    if integer:
        lo = 0 if lo is None else int(lo) + (1 if "exclusiveMinimum" in node else 0)
        hi = lo + CAP if hi is None else int(hi) - (1 if "exclusiveMaximum" in node else 0)
        hi = min(hi, lo + CAP) if "maximum" not in node else hi
        edges = [lo, hi] + ([default] if isinstance(default, int) and lo <= default <= hi else [])
        return st.sampled_from(edges) | st.integers(lo, hi)
    low = -1.0 if lo is None else float(lo)  # unbounded below: negatives are drawn too
    high = float(hi) if hi is not None else max(4.0 * float(default or 1.0), low + 1.0)
    return st.floats(
        low,
        high,
        exclude_min="exclusiveMinimum" in node,
        exclude_max="exclusiveMaximum" in node,
        allow_nan=False,
    )


def _leaf(schema: dict[str, Any], node: dict[str, Any]) -> st.SearchStrategy[Any] | None:
    node = _resolve(schema, node)
    if "anyOf" in node:
        options = [_leaf(schema, {**n, "default": node.get("default")}) for n in node["anyOf"]]
        found = [o for o in options if o is not None]
        return st.one_of(found) if found else None
    kind = node.get("type")
    if "enum" in node:
        return st.sampled_from(node["enum"])
    if "const" in node:
        return st.just(node["const"])
    if kind == "null":
        return st.none()
    if kind == "boolean":
        return st.booleans()
    if kind in ("integer", "number"):
        return _number(node, kind == "integer")
    return None  # text, durations, lists, paths: their own tests cover them


def _leaves(schema: dict[str, Any], node: dict[str, Any], path: tuple[str, ...] = ()) -> list[Leaf]:
    node = _resolve(schema, node)
    out: list[Leaf] = []
    for key, child in node.get("properties", {}).items():
        resolved = _resolve(schema, child)
        if resolved.get("type") == "object" and "properties" in resolved:
            out += _leaves(schema, resolved, (*path, key))
            continue
        strategy = _leaf(schema, child)
        if strategy is not None:
            out.append(((*path, key), strategy))
    return out


@st.composite
def params_for(draw: st.DrawFn, recipe: str, base: dict[str, Any]) -> dict[str, Any]:
    """``base`` with up to four leaves drawn from the recipe's schema (the test keeps those the
    params model accepts)."""
    schema = params_json_schema(recipe)
    leaves = _leaves(schema, schema)
    chosen = draw(st.lists(st.sampled_from(range(len(leaves))), max_size=4, unique=True))
    params: dict[str, Any] = yaml.safe_load(yaml.safe_dump(base))
    for i in chosen:
        path, strategy = leaves[i]
        node = params
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = draw(strategy)
    return params


def _accepted(recipe: str, params: dict[str, Any]) -> bool:
    """Whether the recipe's params model accepts ``params`` (its validators have the last word)."""
    try:
        get_recipe(recipe).params_model.model_validate(params)
    except ValidationError:
        return False
    return True


def _one_line_or_success(result: Result) -> None:
    text = result.out + result.err
    assert "Traceback" not in text and "internal error" not in text, text[-2000:]
    assert result.code in (0, 2), (result.code, text[-2000:])
    if result.code == 2:
        lines = [s for s in result.err.splitlines() if s.strip()]
        assert len(lines) == 1 and lines[0].startswith("error:") and "fix:" in lines[0], lines


@pytest.fixture(autouse=True, scope="module")
def _click_command_built_once() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(typer.main, "get_command", functools.cache(typer.main.get_command))
        yield


@pytest.fixture(scope="module")
def data_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("property-data")
    make_trips(n_rows=1_500, seed=2, n_routes=3).trips.write_parquet(folder / "trips.parquet")
    make_patients(n_rows=400, seed=1).frame.write_parquet(folder / "patients.parquet")
    events = make_clickstream(seed=4, num_users=80, num_items=20, num_days=24).events
    events.write_parquet(folder / "events.parquet")
    return folder


RECIPES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "distribution": (
        {
            "source": {"kind": "file", "path": "trips.parquet"},
            "columns": {
                "time": "started_at",
                "target": "duration_min",
                "categorical": ["route", "hour_band"],
            },
        },
        {"min_combination_size": 20, "xgboost": {"n_estimators": 10}},
    ),
    "segments": (
        {
            "source": {"kind": "file", "path": "patients.parquet"},
            "columns": {"target": "next_score", "metrics": list(FEATURES), "categorical": ["ward"]},
        },
        {"lgb_series": {"n_estimators": 10}, "lgb_resource": {"n_estimators": 10}},
    ),
    "fleet": (
        {
            "source": {
                "kind": "synthetic",
                "generator": "fleet",
                "seed": 0,
                "options": {"n_devices": 40, "n_points": 200},
            },
            "columns": {
                "entity": "device_id",
                "time": "timestamp",
                "metrics": ["temperature", "vibration", "current"],
            },
        },
        {"fingerprint": {"window": 24}},
    ),
    "residual": (
        {
            "source": {
                "kind": "synthetic",
                "generator": "axes",
                "seed": 0,
                "options": {"n_samples": 800},
            },
            "columns": {"time": "ts", "metrics": ["axis1", "axis2", "axis3"]},
        },
        {"train_end": "80%", "model": {"type": "linear"}},
    ),
    "propensity": (
        {
            "source": {"kind": "file", "path": "events.parquet"},
            "columns": {
                "entity": "user_id",
                "group": "item_id",
                "target": "event_type",
                "time": "timestamp",
            },
        },
        {
            "features": {"every": "1d", "lookback": "7d", "horizon": "2d"},
            "models": {"n_estimators": 10, "bootstrap": 100},
        },
    ),
}


def _run(folder: Path, recipe: str, params: dict[str, Any]) -> Result:
    analysis, _ = RECIPES[recipe]
    spec = {
        "tracking": {"enabled": False},
        "analyses": [{"name": "prop", "recipe": recipe, **analysis, "params": params}],
    }
    with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as mp:
        here = Path(tmp)
        for f in folder.iterdir():
            (here / f.name).symlink_to(f)
        (here / "project.yaml").write_text(yaml.safe_dump(spec))
        return run_cli(["-q", "run"], here, mp)


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_any_params_the_schema_accepts_run_or_fail_in_one_line(
    recipe: str, data_folder: Path
) -> None:
    params_json_schema(recipe)  # the recipe imported (and its modules' seeding done) first
    _accepted(recipe, RECIPES[recipe][1])

    @RUNS
    @given(params_for(recipe, RECIPES[recipe][1]))
    def check(params: dict[str, Any]) -> None:
        assume(_accepted(recipe, params))
        _one_line_or_success(_run(data_folder, recipe, params))

    check()


def test_the_schema_walk_reaches_the_ranges() -> None:
    """The strategy draws from every bounded knob (so the property is about the ranges)."""
    schema = params_json_schema("segments")
    paths = {".".join(p) for p, _ in _leaves(schema, schema)}
    assert {"test_size", "hdbscan.min_cluster_size", "monitor.alert.noise_ratio"} <= paths


# ----- the CLI's arguments ------------------------------------------------------------------
SKIP = {"serve", "ui", "demo", "stream"}
"""Commands that start a server or a browser, write a demo folder, or read stdin forever."""
VALUES = ["", "-1", "0", "99999", "1e308", "nan", "abc", "prop", "project.yaml", "nope.yaml",
          "trips.parquet", "out.xlsx", ".", "a/#/b", "redis://127.0.0.1:6379/99", "bogus://x",
          "prepare", "train", "latest"]  # fmt: skip


def _commands() -> dict[str, list[tuple[str, bool]]]:
    """Every command path (``models history`` included) → its options (name, is a flag)."""
    from opslens.cli.app import app

    root = typer.main.get_command(app)
    out: dict[str, list[tuple[str, bool]]] = {}

    def walk(cmd: Any, path: list[str]) -> None:  # Typer's own copy of Click: duck-typed
        if hasattr(cmd, "commands"):
            for name, sub in cmd.commands.items():
                walk(sub, [*path, name])
            return
        if path[0] in SKIP:
            return
        opts = [
            (p.opts[0], bool(getattr(p, "is_flag", False)))
            for p in cmd.params
            if type(p).__name__.endswith("Option")
        ]
        out[" ".join(path)] = opts

    walk(root, [])
    return out


@st.composite
def arguments(draw: st.DrawFn) -> list[str]:
    commands = _commands()
    name = draw(st.sampled_from(sorted(commands)))
    args = name.split()
    args += draw(st.lists(st.sampled_from(VALUES), max_size=2))
    for opt, flag in draw(
        st.lists(st.sampled_from(commands[name] or [("--help", True)]), max_size=3)
    ):
        args += [opt] if flag else [opt, draw(st.sampled_from(VALUES))]
    return args


@pytest.fixture(scope="module")
def cli_folder(tmp_path_factory: pytest.TempPathFactory, data_folder: Path) -> Path:
    folder = tmp_path_factory.mktemp("property-cli")
    analysis, params = RECIPES["distribution"]
    spec = {
        "tracking": {"enabled": False},
        "analyses": [{"name": "prop", "recipe": "distribution", **analysis, "params": params}],
    }
    (folder / "trips.parquet").symlink_to(data_folder / "trips.parquet")
    (folder / "project.yaml").write_text(yaml.safe_dump(spec))
    return folder


@ARGS
@given(arguments())
def test_any_arguments_to_any_command_end_in_exit_0_or_one_line(
    cli_folder: Path, args: list[str]
) -> None:
    with pytest.MonkeyPatch.context() as mp:
        result = run_cli(["-q", *args], cli_folder, mp)
    text = result.out + result.err
    assert "Traceback" not in text and "internal error" not in text, (args, text[-2000:])
    assert result.code in (0, 2), (args, result.code, text[-2000:])
    if result.code == 2:
        lines = [s for s in result.err.splitlines() if s.strip()]
        assert len(lines) == 1 and lines[0].startswith("error:"), (args, lines)
