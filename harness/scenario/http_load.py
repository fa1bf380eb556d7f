"""The scenario's load for any system: where it goes (`target`), what it sends (`http`: declarative
requests, or `user_class`: a Locust class of the user's own) and the read-back check after
healing (`read_back`). Documented in scenarios/README.md ("Load for any system").

Templates are parsed here, once, so an unknown name or filter is a file:line error at
validate time; the load worker and the read-back parse them again from the same text.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from harness.excerpt import excerpt
from harness.load.template import BUILT_IN_NAMES, NAME, TemplateError, parse_template
from harness.validation import StrictModel

Label = Annotated[str, Field(min_length=1, max_length=63)]
TemplateText = Annotated[str, Field(max_length=65_536)]
Choice = Annotated[str, Field(max_length=10_000)]
# A status code, or a class of them: "2xx", "4xx".
StatusPattern = Annotated[int, Field(ge=100, le=599)] | Annotated[str, Field(pattern=r"^[1-5]xx$")]
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
READ_BACK_NAMES = ("run", "id")


class LoadTarget(StrictModel):
    """Where the load goes: a service by name, or every service of a role (each sender starts
    on one of them and moves to the next after a request that got no usable answer), at one
    of its ports; `via`: through this link's listen side instead (Toxiproxy)."""

    service: Label | None = None
    role: Label | None = None
    port: Label = "http"
    via: Label | None = Field(default=None, description="a link whose upstream is the target")

    @model_validator(mode="after")
    def _one_way(self) -> LoadTarget:
        if (self.service is None) == (self.role is None) and self.via is None:
            raise ValueError("give exactly one of 'service' or 'role' (or 'via', a link)")
        if self.service is not None and self.role is not None:
            raise ValueError("give 'service' or 'role', not both")
        return self


class RandomField(StrictModel):
    """An integer in [min, max], or a text of `length` characters from `alphabet`."""

    min: int | None = Field(default=None, ge=-(2**62), le=2**62)
    max: int | None = Field(default=None, ge=-(2**62), le=2**62)
    length: int | None = Field(default=None, ge=1, le=65_536)
    alphabet: str = Field(
        default="abcdefghijklmnopqrstuvwxyz0123456789", min_length=1, max_length=1000
    )

    @model_validator(mode="after")
    def _one_kind(self) -> RandomField:
        numeric = self.min is not None or self.max is not None
        if numeric == (self.length is not None):
            raise ValueError("give 'min' and 'max' (an integer) or 'length' (a text)")
        if numeric and (self.min is None or self.max is None or self.min > self.max):
            raise ValueError("an integer needs both 'min' and 'max', with min <= max")
        return self


class SequenceField(StrictModel):
    """start + the request's slot number in the run's schedule: unique within one load."""

    start: int = Field(default=0, ge=0, le=2**62)


