"""One regression test for each hostile case of the hardening audit (issue 14, "What a
hostile-input pass found"): each is refused as bad input (exit 2) with a message that names
the file, the line and the field, quotes at most a short escaped excerpt, and arrives at once.
The loaders are tried in-process; a handful go through the real CLI for exit codes and output.
"""

from __future__ import annotations

import io
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rich.console import Console

from harness.catalog import RunEntry
from harness.commands.runs import runs_table
from harness.consoles import make_console
from harness.errors import EXIT_BAD_INPUT, InputError
from harness.scenario.loader import load_scenario
from harness.status_view import status_table
from harness.suite.loader import load_suite
from harness.topology.loader import load_topology
from harness.topology.plan import allocate_ports
from tests.unit.test_document_reader import alias_bomb

REPOSITORY = Path(__file__).resolve().parents[2]

SCENARIO = """\
name: ok
load: {rate_per_s: 50, duration_s: 10}
faults:
  - type: kill
    at_s: 3
    target: {role: engine, select: leader}
    restart_after_s: 2
slo:
  failover_ms: {max: 800}
"""

# A small topology of our own: an engine that is a Raft member, a gateway linked to it.
TOPOLOGY = """\
name: mini
services:
  proxy:
    role: toxiproxy
    ports: [api]
    command: ["${toolchain.toxiproxy_server}", -port, "${self.port.api}"]
  n1:
    role: engine
    host: 127.0.0.21
    ports: [http]
    command: ["${python}", -m, http.server, "${self.port.http}"]
    health: {tcp: "${self.address.http}"}
    raft: {url: "http://${self.address.http}/status"}
  gateway:
    ports: [http]
    depends_on: [n1]
    command: [echo, "${links.gateway-n1.address}"]
    env: {LOG_LEVEL: info}
links:
  gateway-n1: {from: gateway, to: n1, port: http}
"""

SCENARIO_ON_MINI = """\
name: on-mini
topology: topology.yaml
load: {rate_per_s: 50, duration_s: 10}
faults:
  - type: latency
    at_s: 3
    duration_s: 2
    latency_ms: 100
    link: {from: gateway, to: {role: engine, select: leader}}
"""

SUITE = """\
name: small
scenarios:
  - file: scenario.yaml
availability: {annual_downtime_budget_s: 9000}
"""


def _scenario_error(path: Path) -> str:
    """The refusal, with a guard against a blow-up (an alias bomb expanded, a read that
    blocks: minutes, not seconds), not a speed figure: refusing the 200,000-item value takes
    ~1 s of CPU here, and a 2 s bound failed once on a loaded machine (2.16 s)."""
    started, cpu_started = time.monotonic(), time.process_time()
    with pytest.raises(InputError) as caught:
        load_scenario(path)
    assert time.process_time() - cpu_started < 10
    assert time.monotonic() - started < 30
    assert caught.value.exit_code == EXIT_BAD_INPUT
    return str(caught.value)


def _write(directory: Path, text: str | bytes, name: str = "scenario.yaml") -> Path:
    path = directory / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def _with_topology(tmp_path: Path, topology: str, scenario: str = SCENARIO_ON_MINI) -> Path:
    _write(tmp_path, topology, "topology.yaml")
    return _write(tmp_path, scenario)


def test_the_fixtures_are_valid(tmp_path: Path) -> None:
    assert load_scenario(_write(tmp_path, SCENARIO)).scenario.name == "ok"
    assert load_scenario(_with_topology(tmp_path, TOPOLOGY)).scenario.name == "on-mini"
    assert load_suite(_write(tmp_path, SUITE, "suite.yaml")).total_runs == 1


# Tracebacks instead of errors.


def test_non_utf8_bytes(tmp_path: Path) -> None:
    path = _write(tmp_path, SCENARIO.encode().replace(b"name: ok", b"name: o\xe9k"))
    assert f"{path}:1: not UTF-8 text" in _scenario_error(path)


def test_unprintable_characters(tmp_path: Path) -> None:
    path = _write(tmp_path, SCENARIO.replace("at_s: 3", "at_s: 3\x08"))
    assert f"{path}:5: unprintable character '\\x08'" in _scenario_error(path)


