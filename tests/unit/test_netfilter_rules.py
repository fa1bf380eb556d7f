"""Rule specs, tags and the reading of `iptables -S`, without touching the kernel.

The chain logic (create on demand, remove when empty, sweep) runs against a fake `iptables`
that keeps a listing in memory and answers the way iptables 1.8.9 (nf_tables) does.
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

from harness.backends.local.network import inject_packet_loss, inject_partition
from harness.errors import BackendError, RuntimeEnvironmentError
from harness.faults import netfilter
from harness.faults.netfilter import (
    CHAIN,
    Rule,
    between_ruleset,
    make_tag,
    parse_listing,
    parse_tag,
    random_ruleset,
)

# Captured with `iptables -S` on the build machine (iptables v1.8.9 nf_tables): two hftchaos
# runs in the chain, a rule of a third run left directly in INPUT, and two foreign rules.
SAMPLE_LISTING = """\
-P INPUT ACCEPT
-P FORWARD ACCEPT
-P OUTPUT ACCEPT
-N HFTCHAOS
-A INPUT -m comment --comment "hftchaos:jump" -j HFTCHAOS
-A INPUT -s 127.0.0.99/32 -i lo -m comment --comment "someone else \\"quoted\\"" -j ACCEPT
-A INPUT -s 127.0.0.97/32 -m comment --comment "hftchaos:20240611t3:7" -j DROP
-A OUTPUT -d 127.0.0.98/32 -p tcp -m tcp --dport 5 -j REJECT --reject-with tcp-reset
-A HFTCHAOS -s 127.0.0.11/32 -d 127.0.0.12/32 -i lo -m comment --comment "hftchaos:20240611t1:3" -j DROP
-A HFTCHAOS -s 127.0.0.12/32 -d 127.0.0.11/32 -i lo -m comment --comment "hftchaos:20240611t1:3" -j DROP
-A HFTCHAOS -s 127.0.0.11/32 -d 127.0.0.13/32 -i lo -m comment --comment "hftchaos:20240611t1:3" -j DROP
-A HFTCHAOS -s 127.0.0.13/32 -d 127.0.0.11/32 -i lo -m comment --comment "hftchaos:20240611t1:3" -j DROP
-A HFTCHAOS -d 127.0.0.12/32 -i lo -m statistic --mode random --probability 0.25000000000 -m comment --comment "hftchaos:20240611t2:0" -j DROP
-A HFTCHAOS -s 127.0.0.12/32 -i lo -m statistic --mode random --probability 0.25000000000 -m comment --comment "hftchaos:20240611t2:0" -j DROP
"""  # noqa: E501  (captured lines are kept whole)


# -- tags -----------------------------------------------------------------------------------------


def test_tag_names_run_and_fault_key() -> None:
    assert make_tag("abc123", 4) == "hftchaos:abc123:4"
    assert parse_tag("hftchaos:abc123:4") == ("abc123", "4")


@pytest.mark.parametrize("tag", [None, "hftchaos:jump", "other:run:1", "hftchaos:a:b:c", ""])
def test_jump_and_foreign_comments_are_not_fault_tags(tag: str | None) -> None:
    assert parse_tag(tag) is None


@pytest.mark.parametrize("run_id", ["has:colon", "has space", "", 'quote"'])
def test_a_run_id_that_would_not_parse_back_is_refused(run_id: str) -> None:
    with pytest.raises(BackendError, match="cannot tag a kernel rule"):
        make_tag(run_id, 1)


# -- rule specs -----------------------------------------------------------------------------------


def test_drop_between_covers_both_directions_of_every_pair() -> None:
    ruleset = between_ruleset("r1", 3, ["127.0.0.11"], ["127.0.0.12", "127.0.0.13"])
    assert ruleset.tag == "hftchaos:r1:3"
    assert ruleset.texts() == [
        "-A HFTCHAOS -s 127.0.0.11/32 -d 127.0.0.12/32 -i lo -m comment --comment hftchaos:r1:3"
        " -j DROP",
        "-A HFTCHAOS -s 127.0.0.12/32 -d 127.0.0.11/32 -i lo -m comment --comment hftchaos:r1:3"
        " -j DROP",
        "-A HFTCHAOS -s 127.0.0.11/32 -d 127.0.0.13/32 -i lo -m comment --comment hftchaos:r1:3"
        " -j DROP",
        "-A HFTCHAOS -s 127.0.0.13/32 -d 127.0.0.11/32 -i lo -m comment --comment hftchaos:r1:3"
        " -j DROP",
    ]


def test_specs_read_like_the_kernel_listing() -> None:
    """Built in `iptables -S` order, so the captured listing contains exactly our specs."""
    listed = set(parse_listing(SAMPLE_LISTING).rules)
    partition = between_ruleset("20240611t1", 3, ["127.0.0.11"], ["127.0.0.12", "127.0.0.13"])
    assert set(partition.rules) <= listed
    assert set(random_ruleset("20240611t2", 0, "127.0.0.12", 0.25).rules) <= listed


def test_random_drop_matches_packets_to_and_from_the_host() -> None:
    ruleset = random_ruleset("r1", "k", "127.0.0.31", 0.5)
    to_host, from_host = (rule.spec for rule in ruleset.rules)
    assert to_host[:4] == ("-d", "127.0.0.31/32", "-i", "lo")
    assert from_host[:4] == ("-s", "127.0.0.31/32", "-i", "lo")
    for spec in (to_host, from_host):
        assert "--probability" in spec
        assert spec[spec.index("--probability") + 1] == "0.50000000000"
        assert spec[-4:] == ("--comment", "hftchaos:r1:k", "-j", "DROP")


@pytest.mark.parametrize("probability", [0.0, -0.1, 1.5])
def test_probability_outside_zero_one_is_refused(probability: float) -> None:
    with pytest.raises(BackendError, match="probability"):
        random_ruleset("r1", 1, "127.0.0.31", probability)


@pytest.mark.parametrize("host", ["10.0.0.1", "::1", "localhost", "127.0.0.300"])
def test_only_ipv4_loopback_hosts_get_rules(host: str) -> None:
    with pytest.raises(BackendError):
        random_ruleset("r1", 1, host, 0.5)


def test_groups_sharing_a_host_cannot_be_separated() -> None:
    with pytest.raises(BackendError, match="both groups"):
        between_ruleset("r1", 1, ["127.0.0.11", "127.0.0.12"], ["127.0.0.12"])


# -- reading the listing --------------------------------------------------------------------------


def test_listing_parses_chains_rules_and_quoted_comments() -> None:
    table = parse_listing(SAMPLE_LISTING)
    assert table.chains == {"INPUT", "FORWARD", "OUTPUT", CHAIN}
    assert len(table.rules) == 10
    assert table.rules[1].tag == 'someone else "quoted"'
    assert table.jumps() == [
        Rule("INPUT", ("-m", "comment", "--comment", "hftchaos:jump", "-j", CHAIN))
    ]


def test_tagged_rules_of_one_run_or_of_all() -> None:
    table = parse_listing(SAMPLE_LISTING)
    assert len(table.tagged("20240611t1")) == 4
    assert len(table.tagged("20240611t2")) == 2
    assert [r.chain for r in table.tagged("20240611t3")] == ["INPUT"]
    assert len(table.tagged()) == 7  # never the jump, never foreign rules
    assert table.tagged("nosuchrun") == []


# -- chain logic against a fake iptables ----------------------------------------------------------


class FakeIptables:
    """Just enough of iptables: -S, -N, -X, -I, -A, -D, -C on the filter table."""

    def __init__(self, listing: str = "-P INPUT ACCEPT\n-P FORWARD ACCEPT\n-P OUTPUT ACCEPT\n"):
        table = parse_listing(listing)
        self.chains = [line.split()[1] for line in listing.splitlines() if line.startswith("-N")]
        self.rules = list(table.rules)
        self.commands: list[list[str]] = []

    def __call__(
        self, command: Sequence[str], ok_codes: tuple[int, ...] = (0,), given: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        words = list(command)
        if words[:4] == ["iptables-restore", "--noflush", "-w", "5"]:
            assert given is not None
            lines = given.splitlines()
            assert lines[0] == "*filter" and lines[-1] == "COMMIT", lines
            before = (list(self.chains), list(self.rules))
            for line in lines[1:-1]:  # the rules go in together, as the kernel commits them
                verb, *args = shlex.split(line)
                assert verb in ("-A", "-D"), line
                self.commands.append([verb, *args])
                known = args[0] in self.chains or args[0] in ("INPUT", "FORWARD", "OUTPUT")
                if not known or self._apply(verb, args)[0] != 0:
                    self.chains, self.rules = before  # one commit: all or nothing
                    raise RuntimeEnvironmentError(f"iptables-restore: {line} failed")
            return subprocess.CompletedProcess(words, 0, "", "")
        assert words[:3] == ["iptables", "-w", "5"], words
        self.commands.append(words[3:])
        code, out = self._apply(words[3], words[4:])
        if code not in ok_codes:
            raise AssertionError(f"fake iptables: {shlex.join(words)} exited {code}")
        return subprocess.CompletedProcess(words, code, out, "")

    def _apply(self, verb: str, args: list[str]) -> tuple[int, str]:
        if verb == "-S":
            lines = ["-P INPUT ACCEPT", "-P FORWARD ACCEPT", "-P OUTPUT ACCEPT"]
            lines += [f"-N {chain}" for chain in self.chains]
            lines += [rule.text() for rule in self.rules]
            return 0, "\n".join(lines) + "\n"
        if verb == "-N":
            if args[0] in self.chains:
                return 1, ""
            self.chains.append(args[0])
            return 0, ""
        if verb == "-X":
            busy = any(r.chain == args[0] for r in self.rules) or any(
                r.spec[-1] == args[0] for r in self.rules
            )
            if args[0] not in self.chains or busy:
                return 1, ""
            self.chains.remove(args[0])
            return 0, ""
        rule = Rule(args[0], tuple(args[2:] if verb == "-I" else args[1:]))
        if verb in ("-A", "-I"):
            assert rule.chain in self.chains or rule.chain in ("INPUT", "OUTPUT")
            self.rules.insert(0 if verb == "-I" else len(self.rules), rule)
            return 0, ""
        if verb in ("-D", "-C"):
            if rule not in self.rules:
                return 1, ""
            if verb == "-D":
                self.rules.remove(rule)
            return 0, ""
        raise AssertionError(f"fake iptables does not know {verb}")


@pytest.fixture
def fake_iptables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FakeIptables:
    fake = FakeIptables()
    use_fake(monkeypatch, fake)
    monkeypatch.setattr(netfilter, "LOCK_FILE", tmp_path / "netfilter.lock")
    return fake


def use_fake(monkeypatch: pytest.MonkeyPatch, fake: FakeIptables) -> None:
    """Every iptables program and restore block goes to `fake`, as to a fresh process."""
    monkeypatch.setattr(netfilter, "run_command", fake)
    monkeypatch.setattr(
        netfilter,
        "_iptables_restore",
        lambda script: fake(["iptables-restore", "--noflush", "-w", "5"], given=script),
    )
    monkeypatch.setattr(netfilter, "_chain_ready", False)


def test_first_rule_creates_chain_and_jump_the_sweep_drops_them(
    fake_iptables: FakeIptables,
) -> None:
    ruleset = netfilter.drop_randomly("r1", 1, "127.0.0.31", 0.5)
    assert fake_iptables.chains == [CHAIN]
    assert fake_iptables.rules[0].tag == "hftchaos:jump"
    assert [r.tag for r in netfilter.list_rules("r1")] == ["hftchaos:r1:1"] * 2
    netfilter.remove(ruleset)
    netfilter.remove(ruleset)  # idempotent
    assert netfilter.list_rules() == []
    assert fake_iptables.chains == [CHAIN]  # kept, empty, for the run's next fault
    listings = sum(1 for command in fake_iptables.commands if command == ["-S"])
    netfilter.drop_randomly("r1", 2, "127.0.0.31", 0.5)
    assert sum(1 for command in fake_iptables.commands if command == ["-S"]) == listings
    netfilter.sweep("r1")
    assert fake_iptables.chains == []
    assert fake_iptables.rules == []


def test_a_block_refused_for_want_of_the_chain_makes_it_again_and_is_applied(
    fake_iptables: FakeIptables, monkeypatch: pytest.MonkeyPatch
) -> None:
    netfilter.drop_randomly("r1", 1, "127.0.0.31", 0.5)
    netfilter.sweep("r1")  # as another process's sweep would, while this one believes it there
    monkeypatch.setattr(netfilter, "_chain_ready", True)
    netfilter.drop_randomly("r1", 2, "127.0.0.31", 0.5)
    assert [r.tag for r in netfilter.list_rules("r1")] == ["hftchaos:r1:2"] * 2
    assert fake_iptables.chains == [CHAIN]


def test_removing_one_fault_keeps_the_chain_for_the_others(fake_iptables: FakeIptables) -> None:
    first = netfilter.drop_between("r1", 1, ["127.0.0.31"], ["127.0.0.32"])
    netfilter.drop_randomly("r1", 2, "127.0.0.33", 0.1)
    netfilter.remove(first)
    assert [r.tag for r in netfilter.list_rules()] == ["hftchaos:r1:2"] * 2
    assert fake_iptables.chains == [CHAIN]
    assert len([c for c in fake_iptables.commands if c[0] == "-I"]) == 1  # one jump only


def test_sweep_takes_one_run_and_leaves_foreign_rules(
    fake_iptables: FakeIptables, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeIptables(SAMPLE_LISTING)
    use_fake(monkeypatch, fake)
    assert netfilter.sweep("20240611t1") == 4
    assert CHAIN in fake.chains  # run t2 still has rules in it
    assert netfilter.sweep() == 3
    assert fake.chains == []
    assert [r.tag for r in fake.rules] == ['someone else "quoted"', None]


def test_sweep_removes_an_empty_chain_left_by_a_crash(
    fake_iptables: FakeIptables, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeIptables("-N HFTCHAOS\n")
    use_fake(monkeypatch, fake)
    assert netfilter.sweep() == 0
    assert fake.chains == []


# -- network faults refuse what they cannot do ----------------------------------------------------


def test_partition_on_the_shared_address_is_refused(fake_iptables: FakeIptables) -> None:
    with pytest.raises(BackendError, match=r"127\.0\.0\.1, which every other service"):
        inject_partition("r1", 1, [[("n1", "127.0.0.11")], [("gateway", "127.0.0.1")]])
    assert fake_iptables.commands == []


def test_partition_groups_sharing_a_host_are_refused(fake_iptables: FakeIptables) -> None:
    groups = [[("a", "127.0.0.31")], [("b", "127.0.0.31"), ("c", "127.0.0.32")]]
    with pytest.raises(BackendError, match=r"share host 127\.0\.0\.31"):
        inject_partition("r1", 1, groups)
    assert fake_iptables.commands == []


def test_partition_needs_two_groups(fake_iptables: FakeIptables) -> None:
    with pytest.raises(BackendError, match="two non-empty groups"):
        inject_partition("r1", 1, [[("n1", "127.0.0.11")], []])


def test_packet_loss_on_the_shared_address_is_refused(fake_iptables: FakeIptables) -> None:
    with pytest.raises(BackendError, match="own loopback address"):
        inject_packet_loss("r1", 1, "gateway", "127.0.0.1", 10)


def test_partition_of_three_groups_records_every_rule_and_heals(
    fake_iptables: FakeIptables,
) -> None:
    groups = [[("n1", "127.0.0.11")], [("n2", "127.0.0.12")], [("n3", "127.0.0.13")]]
    fault = inject_partition("r1", 9, groups)
    assert fault.targets == ["n1", "n2", "n3"]
    assert fault.detail["groups"] == [["n1"], ["n2"], ["n3"]]
    rules = fault.detail["rules"]
    assert isinstance(rules, list) and len(rules) == 6  # 3 pairs x 2 directions
    assert len(netfilter.list_rules("r1")) == 6
    fault.heal()
    fault.heal()
    assert netfilter.list_rules() == []
    netfilter.sweep("r1")
    assert fake_iptables.chains == []


def test_packet_loss_detail_and_heal(fake_iptables: FakeIptables) -> None:
    fault = inject_packet_loss("r1", 2, "n1", "127.0.0.11", 30)
    assert fault.targets == ["n1"]
    assert fault.detail["percent"] == 30
    assert fault.detail["tag"] == "hftchaos:r1:2"
    assert len(netfilter.list_rules("r1")) == 2
    fault.heal()
    assert netfilter.list_rules() == []
