"""Operating the operator: least-privilege RBAC, artifact deletion that never hangs, metrics and health."""
import json
import socket
import urllib.request

import yaml

from tests.integration.operator_fixtures import (
    OperatorProcess, apply, finish_job, load_example, objects, report, wait_md, wait_phase,
)
from tests.integration.test_operator import drive_to_ready
from tests.support.kube import REPO_ROOT, kubectl, kubectl_json, wait_for, write_serviceaccount_kubeconfig

RULES = yaml.safe_load((REPO_ROOT / "manifests" / "helm" / "modelops" / "files" / "operator-rules.yaml").read_text())


def service_account_kubeconfig(namespace: str, tmp_path) -> str:
    """A kubeconfig for ServiceAccount `modelops-operator` holding exactly the chart's rules."""
    role = f"modelops-operator-{namespace}"
    kubectl("create", "serviceaccount", "modelops-operator", "-n", namespace)
    kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": role},
        "rules": RULES}))
    kubectl("create", "clusterrolebinding", role, f"--clusterrole={role}",
            f"--serviceaccount={namespace}:modelops-operator")
    return str(write_serviceaccount_kubeconfig(namespace, "modelops-operator", tmp_path / "operator.kubeconfig"))


def requests_made_by(control_plane, user: str) -> set[tuple[str, str, str]]:
    """(apiGroup, resource[/subresource], verb) of every request `user` made, from the API server's audit log."""
    made = set()
    for line in (control_plane.logs_dir / "audit.log").read_text().splitlines():
        event = json.loads(line)
        if event["user"]["username"] != user or not event.get("objectRef"):
            continue
        ref = event["objectRef"]
        resource = ref["resource"] + (f"/{ref['subresource']}" if ref.get("subresource") else "")
        made.add((ref.get("apiGroup", ""), resource, event["verb"]))
        if event["verb"] == "patch" and "fieldManager=" in event["requestURI"] and event["responseStatus"]["code"] == 201:
            made.add((ref.get("apiGroup", ""), resource, "create"))   # a server-side apply that created it
    return made


def granted(rules) -> set[tuple[str, str, str]]:
    return {(group, resource, verb) for rule in rules for group in rule["apiGroups"]
            for resource in rule["resources"] for verb in rule["verbs"]}


def test_the_charts_permissions_are_exactly_what_the_operator_uses(crd, namespace, storage, tmp_path,
                                                                   control_plane):
    """Run as a ServiceAccount holding the chart's rules through every code path: no request is refused,
    and the API server's audit log shows each granted verb used (least privilege, checked both ways)."""
    kubectl("apply", "-n", namespace, "-f", "-",
            input=json.dumps({"apiVersion": "kopf.dev/v1", "kind": "KopfPeering", "metadata": {"name": "modelops"}}))
    env = {"KUBECONFIG": service_account_kubeconfig(namespace, tmp_path), "MODELOPS_PEERING": "modelops"}
    op = OperatorProcess(namespace, tmp_path, env).start()
    try:
        md = load_example("diabetes-multiworker")                     # autoscaling: HPA and PDB
        md["spec"]["storage"]["deleteOnModelDeletion"] = True         # the finalizer and the clean-up Job
        md["spec"]["serving"]["rollout"] = {"strategy": "Canary"}       # a canary Deployment, made and deleted
        # A quota that admits no pod: the operator reads the Job's events to say why it does not start.
        kubectl("create", "quota", "no-pods", "--hard=pods=0", "-n", namespace)
        apply(namespace, md)
        wait_md(namespace, "diabetes", lambda s: "FailedCreate" in [c["reason"] for c in s.get("conditions", [])],
                "the FailedCreate reason")
        kubectl("delete", "quota", "no-pods", "-n", namespace)
        wait_phase(namespace, "diabetes", "Training")
        drive_to_ready(namespace, "diabetes", metric="r2", accuracy=0.45, pods=2)
        for epochs in (41, 42):                                       # v3 supersedes v2 mid-training
            md["spec"]["training"]["hyperparameters"]["epochs"] = epochs
            apply(namespace, md)
            wait_md(namespace, "diabetes", lambda s, e=epochs: s.get("latestVersion") == f"v{e - 39}",
                    f"training of v{epochs - 39}")
        wait_for(lambda: "diabetes-train-v2-a1" not in [j["metadata"]["name"] for j in objects(namespace, "jobs")],
                 30, "the superseded Job to be deleted")
        # v3 is a canary beside v1 (serving.rollout), promoted by hand: the canary Deployment is deleted after.
        finish_job(namespace, "diabetes-train-v3-a1", pods=2, message=report("train", "v3", {"r2": 0.45}))
        wait_phase(namespace, "diabetes", "Compressing")
        finish_job(namespace, "diabetes-compress-v3", message=report("compress", "v3", {"r2": 0.449}))
        wait_phase(namespace, "diabetes", "Canary")
        kubectl("annotate", "md/diabetes", "-n", namespace, "modelops.io/rollout=promote")
        wait_for(lambda: [d["metadata"]["name"] for d in objects(namespace, "deployments")] == ["diabetes"], 60,
                 "the promoted canary's Deployment to be deleted")
        wait_phase(namespace, "diabetes", "Ready")
        del md["spec"]["serving"]["autoscaling"]                      # HPA and PDB go away
        apply(namespace, md)
        wait_for(lambda: not objects(namespace, "hpa") and not objects(namespace, "pdb"), 30, "HPA and PDB removal")
        kubectl("delete", "md/diabetes", "-n", namespace, "--wait=false")
        cleanup = wait_for(lambda: [j for j in objects(namespace, "jobs") if "-cleanup-" in j["metadata"]["name"]],
                           30, "the cleanup Job")[0]
        finish_job(namespace, cleanup["metadata"]["name"])
        wait_for(lambda: kubectl("get", "md/diabetes", "-n", namespace, check=False).returncode != 0, 60,
                 "the ModelDeployment to be gone")
    finally:
        op.stop()
    log = op.log.read_text()
    assert "Forbidden" not in log and " 403" not in log, op.logs()
    used = requests_made_by(control_plane, f"system:serviceaccount:{namespace}:modelops-operator")
    # Only a cluster-wide operator touches ClusterKopfPeerings; this one watches one namespace.
    cluster_wide_only = {("kopf.dev", "clusterkopfpeerings", verb) for verb in ("list", "watch", "patch")}
    # Checked by OwnerReferencesPermissionEnforcement (on in this control plane) for every child with
    # blockOwnerDeletion, never requested: without it the operator's first apply above is refused.
    admission_only = {("modelops.io", "modeldeployments/finalizers", "update")}
    # Reading a Ready replica's live figures here would send traffic to kwok's made-up pod address:
    # test_operator_monitoring.py checks the grant, the real node (tests/e2e/test_quality_loop.py) its use.
    real_replicas_only = {("", "pods/proxy", "get")}
    assert granted(RULES) - cluster_wide_only - admission_only - real_replicas_only - used == set(), \
        "granted but never used"
    assert used - granted(RULES) == set(), "used but not granted"