def test_python_object_tag(tmp_path: Path) -> None:
    path = _write(tmp_path, SCENARIO.replace("name: ok", "name: !!python/object:os.system ok"))
    assert f"{path}:1: tag '!!python/object:os.system' is not allowed" in _scenario_error(path)


def test_deeply_nested_document(tmp_path: Path) -> None:
    path = _write(tmp_path, SCENARIO + "description: " + "[" * 5000 + "]" * 5000 + "\n")
    assert f"{path}:10:" in _scenario_error(path)


def test_topology_dev_zero(tmp_path: Path) -> None:
    path = _write(tmp_path, SCENARIO + "topology: /dev/zero\n")
    assert f"{path}:10: topology: must be 'reference' or the path of a .yaml" in (
        _scenario_error(path)
    )
    (tmp_path / "zero.yaml").symlink_to("/dev/zero")
    path = _write(tmp_path, SCENARIO + "topology: zero.yaml\n")
    message = _scenario_error(path)
    assert f"{path}:10: topology: 'zero.yaml' is not a valid topology" in message
    assert "/dev/zero: cannot read a character device" in message


@pytest.mark.parametrize("key", ["[/x]", "a[b]", "function-after[x]"])
def test_describe_errors_with_a_bracketed_key_does_not_index_error(
    tmp_path: Path, key: str
) -> None:
    path = _write(tmp_path, SCENARIO + f'"{key}": 1\n')
    assert f"{path}:10: {key}: unknown key {key!r}; valid keys here: name" in _scenario_error(path)


# Hangs.


def test_alias_bomb_in_a_scenario_a_suite_and_a_topology(tmp_path: Path) -> None:
    bomb = alias_bomb()
    for load, name in ((load_scenario, "scenario.yaml"), (load_suite, "suite.yaml")):
        started = time.monotonic()
        with pytest.raises(InputError, match="values once aliases are expanded"):
            load(_write(tmp_path, SCENARIO + bomb, name))
        assert time.monotonic() - started < 2, name  # it takes about 0.05 s
    started = time.monotonic()  # `up` loads the topology first
    with pytest.raises(InputError, match="values once aliases are expanded"):
        load_topology(_write(tmp_path, TOPOLOGY + bomb, "topology.yaml"))
    assert time.monotonic() - started < 2


def test_fifo_as_the_scenario_or_its_topology(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    assert f"{fifo}: cannot read a FIFO" in _scenario_error(fifo)
    path = _write(tmp_path, SCENARIO + "topology: fifo.yaml\n")
    assert "fifo.yaml: cannot read a FIFO" in _scenario_error(path)


def test_a_50_mb_file_and_a_5_mb_list(tmp_path: Path) -> None:
    path = _write(tmp_path, SCENARIO + "description: " + "x" * 50_000_000 + "\n")
    assert "larger than the limit of 1 MiB" in _scenario_error(path)
    path = _write(tmp_path, SCENARIO + "checks:\n" + "  - no_lost_acks\n" * 300_000)
    assert "larger than the limit of 1 MiB" in _scenario_error(path)
    path = _write(tmp_path, SCENARIO + "checks: [" + "a," * 400_000 + "]\n")
    assert "more than 100,000 values" in _scenario_error(path)


# Console markup: the CLI cases are at the end; a long name is refused up front.


def test_a_300_character_name(tmp_path: Path) -> None:
    path = _write(tmp_path, SCENARIO.replace("name: ok", "name: " + "a" * 300))
    message = _scenario_error(path)
    assert f"{path}:1: name: String should have at most 63 characters" in message
    assert len(message) < 300
    path = _with_topology(tmp_path, TOPOLOGY.replace("  gateway:", "  " + "g" * 300 + ":"))
    assert "name 'ggggg" in _scenario_error(path)


# Late failures.


def test_health_tcp_that_is_not_host_and_port(tmp_path: Path) -> None:
    topology = TOPOLOGY.replace('tcp: "${self.address.http}"', 'tcp: "${self.host}"')
    message = _scenario_error(_with_topology(tmp_path, topology))
    assert f"{tmp_path / 'topology.yaml'}:12: services.n1.health.tcp: '127.0.0.21' is not " in (
        message
    )


def test_ipv6_loopback_does_not_leak_a_socket_per_port_candidate() -> None:
    before = len(os.listdir("/proc/self/fd"))
    ports = allocate_ports(["::1", "::1", "127.0.0.1"])
    assert len(set(ports)) == 3
    assert len(os.listdir("/proc/self/fd")) == before


def test_ipv6_health_without_a_port(tmp_path: Path) -> None:
    topology = TOPOLOGY.replace("127.0.0.21", '"::1"').replace(
        'tcp: "${self.address.http}"', 'tcp: "${self.host}"'
    )
    assert "services.n1.health.tcp: '::1' is not host:port" in (
        _scenario_error(_with_topology(tmp_path, topology))
    )


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ('{LOG: "a\\0b"}', "control character '\\x00' in 'a\\x00b'"),
        ('{"A=B": x}', "services.gateway.env: variable name 'A=B' must be non-empty, without '='"),
    ],
)
def test_env_with_a_nul_byte_or_a_key_with_equals(tmp_path: Path, env: str, expected: str) -> None:
    topology = TOPOLOGY.replace("env: {LOG_LEVEL: info}", f"env: {env}")
    assert expected in _scenario_error(_with_topology(tmp_path, topology))


