"""Kernel packet drops on loopback through iptables, tagged so a sweep can always undo them.

Every rule lives in the chain `HFTCHAOS`, which INPUT jumps to; the chain and the jump are
created on demand and removed once the chain is empty. Rules match `-i lo` in INPUT on
purpose: a loopback packet passes INPUT once, on arrival, and a drop there is a silent loss,
whereas a drop in OUTPUT makes the sender's own syscall fail with EPERM, which no real network
does. Each rule carries `-m comment --comment hftchaos:<run_id>:<fault_key>`.

Rule specs are built in the order `iptables -S` prints them (source, destination, interface,
matches, target). Removal finds rules by tag in the listing, never by our own spec text: the
kernel keeps a probability quantised (0.1 reads back as 0.10000000009). Processes of the
harness serialise their changes to the chain through a file lock.

Rules go in and out through a kept-open iptables-restore (`restore_session.py`), and the
chain stays, empty, from a run's first fault to its sweep: a fault then costs one write, not a
listing and a program (~4 ms each). Another process's sweep may take the empty chain away
meanwhile; a block refused for that makes the chain again and is applied once more.
"""

from __future__ import annotations

import fcntl
import ipaddress
import os
import re
import shlex
import shutil
import subprocess
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from harness.errors import BackendError, RuntimeEnvironmentError
from harness.faults import restore_session

CHAIN = "HFTCHAOS"
PARENT_CHAIN = "INPUT"
TAG_PREFIX = "hftchaos"
JUMP_TAG = f"{TAG_PREFIX}:jump"
COMMAND_TIMEOUT_S = 10.0
LOCK_FILE = Path("/run/lock/hftchaos-netfilter.lock")

_TAG_PART = re.compile(r"[A-Za-z0-9_.-]+")
_MAX_COMMENT_CHARS = 256  # the kernel's limit for -m comment


@dataclass(frozen=True)
class Rule:
    """One iptables rule: its chain and the arguments that follow `-A <chain>`."""

    chain: str
    spec: tuple[str, ...]

    @property
    def tag(self) -> str | None:
        """The comment of the rule, if it has one."""
        for index, word in enumerate(self.spec[:-1]):
            if word == "--comment":
                return self.spec[index + 1]
        return None

    @property
    def run_id(self) -> str | None:
        parsed = parse_tag(self.tag)
        return parsed[0] if parsed else None

    def text(self) -> str:
        """The rule as `iptables -S` prints it."""
        return shlex.join(["-A", self.chain, *self.spec])


@dataclass(frozen=True)
class RuleSet:
    """The rules one fault added; `remove` takes them out again."""

    run_id: str
    key: str
    rules: tuple[Rule, ...]

    @property
    def tag(self) -> str:
        return make_tag(self.run_id, self.key)

    def texts(self) -> list[str]:
        return [rule.text() for rule in self.rules]


# -- tags and rule specs (pure) -------------------------------------------------------------------


def make_tag(run_id: str, key: str | int) -> str:
    """`hftchaos:<run_id>:<key>`; both parts are restricted so the tag parses back unambiguously."""
    key = str(key)
    for name, value in (("run id", run_id), ("fault key", key)):
        if not _TAG_PART.fullmatch(value):
            raise BackendError(
                f"{name} {value!r} cannot tag a kernel rule: use letters, digits, '_', '.', '-'"
            )
    tag = f"{TAG_PREFIX}:{run_id}:{key}"
    if len(tag) > _MAX_COMMENT_CHARS:
        raise BackendError(f"rule tag {tag[:40]}... is longer than {_MAX_COMMENT_CHARS} characters")
    return tag


def parse_tag(tag: str | None) -> tuple[str, str] | None:
    """(run_id, key) of a fault rule's tag; None for the jump rule and foreign comments."""
    if tag is None:
        return None
    parts = tag.split(":")
    if len(parts) != 3 or parts[0] != TAG_PREFIX:
        return None
    return parts[1], parts[2]


