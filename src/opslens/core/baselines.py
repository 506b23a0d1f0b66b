"""Baselines: the simplest honest alternatives a practitioner would try first, scored beside the model.

A recipe declares its baselines (:attr:`opslens.core.recipe.Recipe.baselines`, a
:class:`Baseline` each: a short ``name`` used in metric keys and a ``label`` for
people). The stage that evaluates on held-out data returns one :class:`BaselineScore`
per (baseline, metric) in :attr:`opslens.core.recipe.Out.baselines`, with the model's
figure *on the same rows*. The runner writes them to facts (the ``baselines``
section, :class:`BaselinesFacts`) and to the run's metrics
(``baseline.<name>.<metric>`` and ``model.<metric>``), says which won in the run's
headline, and gives the serving alias only to a model that beats every gating
baseline (``--force`` overrides).

Example:
    >>> s = BaselineScore(baseline="global", label="one global model", metric="rmse_y",
    ...     metric_label="RMSE of y", model=12.2, value=13.5, higher_is_better=False, n=400)
    >>> s.model_wins
    True
    >>> s.sentence()
    'the model beats one global model on RMSE of y: 12.2 against 13.5 (400 held-out rows)'
    >>> f = summarise([s, BaselineScore(baseline="band", label="a 3-sigma band", metric="f1",
    ...     metric_label="F1", model=0.4, value=0.6, higher_is_better=True, n=50)])
    >>> f.model_wins, f.losses
    (False, ['band'])
    >>> f.verdict
    'a 3-sigma band is better on F1: 0.6 against 0.4 (50 held-out rows)'
"""

from __future__ import annotations

from dataclasses import dataclass

from opslens.core.facts import BaselineScoreFacts, BaselinesFacts

__all__ = [
    "Baseline",
    "BaselineScore",
    "BaselineScoreFacts",
    "BaselinesFacts",
    "plain_verdict",
    "summarise",
]


@dataclass(frozen=True)
class Baseline:
    """A baseline a recipe declares: ``name`` (metric keys, ``[a-z0-9_]``) and ``label`` (prose)."""

    name: str
    label: str
    description: str = ""


BaselineScore = BaselineScoreFacts
"""What a stage returns per (baseline, metric): the same model as the facts it becomes."""


def summarise(scores: list[BaselineScoreFacts]) -> BaselinesFacts:
    """The verdict over ``scores``: the model wins when it beats every gating comparison.

    The verdict names the first gating comparison the model loses, or says it beat them all.
    """
    gating = [s for s in scores if s.gate]
    lost = [s for s in gating if not s.model_wins]
    losses = list(dict.fromkeys(s.baseline for s in lost))
    if lost:
        verdict = lost[0].sentence()
    elif gating:
        labels = list(dict.fromkeys(s.label for s in gating))
        verdict = "the model beats " + _join(labels) + " on held-out data"
    elif scores:
        verdict = "no comparison decides (" + "; ".join(s.sentence() for s in scores[:2]) + ")"
    else:
        verdict = "no baseline was scored"
    return BaselinesFacts(scores=scores, model_wins=not lost, losses=losses, verdict=verdict)


def plain_verdict(b: BaselinesFacts | None) -> str:
    """The verdict for a headline, in plain words: who won, without metric names or figures.

    The figures stay in the verdict of the facts and in the report's baselines table.

    Example:
        >>> s = BaselineScore(baseline="global", label="one global model", metric="rmse_y",
        ...     metric_label="RMSE of y", model=12.2, value=13.5, higher_is_better=False, n=400)
        >>> plain_verdict(summarise([s]))
        'The model beats one global model on held-out data.'
        >>> plain_verdict(summarise([s.model_copy(update={"model": 14.0})]))
        'One global model does better than the model on held-out data, so it is not served without --force.'
    """
    if b is None or not b.scores:
        return ""
    gating = [s for s in b.scores if s.gate]
    if not gating:
        return ""
    lost = [s for s in gating if not s.model_wins]
    if lost:
        label = lost[0].label
        return (
            f"{label[:1].upper()}{label[1:]} does better than the model on held-out data, "
            "so it is not served without --force."
        )
    labels = list(dict.fromkeys(s.label for s in gating))
    named = f"The model beats {_join(labels)} on held-out data."
    # a long list of baselines belongs in the report's table, not in a headline
    return (
        named
        if len(named.split()) <= 16
        else "The model beats each of its baselines on held-out data."
    )


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
