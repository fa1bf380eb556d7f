"""Turn pydantic validation errors into messages a person can act on: file:line, field, fix."""

from __future__ import annotations

import typing
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from harness.errors import InputError
from harness.yamlsource import SourceMap


class StrictModel(BaseModel):
    """Base for every model parsed from a user's file: unknown keys are mistakes."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _model_at(model: type[BaseModel], path: Sequence[str | int]) -> type[BaseModel] | None:
    """Follow a key path through nested models, lists and dicts to the model that holds it."""
    current: Any = model
    for key in path:
        if isinstance(current, type) and issubclass(current, BaseModel):
            info = current.model_fields.get(str(key))
            if info is None:
                return current
            current = info.annotation
        else:
            args = [a for a in typing.get_args(current) if a is not type(None)]
            current = args[-1] if args else None
        # Unwrap Optional/list/dict to the inner model where there is exactly one.
        while current is not None and not (
            isinstance(current, type) and issubclass(current, BaseModel)
        ):
            args = [a for a in typing.get_args(current) if a is not type(None)]
            if not args:
                break
            current = args[-1]
    if isinstance(current, type) and issubclass(current, BaseModel):
        return current
    return None


def _field_names(model: type[BaseModel]) -> list[str]:
    return [info.alias or name for name, info in model.model_fields.items()]


def describe_errors(error: ValidationError, source: SourceMap, root: type[BaseModel]) -> str:
    """One line per problem: `file:line: field.path: what is wrong (what would be valid)`."""
    lines: list[str] = []
    for problem in error.errors():
        loc = [part for part in problem["loc"] if not isinstance(part, str) or "[" not in part]
        field = ".".join(str(part) for part in loc) or "(top level)"
        message = problem["msg"]
        if problem["type"] == "extra_forbidden":
            owner = _model_at(root, loc[:-1])
            valid = ", ".join(_field_names(owner)) if owner else "see the documentation"
            message = f"unknown key {str(loc[-1])!r}; valid keys here: {valid}"
        elif problem["type"] == "missing":
            message = "required but missing"
        elif "input" in problem and problem["type"] != "value_error":
            message = f"{message} (got {problem['input']!r})"
        message = message.removeprefix("Value error, ")
        lines.append(f"{source.where(loc)}: {field}: {message}")
    return "\n".join(lines)


M = typing.TypeVar("M", bound=BaseModel)


def parse_document(model: type[M], data: Any, source: SourceMap, error_type: type[InputError]) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise error_type(describe_errors(error, source, model)) from None
