"""Prediction ids that name the answering replica, signed so a client cannot steer forwarding."""
import asyncio
import socket
import time

import pytest

from modelops_serving.peers import PredictionIds, forward


def test_an_id_names_its_replica_and_a_peer_with_the_same_key_reads_it():
    ids = PredictionIds("10.1.2.3", key="uid-123")
    pid = ids.next()
    assert "@10.1.2.3~" in pid and pid != ids.next()
    assert PredictionIds("10.9.9.9", key="uid-123").owner(pid) == "10.1.2.3"


def test_ipv6_addresses_work_too():
    pid = PredictionIds("fd00::7", key="k").next()
    assert PredictionIds("fd00::8", key="k").owner(pid) == "fd00::7"


@pytest.mark.parametrize("tamper", [
    lambda pid: pid.replace("10.1.2.3", "10.6.6.6"),      # steer it elsewhere
    lambda pid: pid[:-1] + ("0" if pid[-1] != "0" else "1"),
    lambda pid: pid.split("@")[0] + "@8.8.8.8~0000000000000000",
    lambda pid: pid.split("~")[0],
])
def test_a_tampered_or_unsigned_id_names_no_replica(tamper):
    ids = PredictionIds("10.1.2.3", key="uid-123")
    assert ids.owner(tamper(ids.next())) is None


def test_another_key_reads_no_address_and_ids_without_an_address_stay_as_before():
    pid = PredictionIds("10.1.2.3", key="uid-123").next()
    assert PredictionIds("10.1.2.3", key="uid-other").owner(pid) is None
    plain = PredictionIds().next()
    assert "@" not in plain and PredictionIds().owner(plain) is None


def test_a_pod_ip_that_is_not_an_address_is_refused_naming_the_setting():
    with pytest.raises(ValueError, match="pod_ip"):
        PredictionIds("my-pod.local")


def test_forwarding_to_a_closed_port_answers_none_quickly():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]       # bound, never listening: connection refused
        started = time.monotonic()
        assert asyncio.run(forward("127.0.0.1", port, "/x", b"{}", timeout_s=2.0)) is None
    assert time.monotonic() - started < 1.0


def test_forwarding_to_a_silent_peer_gives_up_at_the_timeout():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()                      # accepts the handshake, never answers
        started = time.monotonic()
        assert asyncio.run(forward("127.0.0.1", s.getsockname()[1], "/x", b"{}", timeout_s=0.3)) is None
        assert 0.25 < time.monotonic() - started < 2.0
