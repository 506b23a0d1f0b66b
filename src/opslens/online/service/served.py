"""Which model version answers each analysis, and swapping in a newly promoted one.

A :class:`ModelSource` says which analyses exist, which version is current
(``pointer``: the registry alias's version — ``champion``, or ``current`` for projects made
before opslens 0.3 — or the run the ``latest`` pointer names) and loads it. An analysis
with no version under the alias is served as soon as one is promoted; until then the
others are served and it answers 409. :class:`ModelBook` holds one immutable
:class:`ServedModel` per analysis; :meth:`ModelBook.refresh` (the service
calls it every ``poll_seconds`` in a worker thread) loads a version whose
pointer moved and replaces the book's entry in one assignment. A request
takes the entry once and uses it to the end, so its answer is made by, and
names, exactly one version; requests in flight finish on the old one.

Example:
    >>> from opslens.core.predictor import BasePredictor
    >>> class Echo(BasePredictor):
    ...     recipe = "echo"
    ...     def input_schema(self): return {"x": "number"}
    ...     def predict_frame(self, frame): return frame
    ...     def predict_one(self, instance): return {"y": instance["x"]}
    >>> class One:
    ...     alias = "champion"
    ...     def analyses(self): return {"ex": "echo"}
    ...     def pointer(self, analysis): return "1"
    ...     def load(self, analysis, pointer): return Release(Echo(), pointer, "run-a", "memory")
    >>> book = ModelBook(One())
    >>> book.refresh(), book.get("ex").version, book.refresh()
    (['ex'], '1', [])
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel

from opslens.config import ProjectConfig
from opslens.core.lifecycle import CHAMPION
from opslens.core.predictor import Predictor
from opslens.errors import OpslensError, RunError
from opslens.online.service.schemas import RequestModels, request_models
from opslens.online.service.state import dumpb
from opslens.tracking.models import FALLBACK_ALIASES, load_predictor, load_registered
from opslens.tracking.runs import open_run

__all__ = ["ModelBook", "ModelSource", "Pace", "ProjectModels", "Release", "ServedModel"]

log = logging.getLogger("opslens.serve")
T = TypeVar("T")


@dataclass(frozen=True)
class Release:
    """A loaded model version: the predictor, its version, the run that made it, where from."""

    predictor: Predictor
    version: str
    run_id: str
    origin: str


class ModelSource(Protocol):
    """Where the service's models come from."""

    alias: str

    def analyses(self) -> dict[str, str]:
        """Analysis name → recipe name, for every analysis served."""

    def pointer(self, analysis: str) -> str | None:
        """The current version of ``analysis`` (cheap to ask), or None if it has none yet."""

    def load(self, analysis: str, pointer: str) -> Release:
        """Load the version ``pointer`` names (OpslensError if it cannot be)."""


#: a model answering inline goes back to the thread pool when its average passes this (CPU s)
FAST_SECONDS = 0.001
#: a model in the thread pool answers inline once its average is below this (CPU seconds)
INLINE_SECONDS = FAST_SECONDS / 2
#: a model whose average is below this (CPU seconds) answers inline a request the service
#: has alone (no other request waits behind it), the thread pool's hop saved
ALONE_SECONDS = 0.002
#: the weight of the newest answer in the running average (an exponential moving average)
WEIGHT = 1 / 16
#: single answers timed (in the thread pool) before a model may answer inline
WARM_UP = 8


