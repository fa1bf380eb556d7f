"""An SLO limit on one metric: a maximum, a minimum or both (pure, no scenario around it)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from harness.validation import StrictModel

# An SLO bound: every metric is a non-negative count, rate or duration.
Bound = Annotated[float, Field(ge=0, le=1e12)]


class Limit(StrictModel):
    max: Bound | None = None
    min: Bound | None = None

    @model_validator(mode="after")
    def _one_bound(self) -> Limit:
        if self.max is None and self.min is None:
            raise ValueError("give 'max' or 'min'")
        if self.max is not None and self.min is not None and self.min > self.max:
            raise ValueError(f"min ({self.min:g}) is above max ({self.max:g}): no value passes")
        return self
