"""serving.rollout.strategy Canary against the real control plane (kwok pods): the canary Deployment beside the
stable one behind one Service, promoted or aborted by the annotation, and an operator restart mid-canary."""
import pytest

from tests.integration.operator_fixtures import (
    apply, events, finish_job, load_example, objects, report, wait_md, wait_phase,
)
from tests.integration.test_operator import drive_to_ready, owned_by
from tests.support.kube import kubectl, kubectl_json, wait_for

VERSION = "modelops.io/model-version"
ANNOTATION = "modelops.io/rollout"


def deployments(ns):
    return {d["metadata"]["name"]: d["spec"]["template"]["metadata"]["labels"][VERSION] for d in objects(ns, "deployments")}


def endpoints(ns):
    """Names of the pods the Service sends traffic to (ready endpoints of its EndpointSlices)."""
    slices = kubectl_json("get", "endpointslices", "-n", ns, "-l", "kubernetes.io/service-name=digits")["items"]
    return {e["targetRef"]["name"] for s in slices for e in s.get("endpoints") or []
            if (e.get("conditions") or {}).get("ready")}


def pods_of(ns, version):
    """The serving pods of a version (its stage Jobs' pods carry the version label too)."""
    selector = f"app.kubernetes.io/component=serving,{VERSION}={version}"
    return {p["metadata"]["name"] for p in kubectl_json("get", "pods", "-n", ns, "-l", selector)["items"]
            if not p["metadata"].get("deletionTimestamp")}


def reasons(ns):
    return [e["reason"] for e in events(ns, "digits")]


@pytest.fixture
def canary_v2(operator, namespace):
    """v1 serving (2 replicas), then v2 trained and compressed, judged as a canary of 1 replica."""
    md = load_example("digits-classifier")
    md["spec"]["serving"]["rollout"] = {"strategy": "Canary", "canary": {"replicas": 1, "minPairs": 50}}
    apply(namespace, md)
    wait_phase(namespace, "digits", "Training")
    drive_to_ready(namespace, "digits")
    assert deployments(namespace) == {"digits": "v1"}, "the first version has nothing to be compared with"
    md["spec"]["training"]["hyperparameters"]["epochs"] = 20
    apply(namespace, md)
    wait_md(namespace, "digits", lambda s: s.get("latestVersion") == "v2", "v2 to start")
    finish_job(namespace, "digits-train-v2-a1", message=report("train", "v2", {"accuracy": 0.97}))
    wait_md(namespace, "digits", lambda s: s.get("pipeline", {}).get("stage") == "compress", "v2 to compress")
    finish_job(namespace, "digits-compress-v2", message=report("compress", "v2", {"accuracy": 0.969}))
    status = wait_phase(namespace, "digits", "Canary")
    wait_for(lambda: pods_of(namespace, "v2") and pods_of(namespace, "v2") <= endpoints(namespace), 60,
             "the canary pod behind the Service")
    return md, status


def test_the_canary_runs_beside_the_stable_version_behind_one_service(canary_v2, namespace):
    _, status = canary_v2
    assert deployments(namespace) == {"digits": "v1", "digits-canary": "v2"}
    canary = kubectl_json("get", "deployment/digits-canary", "-n", namespace)
    assert owned_by(canary, "digits") and canary["spec"]["replicas"] == 1
    assert status["modelVersion"] == "v1" and status["canary"]["version"] == "v2"
    assert status["canary"]["stableVersion"] == "v1" and status["canary"]["decision"] == "Wait"
    # One Service, both versions' pods: the canary's share is its share of the ready endpoints (1 of 3).
    wait_for(lambda: endpoints(namespace) == pods_of(namespace, "v1") | pods_of(namespace, "v2"), 60,
             "both versions' pods behind the Service")
    assert len(pods_of(namespace, "v1")) == 2 and len(pods_of(namespace, "v2")) == 1
    # The stable Deployment neither counts nor touches the canary's pods.
    stable = kubectl_json("get", "deployment/digits", "-n", namespace)
    assert stable["status"]["replicas"] == 2 and stable["metadata"]["generation"] == stable["status"]["observedGeneration"]
    status = wait_md(namespace, "digits", lambda s: s.get("canary", {}).get("ready") == "1/1", "the canary ready")
    assert next(c for c in status["conditions"] if c["type"] == "Ready")["status"] == "True"
    assert next(c for c in status["conditions"] if c["type"] == "Canary")["status"] == "Unknown"


