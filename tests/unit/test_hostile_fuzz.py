"""Property-based hostile input: whatever a scenario, suite or topology file contains, loading
it either succeeds or is refused as bad input (exit 2) with a clear message: every line names
the file (and the line), none is long or unprintable. It happens within a time bound and
starts nothing (no process, no socket).

Two sources of documents: the library's own files, mutated byte by byte and value by value,
and generated hostile documents (wrong types, huge and non-finite numbers, deep nesting, alias
bombs, unknown tags, bytes that are not UTF-8, files around the size limit, special files).
The number of examples comes from the hypothesis profile (tests/conftest.py): bounded in CI,
many more with `nox -s fuzz`.
"""

from __future__ import annotations

import _posixsubprocess
import copy
import gc
import os
import re
import shutil
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from harness.errors import EXIT_BAD_INPUT, InputError
from harness.scenario.loader import load_scenario
from harness.suite.loader import load_suite
from harness.textfile import MAX_BYTES
from harness.topology.loader import load_topology
from harness.topology.plan import check_plan

REPOSITORY = Path(__file__).resolve().parents[2]
# Where each kind of library file lives, relative to the repository (and to the workspace).
FOLDERS = {
    "scenario": Path("scenarios"),
    "suite": Path("scenarios/suites"),
    "topology": Path("targets/reference"),
}
LIBRARY = {
    "scenario": sorted((REPOSITORY / "scenarios").glob("*.yaml")),
    "suite": sorted((REPOSITORY / "scenarios/suites").glob("*.yaml")),
    "topology": sorted((REPOSITORY / "targets/reference").glob("topology*.yaml")),
}
KINDS = sorted(LIBRARY)
# In-process loading of the largest library document takes about 0.1 s (a suite loads all 14
# scenarios), the worst hostile one (a megabyte list, refused at 100,000 values) 0.5 s; 2 s is
# the bound the issue sets for an alias bomb. It is CPU time, so that other work on a busy CI
# machine cannot fail an example, and the garbage collector is held off meanwhile (a full
# collection walks everything hypothesis keeps, and took 1.5 s once); a document that blocks
# shows in the wall-time bound.
CPU_BOUND_S = 2.0
WALL_BOUND_S = 8.0
MAX_LINE = 1000
# A tab may stand in a file's name (it is printable YAML); nothing else unprintable may.
UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _validate_topology(path: Path) -> None:
    check_plan(load_topology(path))  # what `validate` does with a scenario's topology