class FieldSpec(StrictModel):
    """One value drawn per request: exactly one of `sequence`, `random`, `choice`."""

    sequence: SequenceField | None = None
    random: RandomField | None = None
    choice: list[Choice] | None = Field(default=None, min_length=1, max_length=10_000)

    @model_validator(mode="after")
    def _one_kind(self) -> FieldSpec:
        given = [k for k in ("sequence", "random", "choice") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of 'sequence', 'random' or 'choice'")
        return self


class JsonCondition(StrictModel):
    """A value in the answer's JSON (`path`: keys and list indexes joined by '.'): present, or
    equal to `equals` (compared as text: `true`, `3`, `"ok"` -> ok)."""

    path: Annotated[str, Field(min_length=1, max_length=500)]
    equals: str | None = Field(default=None, max_length=1000)


class AnswerRule(StrictModel):
    """An answer matches when its status is one of `status` and, if given, `json` holds."""

    status: list[StatusPattern] = Field(min_length=1, max_length=100)
    json_: JsonCondition | None = Field(default=None, alias="json")


def _default_acked() -> AnswerRule:
    return AnswerRule(status=["2xx"])


def _default_rejected() -> AnswerRule:
    return AnswerRule(status=["4xx"])


class Classification(StrictModel):
    """How an answer reads, tried in this order: acked (the system took the write), rejected
    (refused on purpose: the system works), unknown (it may or may not have acted, e.g. a
    gateway timeout); anything else is an error (unavailable). No answer at all is unknown."""

    acked: AnswerRule = Field(default_factory=_default_acked)
    rejected: AnswerRule | None = Field(default_factory=_default_rejected)
    unknown: AnswerRule | None = None


def _header_problem(headers: dict[str, str]) -> None:
    for name, value in headers.items():
        # A CR or LF would smuggle another header (or request) onto the connection.
        if any(c in name + value for c in "\r\n") or ":" in name or not name.strip():
            raise ValueError(f"header {excerpt(name)}: no CR, LF or ':' in it")


class HttpRequestSpec(StrictModel):
    """One kind of request: what is sent, how its answer reads, and whether it is a write the
    read-back looks for (`write: true`; its `id` is what the read-back finds)."""

    name: Label = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    weight: float = Field(default=1.0, gt=0, le=1e6)
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "POST"
    path: TemplateText = Field(pattern=r"^/")
    headers: dict[Label, TemplateText] = Field(default_factory=dict, max_length=50)
    body: TemplateText = ""
    id: TemplateText = Field(
        default="{{ run }}-{{ slot }}", description="recorded per request; the read-back's key"
    )
    fields: dict[Label, FieldSpec] = Field(default_factory=dict, max_length=100)
    outcome: Classification = Field(default_factory=Classification)
    write: bool = False

    @model_validator(mode="after")
    def _templates_use_known_names(self) -> HttpRequestSpec:
        _header_problem(self.headers)
        for name in self.fields:
            if not NAME.match(name) or name in (*BUILT_IN_NAMES, "id"):
                raise ValueError(f"field {excerpt(name)}: a name, not run, slot, sender or id")
        known = {*BUILT_IN_NAMES, *self.fields}
        texts = {"path": self.path, "body": self.body, "id": self.id}
        texts.update({f"headers.{k}": v for k, v in self.headers.items()})
        for where, text in texts.items():
            try:
                # The rendered id may be used everywhere but in itself.
                parse_template(text, known if where == "id" else {*known, "id"})
            except TemplateError as error:
                raise ValueError(f"{where}: {error}") from None
        return self


class HttpProfile(StrictModel):
    """Declarative HTTP requests, drawn by weight for every slot of the open-loop schedule."""

    requests: list[HttpRequestSpec] = Field(min_length=1, max_length=100)

    @field_validator("requests")
    @classmethod
    def _unique_names(cls, value: list[HttpRequestSpec]) -> list[HttpRequestSpec]:
        names = [spec.name for spec in value]
        doubled = sorted({name for name in names if names.count(name) > 1})
        if doubled:
            raise ValueError(f"request names must be unique: {', '.join(doubled)}")
        return value


class UserClassSpec(StrictModel):
    """A Locust `User` class of the user's own (scenarios/README.md, "Your own Locust class"):
    `file` relative to the scenario, `name` the class in it."""

    file: Annotated[str, Field(min_length=1, max_length=4096, pattern=r"\.py$")]
    name: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=200)]


class ReadRequest(StrictModel):
    """A request of the read-back; its templates may use `run` and, per write, `id`."""

    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "POST"
    path: TemplateText = Field(pattern=r"^/")
    headers: dict[Label, TemplateText] = Field(default_factory=dict, max_length=50)
    body: TemplateText = ""

    @model_validator(mode="after")
    def _templates(self) -> ReadRequest:
        _header_problem(self.headers)
        for where, text in {"path": self.path, "body": self.body, **self.headers}.items():
            try:
                parse_template(text, set(READ_BACK_NAMES))
            except TemplateError as error:
                raise ValueError(f"{where}: {error}") from None
        return self


class CountAt(StrictModel):
    """Where a per-write answer says how many copies it found (absent: 0)."""

    path: Annotated[str, Field(min_length=1, max_length=500)]


class IdsAt(StrictModel):
    """Where a range answer lists what it holds: a path whose '*' runs over a list
    (`kvs.*.key`), each value decoded (`base64`) into the id a write recorded."""

    path: Annotated[str, Field(min_length=1, max_length=500)]
    decode: Literal["none", "base64"] = "none"


class PerWriteRead(ReadRequest):
    count: CountAt


class RangeRead(ReadRequest):
    ids: IdsAt


class ReadBack(StrictModel):
    """After healing: every acknowledged write (of a `write: true` kind, or any kind a user
    class recorded as a write) is readable, and none is there twice. One request per acked
    write (`per_write`) or one range read (`range`), sent to the load's target."""

    per_write: PerWriteRead | None = None
    range: RangeRead | None = None
    kinds: list[Label] | None = Field(
        default=None, max_length=100, description="request kinds that are writes (default: write)"
    )
    timeout_s: float = Field(default=5.0, gt=0, le=60)
    settle_s: float = Field(default=0.0, ge=0, le=60, description="wait before reading")
    max_reads: int = Field(default=100_000, ge=1, le=1_000_000)

    @model_validator(mode="after")
    def _one_way(self) -> ReadBack:
        if (self.per_write is None) == (self.range is None):
            raise ValueError("give exactly one of 'per_write' or 'range'")
        return self
