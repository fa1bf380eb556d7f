from __future__ import annotations

import pytest


def test_a_restore_script_appends_every_rule_in_one_commit_and_refuses_what_it_cannot_carry() -> (
    None
):
    from harness.errors import BackendError
    from harness.faults.netfilter import restore_script

    script = restore_script(
        [["-A", "HFTCHAOS", "-s", "127.0.0.2", "-j", "DROP"], ["-A", "C", "--comment", "a b"]]
    )
    assert script.splitlines() == [
        "*filter",
        "-A HFTCHAOS -s 127.0.0.2 -j DROP",
        '-A C --comment "a b"',
        "COMMIT",
    ]
    for word in ('a"b', "a\nb"):
        with pytest.raises(BackendError, match="cannot take"):
            restore_script([["-A", "C", word]])