def test_an_unknown_placeholder_fails_validate(tmp_path: Path) -> None:
    topology = TOPOLOGY.replace("${links.gateway-n1.address}", "${links.gateway-n9.address}")
    message = _scenario_error(_with_topology(tmp_path, topology))
    assert "topology.yaml:17: services.gateway.command.1: unknown placeholder" in message
    assert "'${links.gateway-n9.address}'" in message


def test_a_wrong_typed_200k_item_value_gives_a_short_line(tmp_path: Path) -> None:
    for items in (200_000, 90_000):
        listed = ", ".join(["1"] * items)
        path = _write(tmp_path, SCENARIO.replace("rate_per_s: 50", f"rate_per_s: [{listed}]"))
        message = _scenario_error(path)
        assert message.startswith(f"{path}:2:") and len(message) < 300, message[:300]


def test_many_problems_are_counted_not_all_printed(tmp_path: Path) -> None:
    path = _write(tmp_path, SCENARIO + "checks: [" + ", ".join(["[x]"] * 90) + "]\n")
    message = _scenario_error(path)
    assert message.count("\n") == 20 and message.endswith("... and 70 more problems")


# A leak.


def test_a_topology_that_is_a_secrets_file_is_not_quoted(tmp_path: Path) -> None:
    secret = "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG"
    for name in ("secret.env", "secret.yaml"):
        (tmp_path / name).write_text(secret + "\n")
        message = _scenario_error(_write(tmp_path, SCENARIO + f"topology: {name}\n"))
        assert "wJalr" not in message and "AWS_SECRET" not in message
        assert f"{tmp_path / 'scenario.yaml'}:10: topology:" in message


# Accepted but wrong.


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("target: {role: engine, select: leader}", "target: n1\n    offset_ms: .nan"), None),
        (("restart_after_s: 2", "restart_after_s: .nan"), ":7: faults.0.restart_after_s"),
        (("slo:", "downtime_budget_ms: .inf\nslo:"), ":8: downtime_budget_ms"),
        (("{max: 800}", "{max: .nan}"), ":9: slo.failover_ms.max"),
        (("{max: 800}", "{min: -.inf}"), ":9: slo.failover_ms.min"),
    ],
)
def test_nan_and_infinity_are_refused(
    tmp_path: Path, change: tuple[str, str], expected: str | None
) -> None:
    if expected is None:  # a clock skew fault with offset_ms: .nan
        text = SCENARIO.replace("type: kill", "type: clock_skew").replace("restart_after_s", "#")
        text, expected = text.replace(*change), ":7: faults.0.offset_ms"
    else:
        text = SCENARIO.replace(*change)
    message = _scenario_error(_write(tmp_path, text))
    assert expected in message and "Input should be a finite number" in message


def test_an_slo_with_min_above_max(tmp_path: Path) -> None:
    path = _write(tmp_path, SCENARIO.replace("{max: 800}", "{max: 800, min: 900}"))
    assert ":9: slo.failover_ms: min (900) is above max (800): no value passes" in (
        _scenario_error(path)
    )


