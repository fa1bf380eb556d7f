"""Turn pydantic validation errors into messages a person can act on: file:line, field, fix."""

from __future__ import annotations

import types
import typing
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from harness.errors import InputError
from harness.yamlsource import SourceMap


class StrictModel(BaseModel):
    """Base for every model parsed from a user's file: unknown keys are mistakes."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _strip_annotated(annotation: Any) -> Any:
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation


def _union_member_for_tag(annotation: Any, tag: object) -> Any:
    """In a discriminated union, the member whose literal `type` equals `tag`."""
    for member in typing.get_args(annotation):
        member = _strip_annotated(member)
        if isinstance(member, type) and issubclass(member, BaseModel):
            field = member.model_fields.get("type")
            if field is not None and tag in typing.get_args(field.annotation):
                return member
    return None


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _descend(annotation: Any, key: object) -> Any:
    """The annotation reached by following `key` from `annotation`; a model class when `key`
    is not one of that model's fields (the model is then the owner of the unknown key)."""
    annotation = _strip_annotated(annotation)
    if _is_model(annotation):
        field = annotation.model_fields.get(str(key))
        return field.annotation if field is not None else ("owner", annotation)
    origin = typing.get_origin(annotation)
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if origin in (list, dict) and args:
        return args[-1]
    if origin in (typing.Union, types.UnionType) and args:
        member = _union_member_for_tag(annotation, key)
        if member is not None:
            return member
        return _descend(args[0], key) if len(args) == 1 else None
    return None


def _model_at(model: type[BaseModel], loc: Sequence[Any]) -> type[BaseModel] | None:
    """Follow pydantic's raw error location through models, lists, dicts and tagged unions."""
    current: Any = model
    for key in loc:
        current = _descend(current, key)
        if isinstance(current, tuple):
            return typing.cast(type[BaseModel], current[1])
        if current is None:
            return None
    current = _strip_annotated(current)
    if typing.get_origin(current) in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(current) if a is not type(None)]
        current = members[0] if len(members) == 1 else None
    return typing.cast(type[BaseModel], current) if _is_model(current) else None


def _field_names(model: type[BaseModel]) -> list[str]:
    return [info.alias or name for name, info in model.model_fields.items()]


def _data_path(loc: Sequence[Any], data: Any) -> list[str | int]:
    """Keep the parts of a pydantic location that exist in the document; drop the union tags
    and type names pydantic inserts (`faults.0.kill.at_s` -> `faults.0.at_s`)."""
    path: list[str | int] = []
    current = data
    for part in loc:
        if isinstance(part, str) and "[" in part:
            continue  # a validator or type name, e.g. "function-after[...]"
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, dict) and current.get("type") == part:
            continue  # the tag pydantic inserts for a discriminated union member
        elif isinstance(current, list) and isinstance(part, int) and part < len(current):
            current = current[part]
        else:
            current = None  # a missing or unknown key: keep it, it is the field at fault
        path.append(part)
    return path


def describe_errors(
    error: ValidationError, source: SourceMap, root: type[BaseModel], data: Any
) -> str:
    """One line per problem: `file:line: field.path: what is wrong (what would be valid)`."""
    lines: list[str] = []
    for problem in error.errors():
        loc = _data_path(problem["loc"], data)
        field = ".".join(str(part) for part in loc) or "(top level)"
        message = problem["msg"]
        if problem["type"] == "extra_forbidden":
            owner = _model_at(root, problem["loc"][:-1])
            valid = ", ".join(_field_names(owner)) if owner else "see the documentation"
            message = f"unknown key {str(loc[-1])!r}; valid keys here: {valid}"
        elif problem["type"] == "missing":
            message = "required but missing"
        elif problem["type"] == "union_tag_invalid":
            context = problem.get("ctx", {})
            message = (
                f"unknown {context.get('discriminator', 'type').strip(chr(39))} "
                f"{context.get('tag')!r}; valid: {context.get('expected_tags')}"
            )
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
        raise error_type(describe_errors(error, source, model, data)) from None