class Pace:
    """Whether a model's single answers are cheap enough to make on the event loop.

    A thread-pool hop costs more than a cheap answer (tens of microseconds, and under 200
    clients the threads contend for the GIL), so a model whose single answers take under
    :data:`INLINE_SECONDS` of CPU on a running average (each new answer weighs
    :data:`WEIGHT`) answers inline, once :data:`WARM_UP` answers were timed, and keeps
    answering inline until its average passes :data:`FAST_SECONDS`. A slow answer lifts the
    average at once (one of 20 ms lifts it above 1 ms), sending the model back to the thread
    pool until its answers are cheap again, so the event loop (and ``/health``) is held at
    most by one answer of a model that was cheap just before; batches and stream steps are
    never timed here.

    The two thresholds keep a model whose answers cost about one of them in one place: with
    one threshold, a fleet device's answer (0.6-1.0 ms) went inline and back with the load,
    and its service swung between about 350 requests/s with ``/health`` in 5 ms and 850
    with ``/health`` waiting 300-600 ms behind the queued answers. Such a model still
    answers inline a request the service has alone (:meth:`inline` with ``alone``): nothing
    waits behind it then, and the hop would cost the one client a third of its latency.

    Example:
        >>> pace = Pace()
        >>> for _ in range(WARM_UP):
        ...     _ = pace.timed(sum, [1, 2])
        >>> pace.inline()
        True
        >>> pace.record(0.02); pace.inline()
        False
        >>> for _ in range(64):
        ...     pace.record(0.0008)  # between the thresholds: stays in the thread pool
        >>> pace.inline(), pace.inline(alone=True)
        (False, True)
    """

    __slots__ = ("average", "fast", "timed_answers")

    def __init__(self) -> None:
        self.average = 0.0
        self.timed_answers = 0
        self.fast = False

    def inline(self, *, alone: bool = False) -> bool:
        """Whether the next single answer may be made on the event loop; ``alone``: the
        request asking is the only one the service has."""
        if alone:
            return self.fast or (self.timed_answers >= WARM_UP and self.average < ALONE_SECONDS)
        return self.fast

    def record(self, seconds: float) -> None:
        """Count one single answer that took ``seconds``."""
        if self.timed_answers == 0:
            self.average = seconds
        else:
            self.average += WEIGHT * (seconds - self.average)
        self.timed_answers += 1
        limit = FAST_SECONDS if self.fast else INLINE_SECONDS
        self.fast = self.timed_answers >= WARM_UP and self.average < limit

    def timed(self, call: Callable[..., T], *args: Any) -> T:
        """``call(*args)``, the CPU time of this thread it took recorded (also when it raises):
        waits for the GIL, which grow with the load, are not the model's cost."""
        started = time.thread_time()
        try:
            return call(*args)
        finally:
            self.record(time.thread_time() - started)


@dataclass(frozen=True)
class ServedModel:
    """One analysis's model as the service answers with it; never changed once built."""

    analysis: str
    release: Release
    alias: str
    models: RequestModels
    loaded_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    #: how fast its single answers are (:class:`Pace`): mutable, the rest is not
    pace: Pace = field(default_factory=Pace, compare=False, repr=False)

    @property
    def predictor(self) -> Predictor:
        """The predictor that answers."""
        return self.release.predictor

    @property
    def version(self) -> str:
        """The version that answers."""
        return self.release.version

    @property
    def stateful(self) -> bool:
        """Whether answers depend on the stream's earlier samples (``step``)."""
        return self.models.stateful

    @cached_property
    def heads(self) -> tuple[bytes, bytes]:
        """The JSON of a stateless answer up to the answer itself, single and batch: the
        stamp depends only on the version, so it is serialised once, not per request.

        Example:
            >>> from opslens.online.service.schemas import request_models
            >>> from opslens.core.predictor import BasePredictor
            >>> class P(BasePredictor):
            ...     recipe = "p"
            ...     def input_schema(self): return {"x": "number"}
            ...     def predict_frame(self, frame): return frame
            ...     def predict_one(self, instance): return {}
            >>> m = ServedModel("a", Release(P(), "3", "r", "memory"), "champion",
            ...     request_models("a", P()))
            >>> m.heads[0] + b'{"y":1}}'
            b'{"analysis":"a","recipe":"p","version":"3","alias":"champion","run_id":"r","answer":{"y":1}}'
        """
        stamp = dumpb(self.stamp())[:-1]
        return stamp + b',"answer":', stamp + b',"answers":'

    def stamp(self) -> dict[str, Any]:
        """What every answer carries: analysis, recipe, version, alias, run id."""
        return {
            "analysis": self.analysis,
            "recipe": self.predictor.recipe,
            "version": self.version,
            "alias": self.alias,
            "run_id": self.release.run_id,
        }

    def describe(self) -> dict[str, Any]:
        """The ``/models`` entry: the stamp, where it was loaded from, when, and its inputs."""
        return {
            **self.stamp(),
            "loaded": True,
            "stateful": self.stateful,
            "origin": self.release.origin,
            "loaded_at": self.loaded_at,
            "inputs": self.predictor.input_schema(),
        }


