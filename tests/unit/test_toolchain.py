"""The toolchain's own logic: cache paths, overrides, messages, staging. No real installs.

Real programs are replaced by tiny shell scripts on a PATH made for each test.
"""

from __future__ import annotations

import os
import re
import stat
import sys
from pathlib import Path

import pytest

from harness.errors import ToolchainError
from harness.toolchain import (
    Toolchain,
    _kafka,
    _paths,
    _process,
    _toxiproxy,
    cache_home,
    ensure_toolchain,
    find_java,
    locate_toolchain,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
OVERRIDES = ("HFTCHAOS_HOME", "TOXIPROXY_BIN", "KAFKA_HOME", "HFTCHAOS_LIBFAKETIME", "JAVA_HOME")


def script(path: Path, body: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    # The fakes may use coreutils; the PATH they were found on has none.
    path.write_text(f"#!/bin/sh\nPATH=/usr/bin:/bin\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty cache and an environment without any override."""
    for name in OVERRIDES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HFTCHAOS_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def bare_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """PATH is one empty directory: no go, java or mvn. Tests add fakes to it."""
    directory = tmp_path / "path"
    directory.mkdir()
    monkeypatch.setenv("PATH", str(directory))
    return directory


@pytest.fixture
def fake_java(bare_path: Path) -> Path:
    return script(bare_path / "java", 'echo "fake java"')


@pytest.fixture
def fake_toxiproxy(tmp_path: Path) -> Path:
    return script(tmp_path / "toxiproxy" / "server", 'echo "toxiproxy-server version 2.12.0"')


@pytest.fixture
def fake_kafka_home(tmp_path: Path) -> Path:
    kafka_home = tmp_path / "kafka_2.13-3.9.1"
    (kafka_home / "libs").mkdir(parents=True)
    (kafka_home / "libs" / "kafka_2.13-3.9.1.jar").write_bytes(b"")
    return kafka_home


# -- where the cache is -----------------------------------------------------------------------


def test_cache_home_follows_hftchaos_home(home: Path) -> None:
    assert cache_home() == home.resolve()


def test_cache_home_defaults_to_the_checkout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HFTCHAOS_HOME", raising=False)
    assert cache_home() == REPO_ROOT / ".cache" / "hftchaos"


def test_cache_home_outside_a_checkout_is_in_the_users_cache(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("HFTCHAOS_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setattr(_paths, "repo_root", lambda: None)
    assert cache_home() == tmp_path / ".cache" / "hftchaos"


# -- missing prerequisites: one line that says how to get it ---------------------------------


@pytest.mark.parametrize(
    ("program", "advice"),
    [
        ("go", "TOXIPROXY_BIN"),
        ("java", "apt-get install -y openjdk-17-jre-headless"),
        ("mvn", "KAFKA_HOME"),
    ],
)
def test_missing_program_message_is_one_line_with_advice(
    bare_path: Path, program: str, advice: str
) -> None:
    with pytest.raises(ToolchainError) as raised:
        _process.find_program(program)
    message = str(raised.value)
    assert message.startswith(f"{program} not found: ")
    assert advice in message
    assert "\n" not in message


def test_java_home_wins_over_path(
    home: Path, fake_java: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert find_java() == fake_java
    java_home = tmp_path / "jdk"
    script(java_home / "bin" / "java", "true")
    monkeypatch.setenv("JAVA_HOME", str(java_home))
    assert find_java() == java_home / "bin" / "java"
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "nowhere"))
    with pytest.raises(ToolchainError, match="has no bin/java"):
        find_java()


def test_ensure_checks_go_before_any_long_step(home: Path, fake_java: Path) -> None:
    with pytest.raises(ToolchainError, match=r"^go not found: .*TOXIPROXY_BIN"):
        ensure_toolchain()
    assert not (home / "bin").exists()


def test_ensure_checks_mvn_when_only_kafka_is_missing(
    home: Path, fake_java: Path, fake_toxiproxy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOXIPROXY_BIN", str(fake_toxiproxy))
    with pytest.raises(ToolchainError, match=r"^mvn not found: .*KAFKA_HOME"):
        ensure_toolchain()


# -- overrides ----------------------------------------------------------------------------------


def test_overrides_make_a_complete_toolchain_without_installing(
    home: Path,
    fake_java: Path,
    fake_toxiproxy: Path,
    fake_kafka_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    faketime = tmp_path / "libfaketime.so.1"
    faketime.write_bytes(b"")
    monkeypatch.setenv("TOXIPROXY_BIN", str(fake_toxiproxy))
    monkeypatch.setenv("KAFKA_HOME", str(fake_kafka_home))
    monkeypatch.setenv("HFTCHAOS_LIBFAKETIME", str(faketime))
    reports: list[tuple[str, str]] = []
    expected = Toolchain(fake_toxiproxy, fake_kafka_home / "libs", faketime, fake_java)
    assert ensure_toolchain(lambda item, message: reports.append((item, message))) == expected
    assert locate_toolchain() == expected
    assert ("toxiproxy", f"{fake_toxiproxy} (version 2.12.0, from TOXIPROXY_BIN)") in reports
    assert not (home / "bin").exists() and not (home / "kafka").exists()


@pytest.mark.parametrize(
    ("variable", "message"),
    [
        ("TOXIPROXY_BIN", "is not an executable file"),
        ("KAFKA_HOME", "has no libs/kafka_2.13-*.jar"),
        ("HFTCHAOS_LIBFAKETIME", "is not a file"),
    ],
)
def test_an_override_that_points_nowhere_is_an_error(
    home: Path,
    fake_java: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    message: str,
) -> None:
    monkeypatch.setenv(variable, str(tmp_path / "missing"))
    with pytest.raises(ToolchainError, match=f"^{variable}=.*{re.escape(message)}"):
        locate_toolchain()


def test_libfaketime_comes_from_the_pypi_package(
    home: Path,
    fake_java: Path,
    fake_toxiproxy: Path,
    fake_kafka_home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TOXIPROXY_BIN", str(fake_toxiproxy))
    monkeypatch.setenv("KAFKA_HOME", str(fake_kafka_home))
    library = locate_toolchain().libfaketime
    assert library.name == "libfaketime.so.1"
    assert library.parts[-4:-1] == ("vendor", "libfaketime", "src")


# -- locate: names what is missing and says to run setup ----------------------------------------


def test_locate_names_every_missing_item(home: Path, fake_java: Path) -> None:
    with pytest.raises(ToolchainError) as raised:
        locate_toolchain()
    message = str(raised.value)
    assert "toxiproxy server" in message and "Kafka jars" in message
    assert message.endswith("run `hftchaos setup`")
    assert "\n" not in message


def test_locate_finds_the_cache_and_notices_a_changed_pom(home: Path, fake_java: Path) -> None:
    script(home / "bin" / "toxiproxy-server", 'echo "toxiproxy-server version 2.12.0"')
    libs = home / "kafka" / "libs"
    libs.mkdir(parents=True)
    (libs / "kafka_2.13-3.9.1.jar").write_bytes(b"")
    (libs / ".pom.sha256").write_text(_kafka.pom_digest() + "\n")
    toolchain = locate_toolchain()
    assert (toolchain.toxiproxy_server, toolchain.kafka_libs) == (
        home / "bin" / "toxiproxy-server",
        libs,
    )
    (libs / ".pom.sha256").write_text("0" * 64 + "\n")
    with pytest.raises(ToolchainError, match=r"predates the current pom\.xml"):
        locate_toolchain()


# -- installs: staged, verified, renamed; failures leave nothing behind -------------------------


FAKE_GO = """
[ "$1" = install ] || exit 9
mkdir -p "$GOBIN"
printf '#!/bin/sh\\necho "toxiproxy-server version 2.12.0"\\n' > "$GOBIN/server"
chmod +x "$GOBIN/server"
"""

FAKE_MVN = """
for argument in "$@"; do
  case "$argument" in -DoutputDirectory=*) out="${argument#-DoutputDirectory=}";; esac
done
mkdir -p "$out" && : > "$out/kafka_2.13-3.9.1.jar" && : > "$out/kafka-clients-3.9.1.jar"
"""


def test_ensure_builds_resolves_and_then_only_checks(
    home: Path, bare_path: Path, fake_java: Path
) -> None:
    script(bare_path / "go", FAKE_GO)
    script(bare_path / "mvn", FAKE_MVN)
    reports: list[tuple[str, str]] = []
    toolchain = ensure_toolchain(lambda item, message: reports.append((item, message)))
    assert toolchain.toxiproxy_server == home / "bin" / "toxiproxy-server"
    assert toolchain.kafka_libs == home / "kafka" / "libs"
    assert _kafka.is_current(toolchain.kafka_libs)
    assert list((home / "tmp").iterdir()) == []
    assert any(item == "kafka" and "installed 2 jars" in message for item, message in reports)

    # A second run finds everything cached: without go or mvn it still succeeds.
    (bare_path / "go").unlink()
    (bare_path / "mvn").unlink()
    reports.clear()
    assert ensure_toolchain(lambda item, message: reports.append((item, message))) == toolchain
    assert ("toxiproxy", f"cached at {toolchain.toxiproxy_server}") in reports
    assert ("kafka", f"cached at {toolchain.kafka_libs}") in reports


def test_a_failed_build_names_the_command_and_its_last_lines(
    home: Path,
    bare_path: Path,
    fake_java: Path,
    fake_kafka_home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KAFKA_HOME", str(fake_kafka_home))
    failing_go = 'echo "go: downloading something"; echo "go: proxy said no" >&2; exit 1'
    script(bare_path / "go", failing_go)
    with pytest.raises(ToolchainError) as raised:
        ensure_toolchain()
    first_line, *rest = str(raised.value).splitlines()
    assert "go install" in first_line
    assert "github.com/Shopify/toxiproxy/v2/cmd/server@v2.12.0" in first_line
    assert "failed with exit code 1" in first_line
    assert rest == ["go: downloading something", "go: proxy said no"]
    assert not (home / "bin" / "toxiproxy-server").exists()
    assert list((home / "tmp").iterdir()) == []


def test_an_unstamped_cached_server_is_rebuilt(
    home: Path,
    bare_path: Path,
    fake_java: Path,
    fake_kafka_home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KAFKA_HOME", str(fake_kafka_home))
    script(home / "bin" / "toxiproxy-server", 'echo "toxiproxy-server version git"')
    script(bare_path / "go", FAKE_GO)
    toolchain = ensure_toolchain()
    assert _toxiproxy.server_version(toolchain.toxiproxy_server) == "2.12.0"


def test_a_changed_pom_replaces_the_cached_jars(
    home: Path,
    bare_path: Path,
    fake_java: Path,
    fake_toxiproxy: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TOXIPROXY_BIN", str(fake_toxiproxy))
    libs = home / "kafka" / "libs"
    libs.mkdir(parents=True)
    (libs / "kafka_2.13-3.8.0.jar").write_bytes(b"")
    (libs / ".pom.sha256").write_text("0" * 64)
    script(bare_path / "mvn", FAKE_MVN)
    ensure_toolchain()
    assert sorted(path.name for path in libs.glob("*.jar")) == [
        "kafka-clients-3.9.1.jar",
        "kafka_2.13-3.9.1.jar",
    ]
    assert _kafka.stamp_of(libs) == _kafka.pom_digest()


def test_leftovers_of_an_interrupted_setup_are_removed(
    home: Path,
    fake_java: Path,
    fake_toxiproxy: Path,
    fake_kafka_home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TOXIPROXY_BIN", str(fake_toxiproxy))
    monkeypatch.setenv("KAFKA_HOME", str(fake_kafka_home))
    leftover = home / "tmp" / "toxiproxy-abc123"
    leftover.mkdir(parents=True)
    (leftover / "server").write_bytes(b"half a binary")
    ensure_toolchain()
    assert not leftover.exists()


def test_a_program_that_is_not_toxiproxy_is_rejected(tmp_path: Path) -> None:
    impostor = script(tmp_path / "server", 'echo "hello"')
    with pytest.raises(ToolchainError, match="is not a toxiproxy server"):
        _toxiproxy.server_version(impostor)


def test_run_reports_a_timeout() -> None:
    with pytest.raises(ToolchainError, match="did not finish within 0s"):
        _process.run([sys.executable, "-c", "import time; time.sleep(5)"], timeout_s=0.2)


def test_run_returns_the_output() -> None:
    assert _process.run([sys.executable, "-c", "print('ok')"], timeout_s=30, env=os.environ) == (
        "ok\n"
    )
