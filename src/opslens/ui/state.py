"""What the pages of a session share: the project, the loaded data, cached computations.

Everything lives in ``st.session_state`` (one user's session), so results persist
across page switches; the heavy steps are cached on their data and parameters
(``st.cache_data``; a polars frame is hashed by its content), so the same step is
instant the second time. Secrets typed into the Data page are kept only as
``SecretStr`` in the session and never shown back, logged or cached in clear.

Example:
    >>> import polars as pl
    >>> d = LoadedData(pl.DataFrame({"id": ["a"], "t": [1], "v": [1.0]}), "id", "t", ["v"], "a test frame")
    >>> d.devices()
    ['a']
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import streamlit as st

from opslens.config import ProjectConfig
from opslens.errors import OpslensError
from opslens.io.load import fingerprint_frame

__all__ = [
    "DATA",
    "FAILURES",
    "PROJECT_ENV",
    "FailureList",
    "LoadedData",
    "frame_hash",
    "get_data",
    "get_failures",
    "project",
    "project_root",
    "set_data",
    "set_failures",
    "show_error",
]

PROJECT_ENV = "OPSLENS_PROJECT"
DATA = "opslens_data"
FAILURES = "opslens_failures"


@dataclass(frozen=True)
class LoadedData:
    """The fleet data the pages analyse: a WIDE frame and the roles of its columns."""

    frame: pl.DataFrame
    entity: str
    time: str
    metrics: list[str]
    label: str

    def devices(self) -> list[str]:
        """The device ids, sorted."""
        return sorted(self.frame[self.entity].cast(pl.String).unique().to_list())


@dataclass(frozen=True)
class FailureList:
    """Known failed device ids, with failure times where given."""

    ids: list[str]
    times: dict[str, Any]


def frame_hash(frame: pl.DataFrame) -> str:
    """A content hash of a frame, for ``st.cache_data(hash_funcs=...)``."""
    return fingerprint_frame(frame)


HASH_FUNCS: dict[Any, Any] = {pl.DataFrame: frame_hash}


def project_root() -> Path:
    """The folder the app may read from: the project's folder (or the working directory)."""
    path = os.environ.get(PROJECT_ENV)
    return Path(path).resolve().parent if path else Path.cwd().resolve()


@st.cache_resource(show_spinner=False)
def _load_project(path: str, mtime: float) -> ProjectConfig:
    from opslens.api import load_project

    return load_project(path)


def project() -> ProjectConfig | None:
    """The project the app was started with (``opslens ui -p``), or None; errors shown in the page."""
    path = os.environ.get(PROJECT_ENV)
    if not path or not Path(path).is_file():
        return None
    try:
        return _load_project(path, Path(path).stat().st_mtime)
    except OpslensError as e:
        show_error(e)
        return None


def set_data(data: LoadedData) -> None:
    """Make ``data`` the session's fleet data (every page uses it)."""
    st.session_state[DATA] = data


def get_data() -> LoadedData | None:
    """The session's fleet data, if loaded."""
    value = st.session_state.get(DATA)
    return value if isinstance(value, LoadedData) else None


def set_failures(failures: FailureList) -> None:
    """Remember the known failures for this session."""
    st.session_state[FAILURES] = failures


def get_failures() -> FailureList | None:
    """The session's known failures, if given."""
    value = st.session_state.get(FAILURES)
    return value if isinstance(value, FailureList) else None


def show_error(error: Exception) -> None:
    """One clear message in the page (an OpslensError's problem and fix; anything else, briefly)."""
    if isinstance(error, OpslensError):
        st.error(error.problem + (f" — fix: {error.fix}" if error.fix else ""))
    else:
        st.error(f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}")
