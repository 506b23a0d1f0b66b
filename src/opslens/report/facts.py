"""A run's facts as the front ends read them: through the recipe's typed facts model.

The report, the index, the app and ``opslens runs`` never read a fact from the raw
dict: :func:`read_run_facts` validates the whole file with the run's recipe's
facts model (a file the model rejects is a :class:`~opslens.errors.RunError`
naming the field), and :func:`read_baselines` reads just the ``baselines``
section with the contract's model, without importing any recipe (``opslens runs``
stays light). :func:`short_verdict` says in a few words which won.

Example:
    >>> from opslens.core.baselines import BaselineScore, summarise
    >>> b = summarise([BaselineScore(baseline="global", label="one global LightGBM",
    ...     metric="rmse_duration_min", metric_label="RMSE of duration_min", model=13.5,
    ...     value=12.2, higher_is_better=False, n=400)])
    >>> short_verdict(b)
    'loses to one global LightGBM on RMSE of duration_min (12.2 against 13.5)'
    >>> facts = {"analysis": {"name": "eta", "recipe": "no-such", "run_id": "r1"},
    ...          "baselines": b.model_dump()}
    >>> short_verdict(read_baselines(facts))
    'loses to one global LightGBM on RMSE of duration_min (12.2 against 13.5)'
    >>> read_run_facts(facts).analysis.run_id
    'r1'
    >>> read_baselines({"baselines": {"scores": [], "model_wins": "perhaps"}})
    Traceback (most recent call last):
    ...
    opslens.errors.RunError: facts.json does not match the facts contract at 'baselines.model_wins': Input should be a valid boolean, unable to interpret input; fix: rerun the analysis (`opslens run`) to write its facts again
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from opslens.core.facts import AnalysisFacts, BaselinesFacts, RecipeFacts
from opslens.errors import ConfigError, RunError

__all__ = ["facts_recipe", "read_baselines", "read_run_facts", "short_verdict"]

M = TypeVar("M", bound=BaseModel)
_FIX = "rerun the analysis (`opslens run`) to write its facts again"


def _validate(model: type[M], value: Any, at: str, where: str) -> M:
    try:
        return model.model_validate(value)
    except ValidationError as e:
        first = e.errors()[0]
        path = ".".join([p for p in (at, *(str(p) for p in first["loc"])) if p])
        raise RunError(
            f"{where} does not match the facts contract at '{path}': {first['msg']}", fix=_FIX
        ) from None


def facts_recipe(facts: Mapping[str, Any], *, where: str = "facts.json") -> str:
    """The recipe the facts' ``analysis`` section names; RunError if that section is invalid.

    Example:
        >>> facts_recipe({"analysis": {"name": "a", "recipe": "fleet", "run_id": "r"}})
        'fleet'
        >>> facts_recipe({})
        Traceback (most recent call last):
        ...
        opslens.errors.RunError: facts.json has no 'analysis' section; fix: rerun the analysis (`opslens run`) to write its facts again
    """
    if "analysis" not in facts:
        raise RunError(f"{where} has no 'analysis' section", fix=_FIX)
    return _validate(AnalysisFacts, facts["analysis"], "analysis", where).recipe


def read_run_facts(facts: Mapping[str, Any], *, where: str = "facts.json") -> RecipeFacts:
    """``facts`` read through its recipe's typed model (RunError naming the field if rejected).

    A recipe this version does not have: the sections every run's facts share
    (``analysis``, ``baselines``), read with the contract's model.
    """
    from opslens.recipes import get_recipe  # the registry; only when a whole file is read

    name = facts_recipe(facts, where=where)
    try:
        recipe = get_recipe(name)
    except ConfigError:
        shared = {k: facts[k] for k in RecipeFacts.model_fields if k in facts}
        return _validate(RecipeFacts, shared, "", where)
    return recipe.read_facts(facts, where=where)


def read_baselines(facts: Mapping[str, Any], *, where: str = "facts.json") -> BaselinesFacts | None:
    """Just the ``baselines`` section, typed (None when the run scored no baseline); no recipe
    is imported, so listings stay quick. RunError naming the field if the section is invalid."""
    if "baselines" not in facts or facts["baselines"] is None:
        return None
    return _validate(BaselinesFacts, facts["baselines"], "baselines", where)


def short_verdict(baselines: BaselinesFacts | None) -> str:
    """Which won, in a few words: ``beats baselines`` or ``loses to <baseline> on <metric> (...)``.

    Example:
        >>> short_verdict(None)
        'no baselines scored'
    """
    if baselines is None or not baselines.scores:
        return "no baselines scored"
    if not any(s.gate for s in baselines.scores):
        return "no comparison decides"
    if baselines.model_wins:
        return "beats baselines"
    lost = [s for s in baselines.scores if s.gate and not s.model_wins]
    if not lost:  # pragma: no cover - model_wins is False only when a gating score lost
        return baselines.verdict
    first = lost[0]
    model, value = first.figures()
    text = f"loses to {first.label} on {first.metric_label} ({value} against {model})"
    return text + (f"; {len(lost) - 1} more" if len(lost) > 1 else "")