def loopback_host(host: str) -> str:
    """`host` as `a.b.c.d/32`; only IPv4 loopback, since every rule matches `-i lo`."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise BackendError(f"{host!r} is not an IP address; kernel rules need one") from None
    if not isinstance(address, ipaddress.IPv4Address) or not address.is_loopback:
        raise BackendError(
            f"{host} is not an IPv4 loopback address: kernel faults act only on 127.0.0.0/8"
        )
    return f"{address}/32"


def _drop_spec(
    tag: str, source: str | None, destination: str | None, probability: float | None
) -> tuple[str, ...]:
    spec: list[str] = []
    if source is not None:
        spec += ["-s", loopback_host(source)]
    if destination is not None:
        spec += ["-d", loopback_host(destination)]
    spec += ["-i", "lo"]
    if probability is not None:
        spec += ["-m", "statistic", "--mode", "random", "--probability", f"{probability:.11f}"]
    spec += ["-m", "comment", "--comment", tag, "-j", "DROP"]
    return tuple(spec)


def between_ruleset(
    run_id: str, key: str | int, group_a_hosts: Sequence[str], group_b_hosts: Sequence[str]
) -> RuleSet:
    """Rules dropping every packet from a host of one group to a host of the other."""
    tag = make_tag(run_id, key)
    a_hosts = list(dict.fromkeys(group_a_hosts))
    b_hosts = list(dict.fromkeys(group_b_hosts))
    if not a_hosts or not b_hosts:
        raise BackendError("a drop between two groups needs at least one host in each")
    shared = sorted(set(a_hosts) & set(b_hosts))
    if shared:
        raise BackendError(f"hosts {shared} are in both groups, so no rule can separate them")
    rules = []
    for a_host in a_hosts:
        for b_host in b_hosts:
            rules.append(Rule(CHAIN, _drop_spec(tag, a_host, b_host, None)))
            rules.append(Rule(CHAIN, _drop_spec(tag, b_host, a_host, None)))
    return RuleSet(run_id, str(key), tuple(rules))


def random_ruleset(run_id: str, key: str | int, host: str, probability: float) -> RuleSet:
    """Rules dropping each packet to, and each packet from, `host` with `probability`."""
    if not 0.0 < probability <= 1.0:
        raise BackendError(f"drop probability must be in (0, 1], got {probability}")
    tag = make_tag(run_id, key)
    rules = (
        Rule(CHAIN, _drop_spec(tag, None, host, probability)),
        Rule(CHAIN, _drop_spec(tag, host, None, probability)),
    )
    return RuleSet(run_id, str(key), rules)


def merge(rulesets: Sequence[RuleSet]) -> RuleSet:
    """One RuleSet of several with the same tag (a partition of more than two groups)."""
    if not rulesets or len({r.tag for r in rulesets}) != 1:
        raise BackendError("only rule sets with one and the same tag can be merged")
    rules = tuple(rule for ruleset in rulesets for rule in ruleset.rules)
    return RuleSet(rulesets[0].run_id, rulesets[0].key, rules)


# -- reading `iptables -S` (pure) -----------------------------------------------------------------


@dataclass(frozen=True)
class FilterTable:
    """What `iptables -S` said: the chains that exist and every appended rule."""

    chains: frozenset[str]
    rules: tuple[Rule, ...]

    def tagged(self, run_id: str | None = None) -> list[Rule]:
        """Fault rules (not the jump), of one run or of all runs."""
        found = []
        for rule in self.rules:
            parsed = parse_tag(rule.tag)
            if parsed is not None and (run_id is None or parsed[0] == run_id):
                found.append(rule)
        return found

    def tagged_with(self, tag: str) -> list[Rule]:
        return [rule for rule in self.rules if rule.tag == tag]

    def in_chain(self, chain: str) -> list[Rule]:
        return [rule for rule in self.rules if rule.chain == chain]

    def jumps(self) -> list[Rule]:
        return [rule for rule in self.in_chain(PARENT_CHAIN) if rule.spec[-2:] == ("-j", CHAIN)]


def parse_listing(text: str) -> FilterTable:
    """Parse `iptables -S` output: `-P` policies, `-N` chains and `-A` rules."""
    chains: set[str] = set()
    rules: list[Rule] = []
    for line in text.splitlines():
        words = shlex.split(line)
        if len(words) >= 2 and words[0] in ("-P", "-N"):
            chains.add(words[1])
        elif len(words) >= 3 and words[0] == "-A":
            rules.append(Rule(words[1], tuple(words[2:])))
    return FilterTable(frozenset(chains), tuple(rules))


@dataclass(frozen=True)
class CountedRule:
    """A rule with the kernel's counters: packets and bytes it has matched since it went in."""

    rule: Rule
    packets: int
    bytes: int


_COUNTERS = re.compile(r"^\[(\d+):(\d+)\]\s+(-A\s.*)$")


