"""The bounded document reader: what it refuses, how fast, and that every refusal names the
file (and the line) without quoting more than a short escaped excerpt."""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from pathlib import Path

import pytest

from harness import yamlcompose
from harness.errors import DocumentError, InputError
from harness.excerpt import EXCERPT_CHARS, excerpt
from harness.textfile import MAX_BYTES, read_text_file
from harness.yamlcompose import MAX_DEPTH, MAX_VALUES
from harness.yamlsource import load_yaml


@pytest.fixture(autouse=True, params=["libyaml", "pure Python"])
def parser(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test runs with both parsers: PyYAML may be built without libyaml."""
    if request.param == "pure Python":
        monkeypatch.setitem(sys.modules, "yaml._yaml", None)  # makes the import fail
        monkeypatch.setattr(yamlcompose, "_LOADER", yamlcompose._loader_class())
        assert yamlcompose._LOADER.__name__ == "PythonLoader"
    return str(request.param)


def _refusal(path: Path) -> str:
    with pytest.raises(DocumentError) as caught:
        load_yaml(path)
    return str(caught.value)


def _write(tmp_path: Path, content: bytes | str, name: str = "doc.yaml") -> Path:
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    return path


def alias_bomb(levels: int = 9, width: int = 9) -> str:
    """The classic 'billion laughs': each level lists the previous one `width` times."""
    lines = ["a0: &a0 [" + ", ".join(['"lol"'] * width) + "]"]
    for level in range(1, levels):
        items = ", ".join([f"*a{level - 1}"] * width)
        lines.append(f"a{level}: &a{level} [{items}]")
    return "\n".join(lines) + "\n"


def test_a_plain_document_loads_with_its_lines(tmp_path: Path) -> None:
    data, source = load_yaml(_write(tmp_path, "name: x\nlist:\n  - 1\n  - {a: .5}\n"))
    assert data == {"name": "x", "list": [1, {"a": 0.5}]}
    assert source.line_of(("list", 1, "a")) == 4


# Special files: refused from their stat alone, without a byte read or a moment blocked.


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    started = time.monotonic()
    assert "cannot read a FIFO" in _refusal(fifo)
    assert time.monotonic() - started < 1


def test_a_fifo_swapped_in_after_the_stat_does_not_block(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stat saw a regular file; by the open it is a FIFO without a writer. O_NONBLOCK
    opens it at once and the fstat refuses it."""
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    regular = os.stat(_write(tmp_path, "a: 1\n", "regular.yaml"))
    real_stat = os.stat
    monkeypatch.setattr(
        "harness.textfile.os.stat",
        lambda path, *a, **k: regular if Path(path) == fifo else real_stat(path, *a, **k),
    )
    done = threading.Event()
    outcome: list[str] = []

    def read() -> None:
        try:
            read_text_file(fifo)
        except DocumentError as error:
            outcome.append(str(error))
        done.set()

    threading.Thread(target=read, daemon=True).start()
    assert done.wait(2), "reading a FIFO blocked"
    assert outcome and "FIFO" in outcome[0]


@pytest.mark.parametrize(
    ("path", "kind"), [(Path("/dev/zero"), "character device"), (Path("/"), "directory")]
)
def test_devices_and_directories_are_refused(path: Path, kind: str) -> None:
    assert f"cannot read a {kind}" in _refusal(path)


def test_a_symlink_to_dev_zero_is_refused(tmp_path: Path) -> None:
    link = tmp_path / "zero.yaml"
    link.symlink_to("/dev/zero")
    assert "cannot read a character device" in _refusal(link)


def test_a_socket_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(path))
        assert "cannot read a socket" in _refusal(path)


def test_a_missing_file_and_an_overlong_name_are_input_errors(tmp_path: Path) -> None:
    assert _refusal(tmp_path / "missing.yaml").endswith("missing.yaml: no such file")
    assert "File name too long" in _refusal(tmp_path / ("x" * 300 + ".yaml"))


# Size.


def test_a_file_over_the_size_limit_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    with path.open("wb") as stream:
        stream.truncate(50 * MAX_BYTES)  # sparse: 50 MiB of NULs that are never read
    started = time.monotonic()
    assert "larger than the limit of 1 MiB" in _refusal(path)
    assert time.monotonic() - started < 1


def test_a_file_just_at_the_limit_is_read(tmp_path: Path) -> None:
    comment = b"# " + b"x" * (MAX_BYTES - len(b"# \na: 1\n")) + b"\na: 1\n"
    assert len(comment) == MAX_BYTES
    assert load_yaml(_write(tmp_path, comment))[0] == {"a": 1}
    assert "larger than the limit" in _refusal(_write(tmp_path, comment + b"\n"))


# Bytes and characters.


def test_bytes_that_are_not_utf8_name_their_line_and_column(tmp_path: Path) -> None:
    message = _refusal(_write(tmp_path, b"name: x\nother: ab\xff\xfe\n"))
    assert message.endswith(
        "doc.yaml:2: not UTF-8 text: byte b'\\xff' at column 10 (invalid start byte); "
        "save the file as UTF-8"
    )


@pytest.mark.parametrize("character", ["\x00", "\x07", "\x1b", "\x7f", "\ufffe"])
def test_unprintable_characters_name_their_line(tmp_path: Path, character: str) -> None:
    message = _refusal(_write(tmp_path, f"a: 1\nb: x{character}y\n"))
    assert f"doc.yaml:2: unprintable character {character!r}" in message
    assert "column 5" in message


def test_a_utf8_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    assert load_yaml(_write(tmp_path, "\ufeffa: 1\n"))[0] == {"a": 1}