LOADERS: dict[str, Callable[[Path], object]] = {
    "scenario": load_scenario,
    "suite": load_suite,
    "topology": _validate_topology,
}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the library, so that files written beside its own keep relative paths
    (a suite's `../leader-kill.yaml`, a scenario's `../targets/...`) working."""
    root = tmp_path_factory.mktemp("library")
    for kind, files in LIBRARY.items():
        (root / FOLDERS[kind]).mkdir(parents=True, exist_ok=True)
        for file in files:
            shutil.copy(file, root / FOLDERS[kind] / file.name)
    return root


def example_path(workspace: Path, kind: str) -> Path:
    path = workspace / FOLDERS[kind] / "_example.yaml"
    if path.is_symlink() or path.exists():
        if path.is_dir() and not path.is_symlink():
            path.rmdir()
        else:
            path.unlink()
    return path


@contextmanager
def nothing_started() -> Iterator[None]:
    """Any attempt to start a process or open a port fails the example."""

    def refuse(*_arguments: object, **_keywords: object) -> None:
        raise AssertionError("loading a document tried to start a process or open a socket")

    with ExitStack() as stack:
        for owner, name in (
            (_posixsubprocess, "fork_exec"),
            (os, "fork"),
            (os, "posix_spawn"),
            (os, "posix_spawnp"),
            (os, "system"),
            (socket.socket, "bind"),
            (socket.socket, "connect"),
        ):
            stack.enter_context(mock.patch.object(owner, name, refuse))
        yield


def assert_clear(message: str, path: Path) -> None:
    assert message and "Traceback" not in message
    assert len(message) < 50_000
    for line in message.split("\n"):
        assert len(line) <= MAX_LINE, line[:200]
        assert not UNPRINTABLE.search(line), repr(line[:200])
        if line.startswith("  ") or line.startswith("... and "):
            continue  # a nested document's problem, or the count of those not shown
        assert re.match(rf"{re.escape(str(path))}(:\d+)?: \S", line), line[:300]


def assert_refused_cleanly_or_valid(path: Path, kind: str) -> None:
    message: str | None = None
    gc.collect()
    gc.disable()
    started, cpu_started = time.monotonic(), time.process_time()
    try:
        with nothing_started():
            LOADERS[kind](path)
    except InputError as error:
        message = str(error)
        assert error.exit_code == EXIT_BAD_INPUT
    finally:
        cpu, wall = time.process_time() - cpu_started, time.monotonic() - started
        gc.enable()
    assert cpu < CPU_BOUND_S and wall < WALL_BOUND_S, f"{cpu:.2f} s of CPU, {wall:.2f} s"
    if message is not None:
        assert_clear(message, path)


def write(workspace: Path, kind: str, content: bytes) -> Path:
    path = example_path(workspace, kind)
    path.write_bytes(content)
    return path


# Mutations of the library's own files.

SNIPPETS = [
    "[/x]", "[red]", ":100:", ".nan", ".inf", "-.inf", "1.0e+400", "1" + "0" * 100, "-1", "0",
    "~", "null", "true", "''", '""', "{", "}", "[", "]", ": ", "- ", "? ", "&a ", "*a", "*b",
    "<<: *a", "!!python/object:os.system ", "!!binary aGk=", "!foo ", "!!set ", "%YAML 1.1\n",
    "---\n", "...\n", "\t", "\ufeff", "\u2028", '"\\0"', '"\\e[31m"', '"\\x85"', "=",
    "${self.host}", "${nope}", "${services.x.port.y}", "${self.address.http}", "../../x",
    "/dev/zero", "secret.env", "2024-13-45", "9" * 5000, "'" + "x" * 2000 + "'",
    "$(touch /tmp/hftchaos-pwned)", "; touch /tmp/hftchaos-pwned", "::1", "A=B",
]  # fmt: skip

VALUE_AT = re.compile(rb": [^\n]*")


@st.composite
def mutated(draw: st.DrawFn, original: bytes) -> bytes:
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 4))):
        position = draw(st.integers(0, len(data)))
        operation = draw(st.sampled_from(["insert", "delete", "byte", "line", "value"]))
        if operation == "insert":
            data[position:position] = draw(st.sampled_from(SNIPPETS)).encode()
        elif operation == "delete":
            del data[position : position + draw(st.integers(1, 40))]
        elif operation == "byte" and data:
            data[min(position, len(data) - 1)] = draw(st.integers(0, 255))
        elif operation == "line":
            lines = bytes(data).split(b"\n")
            line = lines[draw(st.integers(0, len(lines) - 1))]
            lines.insert(draw(st.integers(0, len(lines))), line)
            data = bytearray(b"\n".join(lines))
        else:
            values = list(VALUE_AT.finditer(bytes(data)))
            if values:
                found = values[draw(st.integers(0, len(values) - 1))]
                replacement = b": " + draw(st.sampled_from(SNIPPETS)).encode()
                data[found.start() : found.end()] = replacement
    return bytes(data)


def _library_file(kind: str) -> st.SearchStrategy[Path]:
    return st.sampled_from(LIBRARY[kind])


@pytest.mark.parametrize("kind", KINDS)
@given(data=st.data())
def test_mutated_library_files(workspace: Path, kind: str, data: st.DataObject) -> None:
    original = data.draw(_library_file(kind)).read_bytes()
    content = data.draw(mutated(original))
    assert_refused_cleanly_or_valid(write(workspace, kind, content), kind)


# Generated hostile documents.


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*prefix, index))
    return found


PARSED = {
    kind: [(yaml.safe_load(file.read_text()), file) for file in files]
    for kind, files in LIBRARY.items()
}
HOSTILE_VALUES: st.SearchStrategy[Any] = st.one_of(
    st.floats(),  # NaN and both infinities included
    st.integers(min_value=-(10**120), max_value=10**120),
    st.sampled_from(
        [10**100, -(10**100), 2**63, 1e308, -0.0, 0, "", " ", True, False, None, [], {}]
    ),
    st.text(max_size=80),  # control characters too: the dumper writes them as escapes
    st.sampled_from(["[/x]", "[red]x", "${self.host}", "${nope}", "../../x", "/dev/zero",
                     "secret.env", "x.yaml", "a\x00b", "A=B", "::1", ":100:", "\x1b[31m"]),
    st.lists(st.integers() | st.text(max_size=5), max_size=5),
    st.dictionaries(st.text(max_size=8), st.integers() | st.none(), max_size=4),
    st.integers(0, 150_000).map(lambda n: [1] * n),  # a huge wrong-typed value
    st.integers(0, 1_200_000).map(lambda n: "x" * n),  # up to past the size limit
)  # fmt: skip


def _set(document: Any, path: tuple[Any, ...], value: Any) -> None:
    *parents, last = path
    for key in parents:
        document = document[key]
    document[last] = value


@given(data=st.data())
def test_documents_with_hostile_values(workspace: Path, data: st.DataObject) -> None:
    kind = data.draw(st.sampled_from(KINDS))
    parsed, _file = data.draw(st.sampled_from(PARSED[kind]))
    document = copy.deepcopy(parsed)
    for _ in range(data.draw(st.integers(1, 3))):
        paths = _paths(document)
        value = data.draw(HOSTILE_VALUES)
        if data.draw(st.booleans()) or not paths:  # a key the model does not know
            owner = data.draw(st.sampled_from([()] + [p for p in paths if _is_dict(document, p)]))
            _set(document, (*owner, data.draw(st.text(min_size=1, max_size=20))), value)
        else:
            _set(document, data.draw(st.sampled_from(paths)), value)
    text = yaml.dump(document, Dumper=yaml.CSafeDumper, allow_unicode=data.draw(st.booleans()))
    assert_refused_cleanly_or_valid(write(workspace, kind, text.encode()), kind)


def _is_dict(document: Any, path: tuple[Any, ...]) -> bool:
    for key in path:
        document = document[key]
    return isinstance(document, dict)


def _with_value(original: str, value: str, at: int) -> str:
    """The library document with one of its values (counted from the top) replaced."""
    lines = original.split("\n")
    candidates = [i for i, line in enumerate(lines) if re.search(r":\s*\S", line)]
    index = candidates[at % len(candidates)]
    key = lines[index].split(":", 1)[0]
    lines[index] = f"{key}: {value}"
    return "\n".join(lines)


@given(
    kind=st.sampled_from(KINDS),
    depth=st.integers(1, 3000),
    style=st.sampled_from(["flow-list", "flow-map", "block"]),
    at=st.integers(0, 1000),
)
def test_deep_nesting(workspace: Path, kind: str, depth: int, style: str, at: int) -> None:
    if style == "flow-list":
        nested = "[" * depth + "]" * depth
    elif style == "flow-map":
        nested = "{a: " * depth + "1" + "}" * depth
    else:
        depth = min(depth, 400)
        nested = "".join(f"\n{'  ' * (level + 1)}k{level}:" for level in range(depth)) + " 1"
    original = LIBRARY[kind][0].read_text()
    text = _with_value(original, nested, at) if style != "block" else original + "deep:" + nested
    assert_refused_cleanly_or_valid(write(workspace, kind, text.encode()), kind)


@given(
    kind=st.sampled_from(KINDS),
    levels=st.integers(1, 12),
    width=st.integers(1, 12),
    key=st.sampled_from(["description", "bomb", "checks", "slo", "services", "scenarios"]),
)
def test_alias_bombs(workspace: Path, kind: str, levels: int, width: int, key: str) -> None:
    anchors = ["_0: &a0 [" + ", ".join(['"lol"'] * width) + "]"]
    anchors += [
        f"_{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * width) + "]"
        for level in range(1, levels)
    ]
    # The anchors under one key, the bomb under another: both are unknown or wrong, but only
    # after every alias is counted.
    text = (
        LIBRARY[kind][0].read_text()
        + "anchors:\n"
        + "".join(f"  {line}\n" for line in anchors)
        + f"{key}: *a{levels - 1}\n"
    )
    assert_refused_cleanly_or_valid(write(workspace, kind, text.encode()), kind)


TAGS = st.one_of(
    st.sampled_from([
        "!!python/object:os.system", "!!python/object/apply:os.system", "!!python/name:os.system",
        "!!python/module:os", "!!binary", "!!set", "!!omap", "!!pairs", "!!map", "!!seq",
        "!!str", "!!int", "!!float", "!!bool", "!!null", "!!timestamp", "!!merge", "!!value",
        "!", "!local", "!<tag:example.com,2000:x>",
    ]),
    st.from_regex(r"\A!!?[A-Za-z0-9/:._-]{1,30}\Z"),
)  # fmt: skip


@given(data=st.data(), tag=TAGS)
def test_unknown_tags(workspace: Path, data: st.DataObject, tag: str) -> None:
    kind = data.draw(st.sampled_from(KINDS))
    original = data.draw(_library_file(kind)).read_text()
    values = list(re.finditer(r": (\S)", original))
    found = values[data.draw(st.integers(0, len(values) - 1))]
    text = original[: found.start(1)] + tag + " " + original[found.start(1) :]
    assert_refused_cleanly_or_valid(write(workspace, kind, text.encode()), kind)


UNPRINTABLE_CHARACTERS = st.one_of(
    st.integers(0, 0x1F).filter(lambda c: c not in (0x09, 0x0A, 0x0D)),
    st.integers(0x7F, 0x9F),
    st.sampled_from([0xFFFE, 0xFFFF]),
).map(chr)


@given(
    data=st.data(),
    inserted=st.one_of(
        st.binary(min_size=1, max_size=8),
        UNPRINTABLE_CHARACTERS.map(lambda c: c.encode("utf-8")),
        st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80"]),
    ),
)
def test_bytes_that_are_not_printable_utf8(
    workspace: Path, data: st.DataObject, inserted: bytes
) -> None:
    kind = data.draw(st.sampled_from(KINDS))
    original = data.draw(_library_file(kind)).read_bytes()
    position = data.draw(st.integers(0, len(original)))
    content = original[:position] + inserted + original[position:]
    assert_refused_cleanly_or_valid(write(workspace, kind, content), kind)


@given(
    kind=st.sampled_from(KINDS),
    excess=st.integers(-4096, 4096),
    filler=st.sampled_from(["comment", "string", "list", "keys"]),
)
def test_files_around_the_size_limit(workspace: Path, kind: str, excess: int, filler: str) -> None:
    original = LIBRARY[kind][0].read_bytes()
    room = MAX_BYTES + excess - len(original)
    unit = {"comment": b"#" + b"x" * 70 + b"\n", "string": b"", "list": b"  - 1\n"}.get(
        filler, b"k%06d: 1\n"
    )
    if filler == "string":
        tail = b"\nfiller: '" + b"x" * max(0, room - 12) + b"'\n"
    elif filler == "list":
        tail = b"\nfiller:\n" + unit * max(0, room // len(unit))
    elif filler == "comment":
        tail = b"\n" + unit * max(0, room // len(unit))
    else:
        tail = b"\n" + b"".join(unit % i for i in range(max(0, room // 10)))
    content = original + tail
    path = write(workspace, kind, content)
    assert_refused_cleanly_or_valid(path, kind)
    if len(content) > MAX_BYTES:
        with pytest.raises(InputError, match="larger than the limit"):
            LOADERS[kind](path)


SPECIALS = ["fifo", "directory", "dev-zero", "dev-null", "socket", "missing", "dangling", "loop"]


def make_special(path: Path, special: str, stack: ExitStack) -> None:
    if special == "fifo":
        os.mkfifo(path)
    elif special == "directory":
        path.mkdir()
    elif special in ("dev-zero", "dev-null"):
        path.symlink_to(f"/dev/{special.removeprefix('dev-')}")
    elif special == "socket":
        listener = stack.enter_context(socket.socket(socket.AF_UNIX))
        listener.bind(str(path))
    elif special == "dangling":
        path.symlink_to(path.parent / "nowhere.yaml")
    elif special == "loop":
        path.symlink_to(path)


@given(
    special=st.sampled_from(SPECIALS),
    named_by=st.sampled_from(["itself", "a scenario's topology", "a suite's scenario"]),
)
def test_special_files(workspace: Path, special: str, named_by: str) -> None:
    with ExitStack() as stack:
        if named_by == "itself":
            path = example_path(workspace, "scenario")
            make_special(path, special, stack)
            assert_refused_cleanly_or_valid(path, "scenario")
            return
        target = workspace / "scenarios" / "_special.yaml"
        if target.is_symlink() or target.is_file() or target.is_socket() or target.is_fifo():
            target.unlink()
        elif target.is_dir():
            target.rmdir()
        make_special(target, special, stack)
        if named_by == "a scenario's topology":
            text = LIBRARY["scenario"][0].read_text() + "\ntopology: _special.yaml\n"
            kind = "scenario"
        else:
            text = "name: s\nscenarios: [{file: ../_special.yaml}]\n"
            text += "availability: {annual_downtime_budget_s: 60}\n"
            kind = "suite"
        path = write(workspace, kind, text.encode())
        with pytest.raises(InputError):
            LOADERS[kind](path)
        assert_refused_cleanly_or_valid(path, kind)