def test_a_bandwidth_of_ten_to_the_hundred(tmp_path: Path) -> None:
    fault = (
        "faults:\n  - {type: bandwidth, at_s: 3, duration_s: 2, link: gateway-n1, "
        f"rate_kb_per_s: {10**100}}}\n"
    )
    text = SCENARIO_ON_MINI.split("faults:")[0] + fault
    message = _scenario_error(_with_topology(tmp_path, TOPOLOGY, text))
    assert ":5: faults.0.rate_kb_per_s: Input should be less than or equal to 10000000" in message
    assert len(message) < 300


def test_a_partition_with_two_empty_groups(tmp_path: Path) -> None:
    text = SCENARIO.replace("type: kill", "type: partition").replace(
        "target: {role: engine, select: leader}", "groups: [[], []]"
    )
    message = _scenario_error(_write(tmp_path, text.replace("    restart_after_s: 2\n", "")))
    assert ":6: faults.0.groups.0: List should have at least 1 item" in message
    assert ":6: faults.0.groups.1: List should have at least 1 item" in message


@pytest.mark.parametrize(
    "link",
    ["{from: n1, to: gateway}", "{from: n1, to: {role: service, select: all}}"],
)
def test_a_link_fault_on_a_link_that_does_not_exist_in_that_direction(
    tmp_path: Path, link: str
) -> None:
    scenario = SCENARIO_ON_MINI.replace("{from: gateway, to: {role: engine, select: leader}}", link)
    message = _scenario_error(_with_topology(tmp_path, TOPOLOGY, scenario))
    assert ":9: faults.0.link: the topology has no link from 'n1' to 'gateway'" in message
    assert "swap from and to" in message


def test_a_selector_needs_a_link_to_every_member_it_may_pick(tmp_path: Path) -> None:
    topology = TOPOLOGY.replace(
        "links:",
        "  n2:\n    role: engine\n    command: [sleep, '1']\n"
        "    raft: {url: 'http://127.0.0.1:1/status'}\nlinks:",
    )
    message = _scenario_error(_with_topology(tmp_path, topology))
    assert "faults.0.link: the topology has no link from 'gateway' to 'n2'" in message


# Nothing reaches a shell.


def test_shell_syntax_in_fields_is_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    text = SCENARIO.replace(
        "name: ok", f"name: ok\ndescription: '$(touch {marker}); touch {marker}'"
    )
    assert load_scenario(_write(tmp_path, text)).scenario.name == "ok"
    topology = TOPOLOGY.replace("[echo,", f"[echo, '$(touch {marker})', '`touch {marker}`',")
    load_scenario(_with_topology(tmp_path, topology))
    assert not marker.exists()


# Text from files is never console markup.


def _rendered(renderable: object) -> str:
    console = make_console()
    console.file = io.StringIO()
    console.width = 200
    console.print(renderable)
    output = console.file.getvalue()
    assert isinstance(output, str)
    return output


def test_the_status_table_prints_a_role_literally() -> None:
    state = {
        "topology": "[red]t",
        "services": {"svc": {"pid": os.getpid(), "role": "[/x]", "ports": {}, "host": "127.0.0.1"}},
    }
    output = _rendered(status_table(state))
    assert "[/x]" in output and "[red]t" in output


def test_the_runs_table_prints_names_and_releases_literally(tmp_path: Path) -> None:
    entry = RunEntry(
        path=tmp_path / "run",
        scenario="[bold]s",
        release="[/x]",
        harness_commit=None,
        target_version=None,
        started_at="2024-01-01T00:00:00Z",
        status="finished",
        verdict="valid",
        duration_s=1.0,
        metrics={},
        checks={},
        failures=[],
    )
    output = _rendered(runs_table([entry], tmp_path / "[red]results"))
    assert "[bold]s" in output and "[/x]" in output and "[red]results" in output


def test_emoji_codes_are_not_replaced() -> None:
    assert "file.yaml:100: x" in _rendered("file.yaml:100: x")
    assert isinstance(make_console(), Console)


# Through the real CLI: exit codes and what a person sees.