class ProjectModels:
    """A project's models: from the MLflow registry alias, or (tracking off) the latest run folders."""

    def __init__(self, project: ProjectConfig, alias: str = CHAMPION) -> None:
        self.project = project
        self.registry = project.tracking.enabled
        self.alias = alias if self.registry else "latest"
        self._client: Any = None

    def analyses(self) -> dict[str, str]:
        """Every analysis of the project (only registered recipes load as a project)."""
        return {a.name: a.recipe for a in self.project.analyses}

    def _mlflow(self) -> Any:
        if self._client is None:
            import mlflow

            self._client = mlflow.MlflowClient(tracking_uri=self.project.tracking_uri())
        return self._client

    def pointer(self, analysis: str) -> str | None:
        """The alias's version number, or the run id ``latest`` names; None if neither exists."""
        if not self.registry:
            try:
                return open_run(self.project.runs_root(), analysis).run_id
            except RunError:
                return None
        from mlflow.exceptions import MlflowException

        for alias in (self.alias, FALLBACK_ALIASES.get(self.alias)):
            if alias is None:
                continue
            try:
                return str(self._mlflow().get_model_version_by_alias(analysis, alias).version)
            except MlflowException:
                continue
        return None

    def load(self, analysis: str, pointer: str) -> Release:
        """Load the version; for the registry, retried if the alias moved while loading."""
        if not self.registry:
            got = load_predictor(self.project.runs_root(), analysis, pointer)
            return Release(got.predictor, got.run_id, got.run_id, got.origin)
        for _ in range(3):
            got = load_registered(self.project.tracking_uri(), analysis, self.alias)
            version = str(got.metadata["version"])
            if self.pointer(analysis) == version:  # the alias did not move while loading
                return Release(got.predictor, version, got.run_id, got.origin)
        raise RunError(
            f"the alias '{self.alias}' of '{analysis}' moved during each of 3 loads",
            fix="promote one version and let it settle; the service retries at the next poll",
        )


class ModelBook:
    """The served model of every analysis, refreshed from a :class:`ModelSource`."""

    def __init__(self, source: ModelSource) -> None:
        self.source = source
        self.recipes = source.analyses()
        self._served: dict[str, ServedModel] = {}
        self.problems: dict[str, str] = {}
        #: analyses with no version under the alias at all (answered 409, not 503)
        self.missing: set[str] = set()

    def get(self, analysis: str) -> ServedModel | None:
        """The model answering ``analysis`` now (None: none loaded)."""
        return self._served.get(analysis)

    def refresh(self) -> list[str]:
        """Load every version whose pointer moved; the analyses swapped."""
        swapped = []
        for analysis in self.recipes:
            try:
                pointer = self.source.pointer(analysis)
                current = self._served.get(analysis)
                if pointer is None:
                    if current is None:
                        self.missing.add(analysis)
                        self.problems[analysis] = (
                            f"analysis '{analysis}' has no model under '{self.source.alias}' yet; "
                            f"fix: run it (`opslens run --analysis {analysis}`) or promote a "
                            f"version (`opslens promote {analysis} --version N`)"
                        )
                    continue
                self.missing.discard(analysis)
                if current is not None and current.version == pointer:
                    continue
                release = self.source.load(analysis, pointer)
            except Exception as e:  # a broken version must not stop the others being served
                said = str(e) if isinstance(e, OpslensError) else f"{type(e).__name__}: {e}"
                self.problems[analysis] = said
                log.warning("cannot load '%s': %s", analysis, said)
                continue
            self._served[analysis] = ServedModel(
                analysis, release, self.source.alias, request_models(analysis, release.predictor)
            )
            self.problems.pop(analysis, None)
            swapped.append(analysis)
            log.info("serving '%s' version %s (%s)", analysis, release.version, release.origin)
        return swapped

    def loaded(self) -> list[tuple[str, str, str, str]]:
        """(analysis, recipe, version, alias) of every model loaded now (for ``/metrics``)."""
        return [(a, s.predictor.recipe, s.version, s.alias) for a, s in list(self._served.items())]

    def describe(self) -> list[dict[str, Any]]:
        """The ``/models`` answer: every analysis, loaded or with the reason it is not."""
        out = []
        for analysis, recipe in self.recipes.items():
            served = self._served.get(analysis)
            if served is not None:
                out.append(served.describe())
            else:
                out.append(
                    {
                        "analysis": analysis,
                        "recipe": recipe,
                        "loaded": False,
                        "reason": self.problems.get(analysis, "not loaded yet"),
                    }
                )
        return out

    def schemas(self) -> dict[str, type[BaseModel]]:
        """Every served analysis's request and response models, by model name."""
        out: dict[str, type[BaseModel]] = {}
        for served in self._served.values():
            out.update(served.models.by_name())
        return out
