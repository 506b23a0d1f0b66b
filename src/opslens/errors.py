"""Errors opslens raises for problems a person can fix.

Every failure caused by input or configuration is an :class:`OpslensError`
whose message names what was wrong (file, column, key, value) and what would
fix it. The CLI prints ``str(error)`` on one line and exits with code 2.

The tree::

    OpslensError                 base; never raised itself
    ├── ConfigError              project.yaml unreadable, invalid, unknown key   (config)
    ├── SourceError              a file, database or search server cannot be read (data.sources)
    ├── DataError                the data is there but unusable: missing column,
    │                            empty table, non-numeric target, too few rows    (data, features, recipes)
    ├── RunError                 no run to read, a stage's inputs missing          (tracking, recipes)
    ├── InstanceError            one streamed instance is malformed                (online, predictors)
    ├── NarratorError            an LLM narrator's server failed or answered badly (report.narrators)
    └── UnsupportedError         a predictor asked for a call it does not offer   (predictors)

    ContractError                a recipe broke its own declaration (a bug, exit 1) (runner)

    OpslensWarning               a problem worth telling that does not stop a run

Example:
    >>> err = DataError("column 'duration' is missing from trips.csv", fix="name an existing column in columns.target")
    >>> str(err)
    "column 'duration' is missing from trips.csv; fix: name an existing column in columns.target"
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "ContractError",
    "DataError",
    "InstanceError",
    "NarratorError",
    "OpslensError",
    "OpslensWarning",
    "RunError",
    "SourceError",
    "UnsupportedError",
]


class OpslensError(Exception):
    """A failure caused by input or configuration, with the fix in the message.

    Example:
        >>> str(OpslensError("bad thing", fix="do the good thing"))
        'bad thing; fix: do the good thing'
    """

    def __init__(self, message: str, *, fix: str | None = None) -> None:
        self.problem = " ".join(message.split())
        self.fix = " ".join(fix.split()) if fix else None
        super().__init__(self.problem if not self.fix else f"{self.problem}; fix: {self.fix}")


class ConfigError(OpslensError):
    """project.yaml (or a CLI option) is unreadable, invalid or names something unknown."""


class SourceError(OpslensError):
    """A source (file, SQL database, Elasticsearch) cannot be reached or read."""


class DataError(OpslensError):
    """The data was read but cannot be analysed as configured."""


class RunError(OpslensError):
    """A run folder, its latest pointer or a stage's saved input is missing or unusable."""


class InstanceError(OpslensError):
    """A streamed instance is malformed (not JSON, not an object, a value of the wrong type)."""


class NarratorError(OpslensError):
    """An LLM narrator could not write the narrative (unreachable, timeout, 4xx/5xx, empty answer)."""


class UnsupportedError(OpslensError):
    """A predictor was asked for a call its recipe does not offer (e.g. a plot per instance)."""


class ContractError(Exception):
    """A recipe returned something other than it declared: a bug in the recipe, not in the input."""


class OpslensWarning(UserWarning):
    """Something worth telling that does not stop the run (e.g. unknown failed-device ids)."""
