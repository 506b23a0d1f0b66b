"""A versioned folder registry: ``<root>/<version_tag>/`` per version and a ``latest`` pointer.

Each version folder holds what the online side needs, in plain files:
``models.joblib`` (the fitted predictor), ``prep_stats.json``, ``thresholds.json``,
``metrics.csv`` and ``meta.yaml`` (analysis, run, MLflow version and alias, when).
A version is written into a temporary folder, flushed to disk
(:func:`opslens.core.atomic.fsync_tree`) and renamed into place, then
``latest`` moves to it: a symbolic link, or a copy of the folder where links
are unavailable. A version tag is never overwritten.

The same version gets an alias in the MLflow registry: the tag itself, or
``tag-<tag>`` where MLflow reserves the name (``v1``, ``latest``).

Example:
    >>> mlflow_alias("v1"), mlflow_alias("release.2"), mlflow_alias("prod")
    ('tag-v1', 'release-2', 'prod')
"""

from __future__ import annotations

import json
import os
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import joblib
import polars as pl
import yaml

from opslens.core.atomic import fsync_folder, fsync_tree
from opslens.errors import RunError
from opslens.tracking.runs import LATEST, RunView, jsonable, open_run, write_json

__all__ = [
    "check_registry",
    "load_version",
    "mlflow_alias",
    "publish_latest",
    "publish_version",
    "registry_root",
    "version_tags",
]


def mlflow_alias(tag: str) -> str:
    """The MLflow alias of a version tag (letters, digits, ``_`` and ``-``; not reserved)."""
    alias = re.sub(r"[^\w\-]", "-", tag)
    if alias.lower() == "latest" or re.fullmatch(r"[vV]\d+", alias):
        alias = f"tag-{alias}"
    return alias


def _point_latest(root: Path, tag: str) -> str:
    tmp = root / f".{LATEST}.part"
    if tmp.is_symlink() or tmp.is_file():
        tmp.unlink()
    elif tmp.is_dir():
        shutil.rmtree(tmp)
    try:
        os.symlink(tag, tmp, target_is_directory=True)
        kind = "symlink"
    except (OSError, NotImplementedError):
        shutil.copytree(root / tag, tmp)
        kind = "copy"
    latest = root / LATEST
    if latest.is_dir() and not latest.is_symlink():
        shutil.rmtree(latest)  # a copy is replaced (a directory cannot be renamed over)
    os.replace(tmp, latest)
    fsync_folder(root)
    return kind