def test_a_refused_pass_says_why_and_is_retried_until_the_cause_is_fixed(crd, namespace, storage, tmp_path):
    kubeconfig = service_account_kubeconfig(namespace, tmp_path)
    role = f"modelops-operator-{namespace}"
    without_jobs = [r for r in RULES if r["apiGroups"] != ["batch"]]
    kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": role},
        "rules": without_jobs + [{"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["list", "watch"]}]}))
    op = OperatorProcess(namespace, tmp_path, {"KUBECONFIG": kubeconfig}).start()
    try:
        apply(namespace, load_example("linear-regression"))
        refusal = wait_for(lambda: [e for e in objects(namespace, "events") if e.get("reason") == "ReconcileFailed"],
                           60, "a ReconcileFailed event")[0]
        assert refusal["type"] == "Warning" and "403" in refusal["message"] and "jobs.batch" in refusal["message"]
        # Retried (one timer per resource, however many passes fail), but one Warning per cause.
        wait_for(lambda: op.log.read_text().count("requeued reconcile of") >= 2, 60, "two retries")
        assert len([e for e in objects(namespace, "events") if e.get("reason") == "ReconcileFailed"]) == 1
        # Fix the cause, not the resource: no event on the ModelDeployment will announce it.
        kubectl("apply", "-f", "-", input=json.dumps({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": role},
            "rules": RULES}))
        wait_phase(namespace, "linear", "Training", timeout=90)
    finally:
        op.stop()


def test_deleting_with_artifacts_runs_a_cleanup_job_then_releases(crd, namespace, storage, tmp_path):
    op = OperatorProcess(namespace, tmp_path).start()
    try:
        md = load_example("linear-regression")
        md["spec"]["storage"]["deleteOnModelDeletion"] = True
        apply(namespace, md)
        wait_for(lambda: "modelops.io/artifacts" in kubectl_json("get", "md/linear", "-n", namespace)["metadata"].get(
            "finalizers", []), 30, "the artifacts finalizer")
        kubectl("delete", "md/linear", "-n", namespace, "--wait=false")
        job = wait_for(lambda: [j for j in objects(namespace, "jobs") if "-cleanup-" in j["metadata"]["name"]],
                       30, "the cleanup Job")[0]
        command = job["spec"]["template"]["spec"]["containers"][0]["command"]
        uid = job["metadata"]["labels"]["modelops.io/owner-uid"]
        assert command[-1] == f"/mnt/pvc/models/{namespace}/linear/{uid}"
        finish_job(namespace, job["metadata"]["name"])
        wait_for(lambda: kubectl("get", "md/linear", "-n", namespace, check=False).returncode != 0,
                 60, "the ModelDeployment to be gone")
    finally:
        op.stop()


def test_deletion_never_hangs_when_storage_does_not_answer(crd, namespace, storage, tmp_path):
    op = OperatorProcess(namespace, tmp_path, {"MODELOPS_CLEANUP_TIMEOUT_S": "6"}).start()
    try:
        md = load_example("linear-regression")
        md["spec"]["storage"]["deleteOnModelDeletion"] = True
        apply(namespace, md)
        wait_for(lambda: kubectl_json("get", "md/linear", "-n", namespace)["metadata"].get("finalizers"),
                 30, "the artifacts finalizer")
        kubectl("delete", "md/linear", "-n", namespace, "--wait=false")
        # Nobody finishes the cleanup pod: storage "hangs". The finalizer must still be released.
        wait_for(lambda: kubectl("get", "md/linear", "-n", namespace, check=False).returncode != 0,
                 60, "the ModelDeployment to be gone despite the stuck cleanup")
        warnings = [e for e in objects(namespace, "events") if e.get("reason") == "ArtifactsNotDeleted"]
        assert warnings and "delete the files by hand" in warnings[0]["message"]
        # Released, the clean-up must not go on: it could delete what a re-created resource writes.
        wait_for(lambda: not [j for j in objects(namespace, "jobs") if "-cleanup-" in j["metadata"]["name"]],
                 30, "the stuck cleanup Job to be stopped")
    finally:
        op.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_operator_serves_health_and_prometheus_metrics(crd, namespace, storage, tmp_path):
    health, metrics = free_port(), free_port()
    op = OperatorProcess(namespace, tmp_path, health_port=health, metrics_port=metrics).start()
    try:
        apply(namespace, load_example("digits-classifier"))
        wait_phase(namespace, "digits", "Training")
        wait_for(lambda: urllib.request.urlopen(f"http://127.0.0.1:{health}/healthz", timeout=2).status == 200,
                 30, "the liveness endpoint", ignoring=(OSError,))
        # The phase gauge moves when status is written, the pass counter once the pass has posted its events.
        text = wait_for(lambda: (t := urllib.request.urlopen(f"http://127.0.0.1:{metrics}/metrics", timeout=2)
                                 .read().decode()) and 'modelops_models{phase="Training"} 1.0' in t
                        and 'modelops_reconciles_total{result="ok"}' in t and t,
                        30, "one model in phase Training and a finished pass")
        assert "modelops_reconcile_duration_seconds_bucket" in text
    finally:
        op.stop()


def test_two_replicas_with_peering_elect_one_active(crd, namespace, storage, tmp_path):
    kubectl("apply", "-n", namespace, "-f", "-",
            input=json.dumps({"apiVersion": "kopf.dev/v1", "kind": "KopfPeering", "metadata": {"name": "modelops"}}))
    replicas = []
    for i, priority in enumerate((100, 200)):
        (tmp_path / str(i)).mkdir()
        replicas.append(OperatorProcess(namespace, tmp_path / str(i),
                                        {"MODELOPS_PEERING": "modelops", "MODELOPS_PRIORITY": str(priority)}))
    try:
        # As in a rolling update: one replica runs, then a higher-priority one joins and takes over.
        replicas[0].start()
        wait_for(lambda: "Resuming operations" in replicas[0].log.read_text(), 60, "the first replica to work")
        replicas[1].start()
        wait_for(lambda: "Pausing operations in favour of" in replicas[0].log.read_text(), 60,
                 "the lower-priority replica to stand by")
        apply(namespace, load_example("digits-classifier"))

        def standby_paused() -> int:
            # kopf pauses a watch-stream lazily, at its next event, which the standby may still handle;
            # harmless, as every pass is idempotent. From the pause on, the standby must stay quiet.
            log = replicas[0].log.read_text()
            after = log.find("Pausing the watch-stream for modeldeployments", log.find("Pausing operations in favour"))
            return after + 1 if after >= 0 else 0
        standby_before = wait_for(standby_paused, 60, "the standby to pause its ModelDeployment watch")
        drive_to_ready(namespace, "digits")
        assert "Handler 'reconcile-modeldeployment' is invoked" not in replicas[0].log.read_text()[standby_before:]
        assert "reconcile-modeldeployment" in replicas[1].log.read_text()
        replicas[1].kill()                      # the active one dies: the standby takes over
        md = load_example("digits-classifier")
        md["spec"]["serving"]["replicas"] = 3
        apply(namespace, md)
        # kopf declares a silent peer dead after its 60 s lifetime; then the standby resumes.
        wait_for(lambda: kubectl_json("get", "deployment/digits", "-n", namespace)["spec"]["replicas"] == 3,
                 150, "the standby to take over and scale serving")
    finally:
        for op in replicas:
            op.stop()
