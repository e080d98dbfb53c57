"""Whether the storage claim can be shared as the pipeline shares it: judged from the claims' access modes."""
from modelops_operator import claims
from modelops_operator.spec import parse
from operator_samples import example


def claim(*modes, bound=True):
    out = {"spec": {"accessModes": list(modes)}}
    if bound:
        out["status"] = {"phase": "Bound", "accessModes": list(modes)}
    return out


def test_read_write_many_is_shared():
    spec = parse(example("digits-classifier")["spec"])
    assert claims.judge(spec, "ml", {"models": claim("ReadWriteMany")}).ok


def test_read_write_once_names_who_shares_it():
    spec = parse(example("diabetes-multiworker")["spec"])
    verdict = claims.judge(spec, "ml", {"models": claim("ReadWriteOnce")})
    assert not verdict.ok and verdict.reason == "ClaimNotShared"
    assert "2 training workers" in verdict.message and "up to 6 serving replicas" in verdict.message
    # Even one worker and one replica share it with the next version's training.
    single = parse(example("linear-regression")["spec"])
    verdict = claims.judge(single, "ml", {"models": claim("ReadWriteOncePod")})
    assert verdict.reason == "ClaimNotShared" and "new version's training" in verdict.message


def test_read_write_once_pod_is_not_shared_even_on_one_node():
    """ReadWriteOncePod admits a single pod: a second one stays Pending on the same node too, not only on another."""
    spec = parse(example("linear-regression")["spec"])
    once = claims.judge(spec, "ml", {"models": claim("ReadWriteOnce")}).message
    once_pod = claims.judge(spec, "ml", {"models": claim("ReadWriteOncePod")}).message
    assert "pods on another node wait on Multi-Attach" in once
    assert "another node" not in once_pod and "even on the same node" in once_pod


def test_the_bound_volume_decides_not_the_request():
    spec = parse(example("digits-classifier")["spec"])
    asked_rwx_got_rwo = {"spec": {"accessModes": ["ReadWriteMany"]}, "status": {"accessModes": ["ReadWriteOnce"]}}
    assert claims.judge(spec, "ml", {"models": asked_rwx_got_rwo}).reason == "ClaimNotShared"
    assert claims.judge(spec, "ml", {"models": claim("ReadWriteMany", bound=False)}).ok


def test_missing_and_read_only_claims():
    spec = parse(example("digits-classifier")["spec"])
    assert claims.judge(spec, "ml", {"models": None}).reason == "ClaimNotFound"
    verdict = claims.judge(spec, "ml", {"models": claim("ReadOnlyMany")})
    assert verdict.reason == "ClaimReadOnly" and verdict.message.startswith("storage.uri: claim models")


def test_a_data_claim_read_by_several_workers():
    raw = example("diabetes-multiworker")["spec"]
    raw["data"] = {"uri": "pvc://data/diabetes.csv", "target": "y"}
    spec = parse(raw)
    assert claims.claim_names(spec) == ["models", "data"]
    verdict = claims.judge(spec, "ml", {"models": claim("ReadWriteMany"), "data": claim("ReadWriteOnce")})
    assert verdict.reason == "ClaimNotShared" and verdict.message.startswith("data.uri: claim data")
    assert claims.judge(spec, "ml", {"models": claim("ReadWriteMany"), "data": claim("ReadOnlyMany")}).ok
    assert claims.judge(spec, "ml", {"models": claim("ReadWriteMany"), "data": None}).reason == "ClaimNotFound"


def test_the_event_is_posted_once_per_verdict():
    spec = parse(example("digits-classifier")["spec"])
    status = {}
    bad = claims.judge(spec, "ml", {"models": claim("ReadWriteOnce")})
    assert [e[1] for e in claims.record(status, bad, 1, "t0")] == ["ClaimNotShared"]
    assert claims.record(status, bad, 1, "t1") == []
    assert status["conditions"][0]["lastTransitionTime"] == "t0"
    assert claims.record(status, claims.judge(spec, "ml", {"models": claim("ReadWriteMany")}), 1, "t2") == []
    assert status["conditions"][0]["status"] == "True"