def publish_version(
    run: RunView,
    root: Path,
    tag: str | None = None,
    *,
    tracking_uri: str | None = None,
    registered_name: str | None = None,
) -> Path:
    """Write run ``run``'s model as version ``tag`` under ``root``; move ``latest``; alias in MLflow.

    ``tag`` defaults to ``v<MLflow model version>`` (or the run id when the run was not
    registered). RunError when the tag exists or the run holds no model.
    """
    manifest = run.manifest
    analysis = str(manifest.get("analysis", run.path.parent.name))
    model_version = manifest.get("model_version")
    tag = tag or (f"v{model_version}" if model_version else run.run_id)
    if tag == LATEST or tag.startswith("."):
        raise RunError(f"'{tag}' cannot be a version tag", fix="choose another version tag")
    root.mkdir(parents=True, exist_ok=True)
    final = root / tag
    if final.exists():
        raise RunError(
            f"version '{tag}' already exists in {root}",
            fix="give the new version another params.registry.version_tag (versions are kept)",
        )
    if not run.has("model/model.joblib"):
        raise RunError(
            f"run {run.run_id} of '{analysis}' holds no model to register",
            fix="run all stages of the analysis first",
        )
    metadata = run.json("model/metadata.json")
    tmp = root / f".tmp-{tag}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        shutil.copy2(run.path / "model" / "model.joblib", tmp / "models.joblib")
        write_json(tmp / "prep_stats.json", metadata.get("prep_stats", {}))
        write_json(tmp / "thresholds.json", metadata.get("thresholds", {}))
        if run.has("tables/metrics.parquet"):
            run.table("metrics").write_csv(tmp / "metrics.csv")
        else:
            pl.DataFrame({"metric": list(manifest.get("metrics", {}))}).write_csv(
                tmp / "metrics.csv"
            )
        alias = None
        if tracking_uri is not None and model_version is not None:
            alias = _alias_in_mlflow(
                tracking_uri, registered_name or analysis, str(model_version), tag
            )
        meta = {
            "version_tag": tag,
            "analysis": analysis,
            "recipe": manifest.get("recipe"),
            "run_id": run.run_id,
            "created": datetime.now(UTC).isoformat(),
            "input_fingerprint": (manifest.get("input") or {}).get("fingerprint"),
            "opslens": (manifest.get("versions") or {}).get("opslens"),
            "mlflow": {
                "name": registered_name or analysis,
                "version": model_version,
                "alias": alias,
                "run_id": manifest.get("mlflow_run_id"),
            },
        }
        (tmp / "meta.yaml").write_text(yaml.safe_dump(jsonable(meta), sort_keys=False))
        fsync_tree(tmp)  # the version's files are on disk before its name is
        os.replace(tmp, final)
        fsync_folder(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _point_latest(root, tag)
    return final


def registry_root(project: Any, analysis: str) -> tuple[Path, str | None]:
    """The ``params.registry`` folder of ``analysis`` (relative to the project folder) and
    its configured version tag."""
    config = project.analysis(analysis)
    registry = getattr(config.params, "registry", None)
    root = Path(getattr(registry, "root_dir", "registry"))
    return (root if root.is_absolute() else project.root / root), getattr(
        registry, "version_tag", None
    )


def check_registry(project: Any, analysis: str) -> Path:
    """RunError, before a run starts, when its publication would fail: the registry folder
    cannot be made or written, or the configured version tag is already published.

    Example:
        >>> import tempfile, types
        >>> p = types.SimpleNamespace(root=Path(tempfile.mkdtemp()),
        ...     analysis=lambda name: types.SimpleNamespace(params=None))
        >>> check_registry(p, "pump").name
        'registry'
    """
    root, tag = registry_root(project, analysis)
    in_the_way = next((p for p in (root, *root.parents) if p.exists() and not p.is_dir()), None)
    if in_the_way is not None:
        raise RunError(
            f"the registry folder {root} cannot be made: {in_the_way} is a file",
            fix="set params.registry.root_dir to a folder path",
        )
    base = next((p for p in (root, *root.parents) if p.exists()), root)
    if not os.access(base, os.W_OK | os.X_OK):
        raise RunError(
            f"the registry folder {root} cannot be written ({base} is not writable)",
            fix="set params.registry.root_dir to a writable folder, or change its permissions",
        )
    if tag is not None and (root / tag).exists():
        raise RunError(
            f"version '{tag}' already exists in {root}",
            fix="give the new version another params.registry.version_tag (versions are kept)",
        )
    return root


def publish_latest(project: Any, analysis: str, tag: str | None = None) -> Path:
    """Publish the latest run of ``analysis`` to its ``params.registry`` folder (and MLflow alias).

    ``root_dir`` is relative to the project folder; ``tag`` overrides ``version_tag``.
    """
    root, configured = registry_root(project, analysis)
    tag = tag or configured
    uri = project.tracking_uri() if project.tracking.enabled else None
    return publish_version(open_run(project.runs_root(), analysis), root, tag, tracking_uri=uri)


def _alias_in_mlflow(uri: str, name: str, version: str, tag: str) -> str:
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=uri)
    alias = mlflow_alias(tag)
    client.set_registered_model_alias(name, alias, version)
    client.set_model_version_tag(name, version, "opslens_version_tag", tag)
    return alias


def version_tags(root: Path) -> list[str]:
    """The version tags under ``root``, oldest first (``latest`` and temporaries left out)."""
    if not root.is_dir():
        return []
    found = [
        p
        for p in root.iterdir()
        if p.is_dir() and not p.is_symlink() and p.name != LATEST and not p.name.startswith(".")
    ]
    return [p.name for p in sorted(found, key=lambda p: (p.stat().st_mtime, p.name))]


def load_version(root: Path, tag: str = LATEST) -> tuple[Any, dict[str, Any]]:
    """The predictor of version ``tag`` (default: where ``latest`` points) and its meta.yaml."""
    folder = root / tag
    if not (folder / "models.joblib").is_file():
        known = ", ".join(version_tags(root)) or "none"
        raise RunError(
            f"the registry {root} has no version '{tag}' (versions: {known})",
            fix="publish a version first, or name one that exists",
        )
    meta = yaml.safe_load((folder / "meta.yaml").read_text())
    thresholds = json.loads((folder / "thresholds.json").read_text())
    return joblib.load(folder / "models.joblib"), {**meta, "thresholds": thresholds}
