"""Configuration: the project file, its sources, secrets and the strict base model.

Example:
    >>> from opslens.config import Columns
    >>> Columns(target="minutes").target
    'minutes'
"""

from opslens.config.base import Strict
from opslens.config.durations import Duration, parse_duration
from opslens.config.messages import validation_message
from opslens.config.project import (
    AnalysisConfig,
    Columns,
    ProjectConfig,
    TrackingConfig,
    load_project,
    project_model,
    read_project_file,
    validate_project,
)
from opslens.config.report import ReportConfig
from opslens.config.secrets import SecretFilter, mask_secrets
from opslens.config.sources import (
    ElasticsearchSource,
    FileSource,
    LongLayout,
    MemorySource,
    SourceConfig,
    SqlSource,
    SyntheticSource,
    TimeWindow,
)

__all__ = [
    "AnalysisConfig",
    "Columns",
    "Duration",
    "ElasticsearchSource",
    "FileSource",
    "LongLayout",
    "MemorySource",
    "ProjectConfig",
    "ReportConfig",
    "SecretFilter",
    "SourceConfig",
    "SqlSource",
    "Strict",
    "SyntheticSource",
    "TimeWindow",
    "TrackingConfig",
    "load_project",
    "mask_secrets",
    "parse_duration",
    "project_model",
    "read_project_file",
    "validate_project",
    "validation_message",
]