def test_promote_by_annotation_rolls_the_stable_deployment_then_retires_the_canary(canary_v2, namespace):
    kubectl("annotate", "md/digits", "-n", namespace, f"{ANNOTATION}=promote")
    status = wait_md(namespace, "digits", lambda s: s.get("modelVersion") == "v2" and s.get("phase") == "Ready",
                     "v2 to serve from the stable Deployment")
    wait_for(lambda: deployments(namespace) == {"digits": "v2"}, 60, "the canary Deployment to be deleted")
    assert [(h["version"], h["outcome"]) for h in status["history"]] == [("v2", "Deployed"), ("v1", "Superseded")]
    assert next(c for c in status["conditions"] if c["type"] == "Canary")["reason"] == "ManualPromote"
    assert "canary" not in status and "CanaryPromoted" in reasons(namespace)
    assert ANNOTATION not in (kubectl_json("get", "md/digits", "-n", namespace)["metadata"].get("annotations") or {})


def test_abort_by_annotation_removes_the_canary_and_rejects_the_version(canary_v2, namespace):
    kubectl("annotate", "md/digits", "-n", namespace, f"{ANNOTATION}=abort")
    status = wait_phase(namespace, "digits", "Failed")
    wait_for(lambda: deployments(namespace) == {"digits": "v1"}, 60, "the canary Deployment to be deleted")
    wait_for(lambda: not pods_of(namespace, "v2"), 60, "the canary's pods to go")
    assert status["modelVersion"] == "v1" and status["message"].endswith("still serving v1")
    assert status["history"][0]["version"] == "v2" and status["history"][0]["outcome"] == "Rejected"
    assert status["history"][0]["message"].startswith("ManualAbort: ")
    assert next(c for c in status["conditions"] if c["type"] == "Ready")["status"] == "True"
    assert "CanaryAborted" in reasons(namespace)
    assert ANNOTATION not in (kubectl_json("get", "md/digits", "-n", namespace)["metadata"].get("annotations") or {})
    assert endpoints(namespace) == pods_of(namespace, "v1")


def test_an_operator_restarted_mid_canary_resumes_it_without_duplicates(canary_v2, operator, namespace):
    _, before = canary_v2
    started = before["pipeline"]["canaryStartedAt"]
    operator.kill()
    # A request made while no operator runs is acted on by the next one.
    kubectl("annotate", "md/digits", "-n", namespace, f"{ANNOTATION}=abort")
    operator.start()
    status = wait_phase(namespace, "digits", "Failed")
    assert status["pipeline"]["canaryStartedAt"] == started
    wait_for(lambda: deployments(namespace) == {"digits": "v1"}, 60, "the canary Deployment to be deleted")
    assert reasons(namespace).count("CanaryAborted") == 1
    replica_sets = [r["metadata"]["name"] for r in objects(namespace, "replicasets")
                    if r["metadata"]["name"].startswith("digits-canary")]
    assert len(replica_sets) <= 1   # one canary ReplicaSet at most, being garbage-collected


def test_an_operator_restarted_mid_canary_keeps_judging_the_same_canary(canary_v2, operator, namespace):
    _, before = canary_v2
    uid = kubectl_json("get", "deployment/digits-canary", "-n", namespace)["metadata"]["uid"]
    operator.kill()
    operator.start()
    kubectl("annotate", "md/digits", "-n", namespace, f"{ANNOTATION}=promote")
    status = wait_md(namespace, "digits", lambda s: s.get("modelVersion") == "v2" and s.get("phase") == "Ready",
                     "v2 to serve")
    assert status["pipeline"]["canaryStartedAt"] == before["pipeline"]["canaryStartedAt"]
    assert reasons(namespace).count("CanaryPromoted") == 1 and reasons(namespace).count("VersionStarted") == 2
    # Every ReplicaSet the canary ever scaled belongs to the Deployment made before the restart: none was re-made.
    scaled = [e for e in objects(namespace, "events") if e["involvedObject"].get("kind") == "Deployment"
              and e["involvedObject"]["name"] == "digits-canary" and e["reason"] == "ScalingReplicaSet"]
    assert scaled and all(e["involvedObject"]["uid"] == uid for e in scaled)