def parse_counted(text: str) -> list[CountedRule]:
    """Parse `iptables-save -c` output: `[packets:bytes] -A <chain> <spec>` lines."""
    counted = []
    for line in text.splitlines():
        match = _COUNTERS.match(line.strip())
        if match is None:
            continue
        words = shlex.split(match.group(3))
        if len(words) >= 3:
            rule = Rule(words[1], tuple(words[2:]))
            counted.append(CountedRule(rule, int(match.group(1)), int(match.group(2))))
    return counted


# -- running iptables -----------------------------------------------------------------------------


def run_command(
    command: Sequence[str], ok_codes: tuple[int, ...] = (0,), given: str | None = None
) -> subprocess.CompletedProcess[str]:
    shown = shlex.join(command)
    try:
        result = subprocess.run(
            list(command),
            input=given,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_S,
            check=False,
        )
    except FileNotFoundError:
        raise RuntimeEnvironmentError(f"`{shown}`: {command[0]} is not installed") from None
    except subprocess.TimeoutExpired:
        raise RuntimeEnvironmentError(
            f"`{shown}` did not finish within {COMMAND_TIMEOUT_S:.0f} s"
        ) from None
    if result.returncode not in ok_codes:
        stderr = " ".join(result.stderr.split()) or "(no message)"
        raise RuntimeEnvironmentError(f"`{shown}` failed (exit {result.returncode}): {stderr}")
    return result


