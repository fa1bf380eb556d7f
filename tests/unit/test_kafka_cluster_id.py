from __future__ import annotations

import base64
import os
import subprocess
import sys

from targets.reference.kafka.broker import Voter, default_cluster_id, parse_voters

# What each broker of a quorum runs at start, in a process of its own.
CLUSTER_ID_PROGRAM = """
from targets.reference.kafka.broker import parse_voters, default_cluster_id
import sys
print(default_cluster_id(parse_voters(sys.argv[1])))
"""


def test_cluster_ids_never_start_with_a_dash_and_are_kafka_uuids() -> None:
    # Ports pick the id; across many quorums some digests start with "-" (1 in 64).
    ids = {default_cluster_id((Voter(1, "127.0.0.1", port),)) for port in range(20000, 21000)}
    assert len(ids) == 1000
    assert not [cluster_id for cluster_id in ids if cluster_id.startswith("-")]
    for cluster_id in ids:
        assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16


def cluster_id_in_a_new_process(voters: str, hash_seed: str) -> str:
    completed = subprocess.run(
        [sys.executable, "-c", CLUSTER_ID_PROGRAM, voters],
        env={**os.environ, "PYTHONHASHSEED": hash_seed},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return completed.stdout.strip()


def test_every_broker_of_a_quorum_derives_the_same_id_on_its_own() -> None:
    """Each broker formats its storage in its own process: the id must not depend on anything
    but the quorum (not on str hashing, which differs per process, nor on time or chance).
    Port 20011 is a quorum whose first digest starts with "-", so the retry is covered too."""
    for voters in ("1@127.0.0.1:9093,2@127.0.0.1:9094", "1@127.0.0.1:20011"):
        here = default_cluster_id(parse_voters(voters))
        elsewhere = {cluster_id_in_a_new_process(voters, seed) for seed in ("1", "2", "3")}
        assert elsewhere == {here}, voters
    # And a different quorum gets a different id (one cluster's brokers never join another).
    assert default_cluster_id((Voter(1, "127.0.0.1", 9093),)) != default_cluster_id(
        (Voter(1, "127.0.0.1", 9094),)
    )
