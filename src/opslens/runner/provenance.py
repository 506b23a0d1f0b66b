"""With which settings the results a run reuses were made, and where they differ from now.

A run of some stages (``--stages``, ``--skip-stages``) reuses the others'
results from the latest run. Its manifest keeps the configuration each of those
results was made with (``configs``, by run id), and the runner warns when a
rerun stage's inputs were made with other params or from another source, and
refuses (unless forced) when they were made with other columns or another seed.

Example:
    >>> config_changes({"params": {"n_bins": 20}, "name": "eta"}, {"params": {"n_bins": 30}, "name": "eta"})
    ['params.n_bins: 20 -> 30']
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from opslens.core.recipe import Recipe, Stage
from opslens.tracking.runs import RunView
from opslens.tracking.tracker import flatten_params

__all__ = ["config_changes", "known_configs", "stale_inputs"]


def config_changes(before: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """The settings that differ, as ``key: old -> new`` (dotted keys, sorted)."""
    old, new = flatten_params(before), flatten_params(now)
    return [
        f"{k}: {old.get(k, '(unset)')} -> {new.get(k, '(unset)')}"
        for k in sorted(set(old) | set(new))
        if old.get(k) != new.get(k)
    ]


def known_configs(base: RunView) -> dict[str, dict[str, Any]]:
    """The configuration of every run whose results ``base`` holds, by run id."""
    manifest = base.manifest
    configs = dict(manifest.get("configs") or {})
    configs[base.run_id] = manifest.get("config") or {}
    return configs


def origin_of(base: RunView, stage: str) -> str:
    """The run that produced ``stage``'s results in ``base``."""
    info = (base.manifest.get("stages") or {}).get(stage) or {}
    return str(info.get("run_id") or base.run_id)


def stale_inputs(
    recipe: Recipe,
    selected: list[Stage],
    base: RunView,
    config: dict[str, Any],
    given: Collection[str] = (),
) -> dict[str, list[str]]:
    """For each stage that is not rerun but feeds one that is: how its settings differ from now.

    Inputs in ``given`` (values the caller passes in) come from no stage and are never stale.
    """
    ran = {s.name for s in selected}
    configs = known_configs(base)
    found: dict[str, list[str]] = {}
    for stage in selected:
        for name in stage.inputs:
            if name in given:
                continue
            producer = recipe.producer(name)
            if producer is None or producer.name in ran or producer.name in found:
                continue
            made_with = configs.get(origin_of(base, producer.name))
            changes = config_changes(made_with, config) if made_with is not None else []
            if changes:
                found[producer.name] = changes
    return found
