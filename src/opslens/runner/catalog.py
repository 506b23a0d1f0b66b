"""Where a run's stage inputs come from and where its outputs go: memory, the base run, the new run.

Outputs are saved as the stage declared them (``table`` → Parquet, ``object`` →
joblib); every file written or carried over from the base run is recorded with
the stage and run that produced it (the manifest's ``artifacts``). Files carried
over are hard links to the base run's (copied only across devices): a rerun of
one stage does not copy gigabytes of tables it did not change.

Example:
    >>> import tempfile, pathlib
    >>> from opslens.recipes import get_recipe
    >>> from opslens.tracking.runs import RunWriter
    >>> catalog = Catalog(get_recipe("distribution"), RunWriter(pathlib.Path(tempfile.mkdtemp()), "x"), None)
    >>> catalog.load("prepared")
    Traceback (most recent call last):
    ...
    opslens.errors.RunError: stage input 'prepared' is not available from the latest run; fix: include the stage 'prepare' in --stages, or run all stages once
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import polars as pl

from opslens.core.engine import Engine
from opslens.core.recipe import Out, Recipe, Stage
from opslens.errors import RunError
from opslens.tracking.runs import RunView, RunWriter

__all__ = ["Catalog"]


class Catalog:
    """Where stage inputs come from and where outputs go: memory, the base run, the new run."""

    def __init__(
        self,
        recipe: Recipe,
        writer: RunWriter,
        base: RunView | None,
        engine: Engine | None = None,
    ) -> None:
        self.recipe = recipe
        #: a distributed engine reads and writes the tables of a recipe of engine frames
        self.engine = engine if engine is not None and engine.distributed else None
        self.writer = writer
        self.base = base
        self.memory: dict[str, Any] = {}
        #: how many reused files were hard-linked and how many copied
        self.carried: dict[str, int] = {}
        self.artifacts: dict[str, dict[str, str]] = {}
        self.base_artifacts: dict[str, dict[str, str]] = (
            dict(base.manifest.get("artifacts") or {}) if base is not None else {}
        )

    def _kept(self) -> bool:
        return self.engine is not None and self.recipe.engine_frames

    def reuse(self, relative: str, stage: str) -> None:
        """Link ``relative`` from the base run (a copy across devices); record where it came from."""
        if self.base is None or relative in self.artifacts:
            return
        how = self.writer.link_in(self.base.path / relative, relative)
        self.carried[how] = self.carried.get(how, 0) + 1
        origin = self.base_artifacts.get(relative, {"stage": stage, "run_id": self.base.run_id})
        self.artifacts[relative] = {**origin, "status": "reused"}

    def load(self, name: str) -> Any:
        """A stage input: produced earlier in this run, or reused from the base run."""
        if name in self.memory:
            return self.memory[name]
        producer = self.recipe.producer(name)
        declared = producer.output(name) if producer is not None else None
        if self.base is not None and declared is not None:
            relative = (
                f"tables/{name}.parquet" if declared.kind == "table" else f"data/{name}.joblib"
            )
            if self.base.has(relative):
                if declared.kind == "table" and self._kept():
                    assert self.engine is not None
                    value = self.engine.read(self.base.path / relative)
                else:
                    value = (
                        self.base.table(name)
                        if declared.kind == "table"
                        else self.base.object(name)
                    )
                self.reuse(relative, producer.name if producer else "")
                self.memory[name] = value
                return value
        raise RunError(
            f"stage input '{name}' is not available from the latest run",
            fix=f"include the stage '{producer.name if producer else 'an earlier stage'}' "
            "in --stages, or run all stages once",
        )

    def reuse_stage(self, stage: str) -> None:
        """Carry over every artifact the base run recorded for ``stage`` (not rerun)."""
        for relative, origin in self.base_artifacts.items():
            if origin.get("stage") == stage and self.base is not None and self.base.has(relative):
                self.reuse(relative, stage)

    def save(self, stage: Stage, out: Out) -> None:
        """Persist what ``stage`` returned, as it declared it; record each file's origin."""
        written: list[str] = []
        values = dict(out.values)
        for o in stage.outputs:
            value = out.values[o.name]
            if o.kind == "table" and not isinstance(value, pl.DataFrame):
                # an engine frame: written by the engine, then read back from what it wrote
                # (later stages start from the table, not from the whole lineage again)
                if self.engine is None:
                    raise RunError(
                        f"stage '{stage.name}' returned '{o.name}' as an engine frame, but the "
                        "run's engine keeps none",
                        fix="run it with engine: spark, or return a polars DataFrame",
                    )
                relative = self.writer.write_frame(o.name, value, self.engine.store)
                written.append(relative)
                values[o.name] = self.engine.read(self.writer.path / relative)
            elif o.kind == "table":
                written.append(self.writer.write_table(o.name, value))
            else:
                written.append(self.writer.write_object(o.name, value))
        written += [self.writer.write_table(n, t) for n, t in out.tables.items()]
        written += [self.writer.write_plot(n, f) for n, f in out.plots.items()]
        if out.model is not None:
            written += self.writer.write_model(
                out.model.model,
                out.model.input_example,
                {"stage": stage.name, **out.model.metadata},
            )
        for relative in written:
            self.artifacts[relative] = {
                "stage": stage.name,
                "run_id": self.writer.run_id,
                "status": "produced",
            }
        self.memory.update(values)

    def release(self, keep: Collection[str]) -> list[str]:
        """Drop from memory every table not named in ``keep`` (the inputs later stages still
        need); it is on disk already. Objects stay (the run reads some at its end). At 100,000
        users the propensity pipeline's tables held in memory after use were over 8 GB.

        Example:
            >>> import tempfile, pathlib
            >>> from opslens.recipes import get_recipe
            >>> from opslens.tracking.runs import RunWriter
            >>> c = Catalog(get_recipe("distribution"), RunWriter(pathlib.Path(tempfile.mkdtemp()), "x"), None)
            >>> c.memory.update(raw=pl.DataFrame({"a": [1]}), prepared=pl.DataFrame({"a": [1]}), steps={})
            >>> c.release({"prepared"}), sorted(c.memory)
            (['raw'], ['prepared', 'steps'])
        """
        gone = [n for n, v in self.memory.items() if n not in keep and isinstance(v, pl.DataFrame)]
        for name in gone:
            del self.memory[name]
        return gone