def hftchaos(*arguments: str, cwd: Path | None = None, home: Path | None = None) -> tuple[int, str]:
    environment = dict(os.environ, COLUMNS="200")
    if home is not None:
        environment["HFTCHAOS_HOME"] = str(home)
        environment["HFTCHAOS_RESULTS"] = str(home / "results")
    result = subprocess.run(
        [sys.executable, "-m", "harness.cli", *arguments],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd or REPOSITORY,
        env=environment,
    )
    output = result.stdout + result.stderr
    assert "Traceback" not in output and "internal error" not in output, output
    return result.returncode, output


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def test_cli_alias_bomb_within_two_seconds_for_validate_suite_up_and_run(tmp_path: Path) -> None:
    bomb = alias_bomb()
    scenario = _write(tmp_path, SCENARIO + bomb)
    suite = _write(tmp_path, SUITE + bomb, "suite.yaml")
    topology = _write(tmp_path, TOPOLOGY + bomb, "topology.yaml")
    for arguments in (
        ("validate", str(scenario)),
        ("suite", str(suite)),
        ("up", "--topology", str(topology)),
        ("run", str(scenario)),
    ):
        # The command's own CPU time, interpreter start included (about 0.5 s): other work on
        # a busy CI machine must not fail it. A hang would show in the wall time too.
        started, cpu_before = time.monotonic(), _children_cpu_s()
        code, output = hftchaos(*arguments, home=tmp_path / "home")
        assert _children_cpu_s() - cpu_before < 2, arguments
        assert time.monotonic() - started < 10, arguments
        assert code == EXIT_BAD_INPUT, output
        assert "values once aliases are expanded" in output
    assert not (tmp_path / "home" / "results").exists()  # nothing was run
    assert not (tmp_path / "home" / "up").exists()  # nothing was brought up


def test_cli_prints_file_text_literally(tmp_path: Path) -> None:
    literal = _write(tmp_path, SCENARIO, "[red].yaml")
    bad = _write(tmp_path, SCENARIO.replace("name: ok", "name: '[/x]'"), "[bold]x.yaml")
    code, output = hftchaos("validate", str(literal), str(bad))
    assert code == EXIT_BAD_INPUT
    assert f"ok {literal}: ok" in output
    assert f"{bad}:1: name: String should match pattern" in output and "(got '[/x]')" in output


def test_cli_keeps_line_numbers_that_look_like_emoji_codes(tmp_path: Path) -> None:
    path = _write(tmp_path, SCENARIO.replace("slo:", "#\n" * 90 + "slo:") + "colour: red\n")
    code, output = hftchaos("validate", str(path))
    assert code == EXIT_BAD_INPUT
    assert f"{path}:100: colour: unknown key 'colour'" in output


def test_cli_a_bad_topology_does_not_stop_validate(tmp_path: Path) -> None:
    _write(tmp_path, TOPOLOGY.replace("${links.gateway-n1.address}", "${nope}"), "topology.yaml")
    bad = _write(tmp_path, SCENARIO_ON_MINI, "bad.yaml")
    good = _write(tmp_path, SCENARIO, "good.yaml")
    code, output = hftchaos("validate", str(bad), str(good))
    assert code == EXIT_BAD_INPUT
    assert "unknown placeholder '${nope}'" in output
    assert f"ok {good}: ok" in output


def test_cli_leaks_nothing_and_refuses_special_files(tmp_path: Path) -> None:
    (tmp_path / "secret.yaml").write_text("AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI\n")
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    leak = _write(tmp_path, SCENARIO + "topology: secret.yaml\n", "leak.yaml")
    code, output = hftchaos("validate", str(leak), str(fifo), "/dev/zero", str(tmp_path))
    assert code == EXIT_BAD_INPUT
    assert "wJalr" not in output and "AWS_SECRET" not in output
    assert f"{fifo}: cannot read a FIFO" in output
    assert "/dev/zero: cannot read a character device" in output
    assert f"{tmp_path}: cannot read a directory" in output


def test_cli_up_refuses_an_unknown_placeholder_before_touching_anything(tmp_path: Path) -> None:
    topology = _write(tmp_path, TOPOLOGY.replace("${self.port.http}", "${self.port.htp}"), "t.yaml")
    code, output = hftchaos("up", "--topology", str(topology), home=tmp_path / "home")
    assert code == EXIT_BAD_INPUT
    assert f"{topology}:11: services.n1.command.3: unknown placeholder '${{self.port.htp}}'" in (
        output
    )
    assert not (tmp_path / "home" / "up").exists()