@pytest.mark.parametrize("escape", ["\\0", "\\e", "\\x1b", "\\r", "\\x85"])
def test_control_characters_written_as_escapes_are_refused_in_values(
    tmp_path: Path, escape: str
) -> None:
    message = _refusal(_write(tmp_path, f'a: 1\nenv: {{KEY: "x{escape}y"}}\n'))
    assert "doc.yaml:2: control character" in message
    assert "only printable text is allowed in values" in message


# YAML bounds: aliases, depth, tags, keys, values Python cannot hold.


def test_the_alias_bomb_is_refused_within_two_seconds(tmp_path: Path) -> None:
    path = _write(tmp_path, alias_bomb())
    assert len(path.read_bytes()) < 1000
    started = time.monotonic()
    message = _refusal(path)
    assert time.monotonic() - started < 2
    assert f"more than {MAX_VALUES:,} values once aliases are expanded" in message
    assert message.startswith(f"{path}:")


def test_a_few_aliases_are_fine(tmp_path: Path) -> None:
    data, _ = load_yaml(_write(tmp_path, "a: &x {k: 1}\nb: *x\nc: [*x, *x]\n"))
    assert data == {"a": {"k": 1}, "b": {"k": 1}, "c": [{"k": 1}, {"k": 1}]}


def test_an_alias_inside_its_own_anchor_is_refused(tmp_path: Path) -> None:
    message = _refusal(_write(tmp_path, "a: &x [1, *x]\n"))
    assert "doc.yaml:1: alias *x refers to a value that contains it" in message


def test_an_undefined_alias_is_a_yaml_error(tmp_path: Path) -> None:
    assert "not valid YAML: found undefined alias" in _refusal(_write(tmp_path, "a: *nope\n"))


@pytest.mark.parametrize("style", ["flow", "block"])
def test_deep_nesting_is_refused_without_recursion_error(tmp_path: Path, style: str) -> None:
    depth = MAX_DEPTH + 5
    if style == "flow":
        text = "a: " + "[" * depth + "]" * depth + "\n"
    else:
        text = (
            "".join("  " * level + f"k{level}:\n" for level in range(depth)) + "  " * depth + "1\n"
        )
    message = _refusal(_write(tmp_path, text))
    assert f"nested more than {MAX_DEPTH} levels deep" in message


def test_very_deep_flow_nesting_is_refused(tmp_path: Path) -> None:
    depth = 200_000
    message = _refusal(_write(tmp_path, "a: " + "[" * depth + "]" * depth + "\n"))
    assert "doc.yaml:1:" in message


@pytest.mark.parametrize(
    "value",
    [
        "!!python/object:os.system {}",
        "!!python/object/apply:os.system ['true']",
        "!!python/name:os.system ''",
        "!custom x",
        "!!binary aGVsbG8=",
        "!!set {a, b}",
        "!!omap [{a: 1}]",
        "!<tag:example.com,2000:x> 1",
    ],
)
def test_tags_beyond_plain_data_are_refused(tmp_path: Path, value: str) -> None:
    message = _refusal(_write(tmp_path, f"a: 1\nb: {value}\n"))
    assert "doc.yaml:2: tag" in message
    assert "is not allowed" in message or "does not fit" in message


def test_standard_tags_are_fine(tmp_path: Path) -> None:
    data, _ = load_yaml(_write(tmp_path, "a: !!str 1\nb: !!int '2'\nc: !!float 3\nd: =\n"))
    assert data == {"a": "1", "b": 2, "c": 3.0, "d": "="}


def test_merge_keys_are_refused_with_a_reason(tmp_path: Path) -> None:
    message = _refusal(_write(tmp_path, "base: &b {x: 1}\nc:\n  <<: *b\n"))
    assert "doc.yaml:3: merge keys (<<) are not supported" in message


@pytest.mark.parametrize("key", ["[a, b]", "{a: 1}"])
def test_a_key_that_is_a_collection_is_refused(tmp_path: Path, key: str) -> None:
    message = _refusal(_write(tmp_path, f"a: 1\n? {key}\n: v\n"))
    assert "a key must be a plain value" in message


def test_duplicate_keys_are_refused(tmp_path: Path) -> None:
    assert "doc.yaml:2: duplicate key 'a'" in _refusal(_write(tmp_path, "a: 1\na: 2\n"))


@pytest.mark.parametrize(
    ("value", "reason"),
    [("9" * 5000, "Exceeds the limit"), ("2024-13-45", "month must be in 1..12")],
)
def test_a_value_python_cannot_hold_is_refused(tmp_path: Path, value: str, reason: str) -> None:
    message = _refusal(_write(tmp_path, f"a: {value}\n"))
    assert "doc.yaml:1: cannot read" in message and reason in message
    assert len(message) < 300


def test_a_second_document_and_an_empty_file_are_refused(tmp_path: Path) -> None:
    assert "not valid YAML" in _refusal(_write(tmp_path, "a: 1\n---\nb: 2\n"))
    assert "the file is empty" in _refusal(_write(tmp_path, "# nothing\n"))


def test_every_refusal_is_an_input_error() -> None:
    assert issubclass(DocumentError, InputError)


# Excerpts.


def test_an_excerpt_is_short_and_escaped() -> None:
    assert excerpt("\x1b[31m[red]") == "'\\x1b[31m[red]'"
    long = excerpt("x" * 1_000_000)
    assert len(long) < EXCERPT_CHARS + 30 and long.endswith("(1000000 characters)")
    many = excerpt(list(range(200_000)))
    assert many == "[0, 1, 2, 3, 4, 5, ...] (200000 items)"
    assert len(excerpt({"k": ["v" * 500] * 500})) <= EXCERPT_CHARS
