"""A run started from the app: the project's runner (:func:`opslens.runner.run_analysis`, the
function ``opslens run`` calls) with its progress drawn in the page, the stages listed as they
finish, and its result (run folder, verdict and headline metrics against the baselines).

Every "Run now" of the app (the Data page's, the Runs page's) goes through :func:`run_now`,
so a run started in the app is the same run folder and MLflow entry as the CLI's. Errors
are one line in the app's words: a fix naming a CLI command says what to press instead.

Example:
    >>> from opslens.errors import RunError
    >>> str(app_words(RunError("no run", fix="run `opslens run --analysis eta` first")))
    'no run; fix: press Run now first'
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import polars as pl
import streamlit as st

from opslens import runner
from opslens.config import ProjectConfig
from opslens.errors import OpslensError
from opslens.explain.text import format_metric
from opslens.runner import RunResult
from opslens.ui.state import show_error

__all__ = ["RunProgress", "StreamlitProgress", "app_words", "run_now", "show_result"]


@dataclass
class _Task:
    description: str
    total: float | None
    completed: float
    bar: Any
    drawn: tuple[int, str] | None = None
    at: float = 0.0


class StreamlitProgress:
    """What ``run_analysis(progress=...)`` calls (rich's Progress API), drawn as progress bars.

    ``container`` is where the bars go (an ``st.status``, a column, ``st`` itself);
    a bar is redrawn only when its percentage or text changes, so a stage looping
    over thousands of items sends a hundred updates, not thousands.

    Example:
        >>> class Bar:
        ...     def progress(self, value, text=""): print(f"{value:.2f} {text}")
        ...     def empty(self): print("removed")
        >>> class Box:
        ...     def progress(self, value, text=""): print(f"{value:.2f} {text}"); return Bar()
        >>> progress = StreamlitProgress(Box())
        >>> task = progress.add_task("eta", total=2)
        0.00 eta
        >>> progress.update(task, description="eta: prepare")
        0.00 eta: prepare
        >>> progress.advance(task)
        0.50 eta: prepare
        >>> progress.remove_task(task)
        removed
    """

    def __init__(self, container: Any) -> None:
        self._container = container
        self._tasks: dict[int, _Task] = {}
        self._next = 0

    def add_task(self, description: str, total: float | None = None, **_: Any) -> int:
        """A new bar; its id."""
        task_id = self._next
        self._next += 1
        task = _Task(description, total, 0.0, None)
        task.bar = self._container.progress(0.0, text=description)
        task.drawn = (0, description)
        task.at = time.monotonic()
        self._tasks[task_id] = task
        return task_id

    def advance(self, task_id: int, advance: float = 1) -> None:
        """``advance`` more items of the task done."""
        task = self._tasks.get(task_id)
        if task is not None:
            task.completed += advance
            self._draw(task)

    def update(
        self,
        task_id: int,
        *,
        description: str | None = None,
        total: float | None = None,
        completed: float | None = None,
        advance: float | None = None,
        **_: Any,
    ) -> None:
        """Change a task's text, total or progress."""
        task = self._tasks.get(task_id)
        if task is None:
            return
        if description is not None:
            task.description = description
        if total is not None:
            task.total = total
        if completed is not None:
            task.completed = completed
        if advance is not None:
            task.completed += advance
        self._draw(task)

    def remove_task(self, task_id: int) -> None:
        """Take the task's bar away."""
        task = self._tasks.pop(task_id, None)
        if task is not None:
            task.bar.empty()

    def _draw(self, task: _Task) -> None:
        if task.total:
            percent = int(100 * min(task.completed / task.total, 1.0))
            text = task.description
        else:  # unknown total: a count, redrawn at most five times a second
            percent = 0
            text = f"{task.description} ({format_metric(task.completed)} done)"
            if task.drawn is not None and task.drawn[1].split(" (")[0] == task.description:
                if time.monotonic() - task.at < 0.2:
                    return
        if (percent, text) == task.drawn:
            return
        task.bar.progress(percent / 100, text=text)
        task.drawn = (percent, text)
        task.at = time.monotonic()


class RunProgress(StreamlitProgress):
    """:class:`StreamlitProgress` that also lists each stage of the run as it finishes, with
    its time (the runner names a stage in its run's bar, then advances the bar when the
    stage is done); ``finished`` holds the stages done so far.

    Example:
        >>> class Bar:
        ...     def progress(self, value, text=""): pass
        ...     def empty(self): pass
        >>> class Box:
        ...     def progress(self, value, text=""): return Bar()
        ...     def write(self, text): print(text.split(" (")[0])
        >>> progress = RunProgress(Box(), "eta")
        >>> task = progress.add_task("eta", total=2)
        >>> progress.update(task, description="eta: prepare"); progress.advance(task)
        ✓ stage prepare done
        >>> progress.finished
        ['prepare']
    """

    def __init__(self, container: Any, analysis: str) -> None:
        super().__init__(container)
        self._prefix = f"{analysis}: "
        self._run_task: int | None = None
        self._since = time.monotonic()
        self.finished: list[str] = []

    def add_task(self, description: str, total: float | None = None, **kw: Any) -> int:
        """A new bar; the first one named after the analysis is the run's own (its stages)."""
        task_id = super().add_task(description, total, **kw)
        if self._run_task is None and description == self._prefix[:-2]:
            self._run_task = task_id
            self._since = time.monotonic()
        return task_id

    def advance(self, task_id: int, advance: float = 1) -> None:
        """Advance a bar; for the run's own bar, list the stage it names as finished."""
        super().advance(task_id, advance)
        task = self._tasks.get(task_id)
        if task_id != self._run_task or task is None:
            return
        stage = task.description.removeprefix(self._prefix)
        now = time.monotonic()
        self.finished.append(stage)
        self._container.write(f"✓ stage {stage} done ({now - self._since:.1f} s)")
        self._since = now


#: CLI advice in an error's fix, and what the app's user does instead
_CLI_WORDS = (
    (
        re.compile(r"re-run (?:it|the analysis)[^:`]*: `opslens run(?: [^`]*)?`"),
        "press Run now again",
    ),
    (
        re.compile(
            r"(?:run|train it first:) `opslens run(?: [^`]*)?`(?: \(or `opslens run(?: [^`]*)?`\))?"
        ),
        "press Run now",
    ),
    (re.compile(r"run `opslens runs`"), "open the Runs page"),
    (re.compile(r"`opslens schema`"), "the project.yaml reference (docs)"),
)


def app_words(error: Exception) -> Exception:
    """``error`` with a fix that names a CLI command told as what to press in the app; any
    other error as it is."""
    if not isinstance(error, OpslensError) or not error.fix:
        return error
    fix = error.fix
    for pattern, words in _CLI_WORDS:
        fix = pattern.sub(words, fix)
    return error if fix == error.fix else type(error)(error.problem, fix=fix)


def show_result(result: RunResult) -> None:
    """A finished run: where its folder is, its verdict against the baselines and the model's
    headline metrics next to each baseline's."""
    from opslens.ui.analysis import baseline_rows

    st.success(f"Run {result.run_id} of {result.analysis} {result.status}: {result.path}")
    if result.baselines is not None:
        (st.success if result.baselines.model_wins else st.warning)(
            f"Against the baselines: {result.baselines.verdict}."
        )
    rows = baseline_rows(result.metrics)
    if rows:
        st.dataframe(pl.DataFrame(rows, strict=False), hide_index=True)
    elif result.metrics:
        st.caption(result.metrics_line())
    for warning in result.warnings:
        st.warning(str(warning))


def run_now(
    config: ProjectConfig, name: str, *, frames: Mapping[str, pl.DataFrame] | None = None
) -> RunResult | None:
    """Run analysis ``name`` of ``config`` with the project's runner (``frames``: the in-memory
    tables its source names), its stages listed as they finish in a status box; the result,
    or None with the error shown in the app's words (a failed run leaves the previous runs)."""
    with st.status(f"Running {name}…", expanded=True) as status:
        try:
            result = runner.run_analysis(
                config, name, progress=RunProgress(status, name), frames=frames
            )
        except Exception as e:  # OpslensError: its problem and fix; anything else, briefly
            status.update(label=f"The run of {name} failed", state="error", expanded=True)
            show_error(app_words(e))
            return None
        status.update(label=f"Run {result.run_id} complete", state="complete", expanded=True)
    return result
