from __future__ import annotations

import base64

from targets.reference.kafka.broker import Voter, default_cluster_id


def test_cluster_ids_never_start_with_a_dash_and_are_kafka_uuids() -> None:
    # Ports pick the id; across many quorums some digests start with "-" (1 in 64).
    ids = {default_cluster_id((Voter(1, "127.0.0.1", port),)) for port in range(20000, 21000)}
    assert len(ids) == 1000
    assert not [cluster_id for cluster_id in ids if cluster_id.startswith("-")]
    for cluster_id in ids:
        assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16


def test_the_same_quorum_always_gets_the_same_id() -> None:
    voters = (Voter(1, "127.0.0.1", 9093), Voter(2, "127.0.0.1", 9094))
    assert default_cluster_id(voters) == default_cluster_id(voters)
