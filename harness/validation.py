"""Turn pydantic validation errors into messages a person can act on: file:line, field, fix."""

from __future__ import annotations

import types
import typing
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from harness.errors import InputError
from harness.excerpt import excerpt
from harness.yamlsource import SourceMap

# A document with a mistake repeated 200,000 times gets the first few and a count, not 200,000
# lines.
MAX_PROBLEMS = 20


class StrictModel(BaseModel):
    """Base for every model parsed from a user's file: unknown keys are mistakes, and no number
    is NaN or infinite (`.nan` compares false with every bound, so it would pass them all)."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False
    )


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
        if isinstance(current, dict) and part in current:
            current = current[part]  # first: a key of the document may contain '[' too
        elif isinstance(part, str) and "[" in part:
            continue  # a validator or type name, e.g. "function-after[...]"
        elif isinstance(current, dict) and current.get("type") == part:
            continue  # the tag pydantic inserts for a discriminated union member
        elif isinstance(current, list) and isinstance(part, int) and part < len(current):
            current = current[part]
        else:
            current = None  # a missing or unknown key: keep it, it is the field at fault
        path.append(part)
    return path


def _field_path(loc: Sequence[Any]) -> str:
    """`faults.0.target`; a key that is long or not plain ASCII is quoted like any value."""
    return ".".join(_path_part(part) for part in loc) or "(top level)"


def _path_part(part: object) -> str:
    text = str(part)
    plain = text.isascii() and text.isprintable() and " " not in text
    return text if plain and 0 < len(text) <= 40 else excerpt(text, 40)


def describe_errors(
    error: ValidationError, source: SourceMap, root: type[BaseModel], data: Any
) -> str:
    """One line per problem: `file:line: field.path: what is wrong (what would be valid)`."""
    problems = error.errors(include_url=False)
    lines: list[str] = []
    for problem in problems[:MAX_PROBLEMS]:
        loc = _data_path(problem["loc"], data)
        field = _field_path(loc)
        message = problem["msg"]
        if problem["type"] == "extra_forbidden" and problem["loc"]:
            owner = _model_at(root, problem["loc"][:-1])
            valid = ", ".join(_field_names(owner)) if owner else "see the documentation"
            message = f"unknown key {excerpt(str(problem['loc'][-1]))}; valid keys here: {valid}"
        elif problem["type"] == "missing":
            message = "required but missing"
        elif problem["type"] == "union_tag_invalid":
            context = problem.get("ctx", {})
            message = (
                f"unknown {context.get('discriminator', 'type').strip(chr(39))} "
                f"{excerpt(context.get('tag'))}; valid: {context.get('expected_tags')}"
            )
        elif "input" in problem and problem["type"] != "value_error":
            message = f"{message} (got {excerpt(problem['input'])})"
        message = message.removeprefix("Value error, ")
        lines.append(f"{source.where(loc)}: {field}: {message}")
    return join_problems(lines, total=len(problems))


def join_problems(lines: Sequence[str], total: int | None = None) -> str:
    """One problem a line, at most MAX_PROBLEMS of them, then how many more there were."""
    total = len(lines) if total is None else total
    shown = list(lines[:MAX_PROBLEMS])
    if total > len(shown):
        shown.append(f"... and {total - len(shown)} more problems")
    return "\n".join(shown)


def nested(message: str, max_lines: int = MAX_PROBLEMS + 1) -> str:
    """Another document's errors inside this one's, indented, at most `max_lines` of them."""
    lines = message.split("\n")
    shown = lines[:max_lines]
    if len(lines) > max_lines:
        shown.append(f"... and {len(lines) - max_lines} more lines")
    return "\n".join("  " + line for line in shown)


M = typing.TypeVar("M", bound=BaseModel)


def parse_document(model: type[M], data: Any, source: SourceMap, error_type: type[InputError]) -> M:
    if not isinstance(data, dict):
        # Quote nothing: a scenario's `topology: secret.env` must not print that file.
        raise error_type(
            f"{source.file}:1: expected a mapping of keys ({', '.join(_field_names(model))}), "
            f"got {_kind(data)}"
        )
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise error_type(describe_errors(error, source, model, data)) from None


def _kind(value: object) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "text"
    if isinstance(value, bool) or value is None:
        return f"{value!r}"
    return f"a {type(value).__name__}"