def _iptables(*args: str, ok_codes: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess[str]:
    return run_command(["iptables", "-w", str(int(COMMAND_TIMEOUT_S / 2)), *args], ok_codes)


def _run_restore_once(command: Sequence[str], script: str) -> None:
    run_command(command, given=script)


def _iptables_restore(script: str) -> None:
    restore_session.apply((), script, _run_restore_once)


def _read_table() -> FilterTable:
    return parse_listing(_iptables("-S").stdout)


@contextmanager
def _locked() -> Iterator[None]:
    """One harness process at a time changes the chain (create/remove races otherwise)."""
    lock_file = LOCK_FILE if LOCK_FILE.parent.is_dir() else Path("/tmp") / LOCK_FILE.name
    with lock_file.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# Whether this process made sure of the chain and its jump since it last removed them.
_chain_ready = False


def _ensure_chain() -> None:
    global _chain_ready
    table = _read_table()
    if CHAIN not in table.chains:
        _iptables("-N", CHAIN)
    if not table.jumps():
        _iptables("-I", PARENT_CHAIN, "1", "-m", "comment", "--comment", JUMP_TAG, "-j", CHAIN)
    _chain_ready = True


def _delete(rule: Rule) -> None:
    _iptables("-D", rule.chain, *rule.spec)


def _delete_all(rules: Sequence[Rule]) -> None:
    """Take the rules out in one block (found in a listing, so they are there to delete)."""
    if rules:
        _iptables_restore(restore_script([["-D", rule.chain, *rule.spec] for rule in rules]))


def _remove_chain_if_empty(table: FilterTable) -> None:
    global _chain_ready
    if CHAIN not in table.chains or table.in_chain(CHAIN):
        return
    _chain_ready = False
    for jump in table.jumps():
        _delete(jump)
    _iptables("-X", CHAIN)


# -- public API -----------------------------------------------------------------------------------


def require_netfilter() -> None:
    """Refuse (exit 3) unless this process can add iptables rules with the matches we use."""
    if os.geteuid() != 0:
        raise RuntimeEnvironmentError(
            "packet_loss and partition faults need root (iptables): run hftchaos as root"
        )
    if shutil.which("iptables") is None:
        raise RuntimeEnvironmentError(
            "packet_loss and partition faults need iptables: apt-get install iptables"
        )
    # -C only looks a rule up: exit 1 means "no such rule", i.e. both matches loaded fine.
    probe = _drop_spec(f"{TAG_PREFIX}:probe", "127.0.0.255", None, 0.5)
    _iptables("-C", PARENT_CHAIN, *probe, ok_codes=(0, 1))


def restore_script(rules: Sequence[Sequence[str]]) -> str:
    """`iptables-restore --noflush` input appending `rules` (each its words, `-A CHAIN ...`)
    to the filter table in one program and one commit: a fault of four rules took ~22 ms as
    four `iptables` programs. Words with a space are quoted; none may hold a quote or a line
    break (the rules are the harness's own, tags included)."""
    lines = ["*filter"]
    for words in rules:
        for word in words:
            if any(character in word for character in "\"'\n\r"):
                raise BackendError(f"a firewall rule word iptables-restore cannot take: {word!r}")
        lines.append(" ".join(f'"{word}"' if " " in word or not word else word for word in words))
    return "\n".join([*lines, "COMMIT", ""])


def prepare() -> None:
    """Make the chain and start the kept-open program before the first fault is due."""
    with _locked():
        _ensure_chain()
    restore_session.prepare()


def add(ruleset: RuleSet) -> RuleSet:
    """Append the rules in one block; if that fails, take out any already added and re-raise."""
    script = restore_script([["-A", rule.chain, *rule.spec] for rule in ruleset.rules])
    with _locked():
        try:
            if not _chain_ready:
                _ensure_chain()
            try:
                _iptables_restore(script)
            except RuntimeEnvironmentError:
                _ensure_chain()  # another process's sweep may have removed the empty chain
                _iptables_restore(script)
        except BaseException:
            _delete_all(_read_table().tagged_with(ruleset.tag))
            raise
    return ruleset


def drop_between(
    run_id: str, key: str | int, group_a_hosts: Sequence[str], group_b_hosts: Sequence[str]
) -> RuleSet:
    """Drop every packet from a host of group a to one of group b, and back."""
    return add(between_ruleset(run_id, key, group_a_hosts, group_b_hosts))


def drop_randomly(run_id: str, key: str | int, host: str, probability: float) -> RuleSet:
    """Drop each packet to or from `host` with `probability`."""
    return add(random_ruleset(run_id, key, host, probability))


def remove(ruleset: RuleSet) -> None:
    """Take out every rule carrying the rule set's tag; removing twice is harmless.

    Rules are found by tag in the listing rather than by our own spec, because the kernel
    stores a probability quantised (0.1 reads back as 0.10000000009). The chain stays for the
    run's next fault; the run's sweep removes it once it is empty.
    """
    with _locked():
        _delete_all(_read_table().tagged_with(ruleset.tag))


def sweep(run_id: str | None = None) -> int:
    """Remove every hftchaos rule of one run (or of all runs), in any chain, and the chain
    once no run has a rule in it; return how many rules."""
    with _locked():
        rules = _read_table().tagged(run_id)
        _delete_all(rules)
        _remove_chain_if_empty(_read_table())
    return len(rules)


def list_rules(run_id: str | None = None) -> list[Rule]:
    """The hftchaos fault rules present now, of one run or of all runs."""
    return _read_table().tagged(run_id)


def rule_counters(tag: str) -> list[CountedRule]:
    """The rules carrying `tag` now, each with what it has matched (dropped) so far."""
    listing = run_command(["iptables-save", "-c", "-t", "filter"]).stdout
    return [counted for counted in parse_counted(listing) if counted.rule.tag == tag]


_netem_lock = threading.Lock()
_netem_answer: bool | None = None


def netem_available() -> bool:
    """Whether the kernel has the netem qdisc; asked once, inside a throwaway namespace.

    The probe never touches the host's interfaces: it adds netem to `lo` of a network namespace
    made for the purpose and deletes the namespace. Without root the answer is False.
    """
    global _netem_answer
    with _netem_lock:
        if _netem_answer is None:
            _netem_answer = _probe_netem()
        return _netem_answer


def _probe_netem() -> bool:
    if os.geteuid() != 0 or shutil.which("ip") is None or shutil.which("tc") is None:
        return False
    namespace = f"hftchaos-probe-{os.getpid()}"
    run_command(["ip", "netns", "add", namespace])
    try:
        in_namespace = ["ip", "netns", "exec", namespace]
        add_netem = ["tc", "qdisc", "add", "dev", "lo", "root", "netem", "loss", "1%"]
        result = run_command([*in_namespace, *add_netem], ok_codes=(0, 1, 2))
        return result.returncode == 0
    finally:
        run_command(["ip", "netns", "delete", namespace])


def accept_forwarding(run_id: str, key: str, bridge: str) -> Rule:
    """Let packets between two ports of `bridge` (one the run made) through the host's FORWARD
    chain: with br_netfilter loaded, bridged packets pass it, and Docker sets its policy to
    DROP. Inserted first, before Docker's own chains; removed by tag like any fault rule."""
    tag = make_tag(run_id, key)
    spec = ("-i", bridge, "-o", bridge, "-m", "comment", "--comment", tag, "-j", "ACCEPT")
    rule = Rule("FORWARD", spec)
    with _locked():
        _iptables("-I", rule.chain, "1", *rule.spec)
    return rule


def remove_tag(run_id: str, key: str) -> None:
    """Take out every rule tagged `hftchaos:<run_id>:<key>`, in any chain."""
    remove(RuleSet(run_id, key, ()))
