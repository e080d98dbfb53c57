"""Feedback by id across replicas: two real servers on 127.0.0.2 and 127.0.0.3, one port, one storage.

Whichever replica the feedback reaches, the one that made the prediction joins it; when that one is
gone, the truth is kept unjoined and the client gets a 202 saying so, never a 5xx.
"""
import signal

import pytest

from modelops_contracts import feedback as contract
from serving_fixtures import digits, digits_dir, free_port, running_server  # noqa: F401

pytestmark = pytest.mark.component
A, B = "127.0.0.2", "127.0.0.3"


def replica(model_dir, log_dir, host, port, feedback, **extra):
    return running_server(model_dir, "digits", log_dir, host=host, port=port, pod_ip=host, id_key="md-uid-1",
                          replica=f"pod-{host}", feedback_dir=feedback, feedback_flush_s=3600, **extra)


def test_feedback_reaches_the_replica_that_answered_whichever_replica_gets_it(digits_dir, tmp_path):
    x, y = digits()
    port, feedback = free_port(), tmp_path / "feedback"
    with replica(digits_dir, tmp_path, A, port, feedback) as a, replica(digits_dir, tmp_path, B, port, feedback) as b:
        a.wait_ready()
        b.wait_ready()
        servers = [a, b]
        made = []
        for i in range(20):          # predictions alternate between replicas, feedback goes to the other one
            answer = servers[i % 2].post("/v1/models/digits:predict", json={"instances": [x[i].tolist()]})
            made.append(answer.json()["id"])
            assert f"@{servers[i % 2].url.split('//')[1].split(':')[0]}~" in made[-1]
        outcomes = [servers[(i + 1) % 2].post("/v1/models/digits:feedback", json={"id": pid, "truth": [int(y[i])]})
                    for i, pid in enumerate(made)]
        assert [o.status_code for o in outcomes] == [200] * 20, [o.text for o in outcomes if o.status_code != 200]
        assert a.get("/v1/live").json()["pairs"] == 10 and b.get("/v1/live").json()["pairs"] == 10

        again = b.post("/v1/models/digits:feedback", json={"id": made[0], "truth": [int(y[0])]})
        assert again.status_code == 404 and "already has feedback" in again.json()["error"]   # relayed from a

        forged = made[2].replace(A, "127.0.0.9")
        refused = b.post("/v1/models/digits:feedback", json={"id": forged, "truth": [1]})
        assert refused.status_code == 404        # a forged address is not forwarded anywhere

        fresh = a.post("/v1/models/digits:predict", json={"instances": [x[21].tolist()]}).json()["id"]
        bad_truth = b.post("/v1/models/digits:feedback", json={"id": fresh, "truth": ["cow"]})
        assert bad_truth.status_code == 400 and "truth[0]" in bad_truth.json()["error"]      # a's answer, relayed
        assert b.post("/v1/models/digits:feedback", json={"id": fresh, "truth": [int(y[21])]}).status_code == 200
        made.append(fresh)

        orphan = a.post("/v1/models/digits:predict", json={"instances": [x[30].tolist()]}).json()["id"]
        a.process.send_signal(signal.SIGTERM)
        assert a.process.wait(30) == 0
        late = b.post("/v1/models/digits:feedback", json={"id": orphan, "truth": [int(y[30])]})
        assert late.status_code == 202, late.text
        assert late.json()["joined"] == 0 and "kept unjoined" in late.json()["message"]
        assert b.get("/v1/live").json()["pairs"] == 10         # an unjoined truth counts in no metric
        assert a.process.poll() is not None
    records = [r for p in contract.list_segments(feedback) for r in contract.read_segment(p)]
    joined = {r.prediction_id for r in records if r.joined}
    assert joined == set(made)
    unjoined = [r for r in records if not r.joined]
    assert [(r.prediction_id, r.truth) for r in unjoined] == [(orphan, [int(y[30])])]
