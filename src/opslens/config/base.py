"""The one strict base model every configuration model derives from.

Unknown keys are errors and a validated model is frozen, so a config read
once cannot drift. Recipe params models derive from :class:`Strict` too.

Example:
    >>> class P(Strict):
    ...     k: int = 3
    >>> P().k
    3
    >>> from pydantic import ValidationError
    >>> try:
    ...     P.model_validate({"kk": 1})
    ... except ValidationError as e:
    ...     print(e.errors()[0]["type"])
    extra_forbidden
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["Strict"]


class Strict(BaseModel):
    """Forbid unknown keys; freeze after validation."""

    model_config = ConfigDict(extra="forbid", frozen=True)
