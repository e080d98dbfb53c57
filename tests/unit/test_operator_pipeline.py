"""Reconcile planning, scenario by scenario: observed children in, objects, status and events out."""
from modelops_contracts.report import StageReport, encode
from modelops_operator import builders as b
from modelops_operator import pipeline as p
from modelops_operator.conditions import get_condition
from modelops_operator.spec import parse
from operator_samples import body

IMAGES = b.Images()
NOW = "2026-11-29T12:00:00Z"


def step(md, observed=None):
    plan = p.plan(md, parse(md["spec"]), observed or p.Observed(), IMAGES, NOW)
    md["status"] = plan.status
    return plan


def finished(stage, **metrics):
    return p.JobState(active=False, succeeded=True,
                      report=StageReport(stage=stage, succeeded=True, version="v1", metrics=metrics,
                                         compression={"ratio": 3.8} if stage == "compress" else {}))


def rolled_out(version, ready=2):
    return p.DeploymentState(version=version, desired=2, replicas=ready, ready=ready, updated=ready, rolled_out=True,
                             available=ready)


def kinds(plan):
    return sorted(f"{o['kind']}/{o['metadata']['name']}" for o in plan.apply + plan.create_only)


def test_happy_path_train_compress_deploy_ready():
    md = body()
    plan = step(md)
    assert kinds(plan) == ["ConfigMap/digits-train-v1-a1-config", "Job/digits-train-v1-a1"]
    assert md["status"]["phase"] == "Training" and md["status"]["latestVersion"] == "v1"
    assert ("Normal", "VersionStarted") in [e[:2] for e in plan.events]

    plan = step(md, p.Observed(training_job=finished("train", accuracy=0.95)))
    assert "Job/digits-compress-v1" in kinds(plan) and md["status"]["phase"] == "Compressing"
    assert get_condition(md["status"]["conditions"], "Evaluated")["status"] == "True"

    plan = step(md, p.Observed(compression_job=finished("compress", accuracy=0.948)))
    assert {"Deployment/digits", "Service/digits", "PodDisruptionBudget/digits"} <= set(kinds(plan))
    assert md["status"]["phase"] == "Deploying"
    assert get_condition(md["status"]["conditions"], "Compressed")["status"] == "True"

    plan = step(md, p.Observed(deployment=rolled_out("v1")))
    status = md["status"]
    assert status["phase"] == "Ready" and status["modelVersion"] == "v1"
    assert status["metrics"]["accuracy"] == 0.95 and status["metrics"]["compressedAccuracy"] == 0.948
    assert status["metrics"]["compressionRatio"] == 3.8
    assert status["metricSummary"] == "accuracy=0.95" and status["ready"] == "2/2"
    assert status["endpoint"] == "http://digits.ml.svc.cluster.local/v1/models/digits:predict"
    assert status["history"][0]["outcome"] == "Deployed"
    assert all(c["status"] == "True" for c in status["conditions"])
    assert ("Normal", "Deployed") in [e[:2] for e in plan.events]

    again = step(md, p.Observed(deployment=rolled_out("v1")))
    assert again.events == [] and md["status"] == again.status


def test_a_missed_threshold_retrains_with_a_new_job_and_then_fails_when_retrains_run_out():
    md = body()
    md["spec"]["evaluation"]["maxRetrains"] = 1
    step(md)
    plan = step(md, p.Observed(training_job=finished("train", accuracy=0.5)))
    assert "Job/digits-train-v1-a2" in kinds(plan) and md["status"]["phase"] == "Retraining"
    assert md["status"]["attempts"] == 2
    plan = step(md, p.Observed(training_job=finished("train", accuracy=0.6)))
    assert md["status"]["phase"] == "Failed" and "no retrains left" in md["status"]["message"]
    assert md["status"]["history"][0]["outcome"] == "Failed"
    assert ("Warning", "RetrainsExhausted") in [e[:2] for e in plan.events]


def test_a_failed_job_fails_the_pipeline_with_the_pods_reason():
    md = body()
    step(md)
    pod = {"metadata": {"name": "digits-train-v1-a1-x", "creationTimestamp": NOW},
           "status": {"phase": "Failed", "containerStatuses": [{"state": {"terminated": {
               "exitCode": 3, "reason": "Error",
               "message": encode(StageReport(stage="train", succeeded=False, version="v1", reason="BadData",
                                             message="data.target: column 'y' not found"))}}}]}}
    job = {"status": {"conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]}}
    step(md, p.Observed(training_job=p.job_state(job, [pod])))
    assert md["status"]["phase"] == "Failed"
    assert "column 'y' not found" in md["status"]["message"]
    assert get_condition(md["status"]["conditions"], "Trained")["reason"] == "BadData"


def test_a_crashed_pod_without_report_gives_its_exit_code():
    pod = {"metadata": {"name": "x-1"}, "status": {"phase": "Failed", "containerStatuses": [{"state": {
        "terminated": {"exitCode": 137, "reason": "OOMKilled", "message": "Killed"}}}]}}
    state = p.job_state({"status": {"conditions": [{"type": "Failed", "status": "True"}]}}, [pod])
    assert state.failed and state.report is None and state.failure_reason == "OOMKilled"
    assert "exited with code 137 (OOMKilled): Killed" in state.failure_message


def test_a_workers_bad_data_is_the_reason_not_the_chief_the_job_then_stopped():
    """podFailurePolicy fails the Job on a worker's BadData and stops the chief: its 'Terminated' hid the cause."""
    def failed(index, code, reason, message, created):
        return {"metadata": {"name": f"d-train-v1-a1-{index}", "creationTimestamp": created,
                             "annotations": {"batch.kubernetes.io/job-completion-index": str(index)}},
                "status": {"phase": "Failed", "containerStatuses": [{"state": {"terminated": {
                    "exitCode": code, "reason": "Error", "message": encode(StageReport(
                        stage="train", succeeded=False, version="v1", reason=reason, message=message))}}}]}}
    chief = failed(0, 143, "Terminated", "SIGTERM", "2026-12-01T10:00:05Z")
    worker = failed(1, 3, "BadData", "data: worker 1's shard has no rows", "2026-12-01T10:00:00Z")
    job = {"status": {"conditions": [{"type": "Failed", "status": "True", "reason": "PodFailurePolicy"}]}}
    state = p.job_state(job, [chief, worker])
    assert state.failure_reason == "BadData" and "no rows" in state.report.message
    assert p.job_state(job, [chief]).failure_reason == "Terminated"   # alone, the chief's word stands


def test_a_model_directory_that_cannot_be_made_fails_the_stage_with_a_storage_error():
    """The stage container mounts its model directory only, made first by the prepare-storage init container:
    when that fails, the stage never ran and the init container's exit says why."""
    pod = {"metadata": {"name": "x-1"}, "status": {"phase": "Failed", "initContainerStatuses": [{"state": {
        "terminated": {"exitCode": 5, "reason": "Error",
                       "message": "storage: cannot create /mnt/pvc/models/ml/digits/u as uid 65532 gid 65532: "
                                  "Permission denied\n"}}}],
        "containerStatuses": [{"state": {"waiting": {"reason": "PodInitializing"}}}]}}
    state = p.job_state({"status": {"conditions": [{"type": "Failed", "status": "True",
                                                    "reason": "PodFailurePolicy"}]}}, [pod])
    assert state.failure_reason == "StorageError"
    assert "cannot create /mnt/pvc/models/ml/digits/u as uid 65532 gid 65532: Permission denied" in state.failure_message
    done = {"metadata": {"name": "x-1"}, "status": {"phase": "Succeeded", "initContainerStatuses": [
        {"state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}], "containerStatuses": [{"state": {
            "terminated": {"exitCode": 0, "message": encode(StageReport(stage="train", succeeded=True, version="v1",
                                                                        metrics={"accuracy": 0.9}))}}}]}}
    state = p.job_state({"status": {"conditions": [{"type": "Complete", "status": "True"}]}}, [done])
    assert state.report is not None and state.report.metrics == {"accuracy": 0.9}


def test_a_training_change_makes_v2_while_v1_keeps_serving():
    md = body()
    step(md)
    step(md, p.Observed(training_job=finished("train", accuracy=0.95)))
    step(md, p.Observed(compression_job=finished("compress", accuracy=0.95)))
    step(md, p.Observed(deployment=rolled_out("v1")))
    md["spec"]["training"]["hyperparameters"]["epochs"] = 20
    md["metadata"]["generation"] = 2
    plan = step(md, p.Observed(deployment=rolled_out("v1")))
    assert "Job/digits-train-v2-a1" in kinds(plan)
    deploy = next(o for o in plan.apply if o["kind"] == "Deployment")
    assert deploy["spec"]["template"]["metadata"]["labels"]["modelops.io/model-version"] == "v1"
    assert md["status"]["phase"] == "Training" and md["status"]["modelVersion"] == "v1"
    assert get_condition(md["status"]["conditions"], "Ready")["status"] == "True"
    step(md, p.Observed(training_job=finished("train", accuracy=0.97), deployment=rolled_out("v1")))
    plan = step(md, p.Observed(compression_job=finished("compress", accuracy=0.97), deployment=rolled_out("v1")))
    deploy = next(o for o in plan.apply if o["kind"] == "Deployment")
    assert deploy["spec"]["template"]["metadata"]["labels"]["modelops.io/model-version"] == "v2"
    assert md["status"]["phase"] == "Deploying" and md["status"]["modelVersion"] == "v1"
    step(md, p.Observed(deployment=rolled_out("v2")))
    assert md["status"]["phase"] == "Ready" and md["status"]["modelVersion"] == "v2"
    assert [h["outcome"] for h in md["status"]["history"]] == ["Deployed", "Superseded"]


def test_a_serving_change_patches_serving_without_a_new_version():
    md = body()
    for observed in (None, p.Observed(training_job=finished("train", accuracy=0.95)),
                     p.Observed(compression_job=finished("compress", accuracy=0.95)),
                     p.Observed(deployment=rolled_out("v1"))):
        step(md, observed)
    md["spec"]["serving"]["replicas"] = 5
    plan = step(md, p.Observed(deployment=rolled_out("v1")))
    assert not plan.create_only and md["status"]["latestVersion"] == "v1"
    assert next(o for o in plan.apply if o["kind"] == "Deployment")["spec"]["replicas"] == 5


def test_pinning_a_version_rolls_back_and_an_unknown_pin_is_refused():
    md = body()
    history = [{"version": "v2", "outcome": "Deployed", "servable": "tflite"},
               {"version": "v1", "outcome": "Superseded", "servable": "savedModel"}]
    md["status"] = {"modelVersion": "v2", "latestVersion": "v2", "history": history,
                    "pipeline": {"version": "v2", "attempt": 1, "stage": "done",
                                 "specHash": parse(md["spec"]).version_hash}}
    md["spec"]["serving"]["modelVersion"] = "v1"
    plan = step(md, p.Observed(deployment=rolled_out("v2")))
    deploy = next(o for o in plan.apply if o["kind"] == "Deployment")
    env = {e["name"]: e.get("value") for e in deploy["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["MODELOPS_MODEL_DIR"] == "/models/v1" and env["MODELOPS_SERVABLE"] == "savedModel"
    assert md["status"]["phase"] == "Deploying" and not plan.create_only
    step(md, p.Observed(deployment=rolled_out("v1")))
    assert md["status"]["modelVersion"] == "v1" and md["status"]["phase"] == "Ready"
    md["spec"]["serving"]["modelVersion"] = "v9"
    plan = step(md, p.Observed(deployment=rolled_out("v1")))
    assert get_condition(md["status"]["conditions"], "Ready")["reason"] == "UnknownVersion"
    assert not any(o["kind"] == "Deployment" for o in plan.apply)


def schema_keys_missing(value, schema, path="status"):
    """Paths in `value` the CRD schema would prune (status without preserve-unknown-fields)."""
    missing = []
    if isinstance(value, dict):
        props, extra = schema.get("properties"), schema.get("additionalProperties")
        for key, child in value.items():
            if props is not None and key in props:
                missing += schema_keys_missing(child, props[key], f"{path}.{key}")
            elif extra is not None:
                missing += schema_keys_missing(child, extra if isinstance(extra, dict) else {}, f"{path}.{key}")
            else:
                missing.append(f"{path}.{key}")
    elif isinstance(value, list) and "items" in schema:
        for item in value:
            missing += schema_keys_missing(item, schema["items"], f"{path}[]")
    return missing


def test_everything_the_planner_writes_survives_the_crds_pruning():
    import yaml
    from operator_samples import ROOT
    crd = yaml.safe_load((ROOT / "crds" / "modeldeployments.modelops.io.yaml").read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
    md = body()
    md["spec"]["evaluation"]["maxRetrains"] = 0
    statuses = [step(md)]
    statuses.append(step(md, p.Observed(training_job=finished("train", accuracy=0.5))))     # Failed
    md2 = body()
    for observed in (None, p.Observed(training_job=finished("train", accuracy=0.95)),
                     p.Observed(compression_job=finished("compress", accuracy=0.95)),
                     p.Observed(deployment=rolled_out("v1"))):
        statuses.append(step(md2, observed))
    for plan in statuses:
        assert schema_keys_missing(plan.status, schema) == []


def test_optional_serving_objects_are_deleted_only_after_a_spec_change():
    md = body()
    md["spec"]["serving"]["replicas"] = 1                         # no PDB, no HPA
    for observed in (None, p.Observed(training_job=finished("train", accuracy=0.95))):
        step(md, observed)
    first = step(md, p.Observed(compression_job=finished("compress", accuracy=0.95)))
    assert ("PodDisruptionBudget", "digits") not in first.delete   # generation already observed
    md["spec"]["serving"]["replicas"] = 2
    md["metadata"]["generation"] = 2
    step(md, p.Observed(deployment=rolled_out("v1")))
    md["spec"]["serving"]["replicas"] = 1
    md["metadata"]["generation"] = 3
    changed = step(md, p.Observed(deployment=rolled_out("v1")))
    assert ("PodDisruptionBudget", "digits") in changed.delete
    again = step(md, p.Observed(deployment=rolled_out("v1")))
    assert again.delete == []


def test_a_version_records_where_it_lives_and_older_versions_keep_their_place():
    md = body(status={"modelVersion": "v1", "history": [{"version": "v1", "outcome": "Deployed",
                                                         "servable": "tflite"}]})
    plan = step(md, p.Observed(deployment=rolled_out("v1")))
    assert md["status"]["pipeline"]["artifactPath"] == "ml/digits/0123456789abcdef/v2"
    assert md["status"]["history"][0]["artifactPath"] == "ml/digits/0123456789abcdef/v2"
    config = next(o for o in plan.apply if o["kind"] == "ConfigMap")["data"]["job.json"]
    assert '"uid": "0123456789abcdef"' in config
    deploy = next(o for o in plan.apply if o["kind"] == "Deployment")
    assert deploy["spec"]["template"]["spec"]["initContainers"][0]["args"][1] == "/mnt/pvc/models/ml/digits/v1"


def test_the_served_entry_never_falls_out_of_the_history():
    """v1 serves uncompressed (its int8 model failed the check); 20 newer versions failed since."""
    history = [{"version": f"v{n}", "outcome": "Failed"} for n in range(21, 1, -1)]
    history.append({"version": "v1", "outcome": "Deployed", "servable": "tfliteFloat32"})
    md = body(status={"modelVersion": "v1", "history": history,
                      "pipeline": {"version": "v21", "stage": "failed", "specHash": "old", "attempt": 1}})
    plan = step(md, p.Observed(deployment=rolled_out("v1")))
    assert len(md["status"]["history"]) == 20 and md["status"]["latestVersion"] == "v22"
    assert md["status"]["history"][-1] == {"version": "v1", "outcome": "Deployed", "servable": "tfliteFloat32"}
    deploy = next(o for o in plan.apply if o["kind"] == "Deployment")
    env = {e["name"]: e.get("value") for e in deploy["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["MODELOPS_SERVABLE"] == "tfliteFloat32"


def test_a_pinned_entry_that_is_not_served_never_falls_out_of_the_history_either():
    """v2 serves; v1, pinned for a rollback, is older than 20 failed versions: pinning it needs its servable."""
    history = [{"version": f"v{n}", "outcome": "Failed"} for n in range(22, 2, -1)]
    history += [{"version": "v2", "outcome": "Deployed", "servable": "tflite"},
                {"version": "v1", "outcome": "Superseded", "servable": "tfliteFloat32"}]
    md = body(status={"modelVersion": "v2", "history": history,
                      "pipeline": {"version": "v22", "stage": "failed", "specHash": "old", "attempt": 1}})
    md["spec"]["serving"]["modelVersion"] = "v1"
    plan = step(md, p.Observed(deployment=rolled_out("v2")))
    assert len(md["status"]["history"]) == 20
    assert [h["version"] for h in md["status"]["history"][-2:]] == ["v2", "v1"]
    deploy = next(o for o in plan.apply if o["kind"] == "Deployment")
    env = {e["name"]: e.get("value") for e in deploy["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["MODELOPS_SERVABLE"] == "tfliteFloat32"


def pinned_v1_while_v2_passes():
    md = body()
    step(md, p.Observed(training_job=finished("train", accuracy=0.95)))
    step(md, p.Observed(compression_job=finished("compress", accuracy=0.95)))
    step(md, p.Observed(deployment=rolled_out("v1")))
    md["spec"]["serving"]["modelVersion"] = "v1"
    md["spec"]["training"]["hyperparameters"]["epochs"] = 20
    md["metadata"]["generation"] = 2
    step(md, p.Observed(deployment=rolled_out("v1")))
    step(md, p.Observed(training_job=finished("train", accuracy=0.96), deployment=rolled_out("v1")))
    step(md, p.Observed(compression_job=finished("compress", accuracy=0.96), deployment=rolled_out("v1")))
    return md


def test_a_pin_holding_a_passed_version_says_so_and_the_new_version_can_be_pinned():
    md = pinned_v1_while_v2_passes()
    status = step(md, p.Observed(deployment=rolled_out("v1"))).status
    assert status["phase"] == "Ready" and status["modelVersion"] == "v1"
    assert "pinned by serving.modelVersion; v2 passed" in status["message"]
    assert next(h for h in status["history"] if h["version"] == "v2")["servable"] == "tflite"
    md["spec"]["serving"]["modelVersion"] = "v2"
    md["metadata"]["generation"] = 3
    plan = step(md, p.Observed(deployment=rolled_out("v1")))
    deploy = next(o for o in plan.apply if o["kind"] == "Deployment")
    assert deploy["spec"]["template"]["metadata"]["labels"]["modelops.io/model-version"] == "v2"
    assert md["status"]["phase"] == "Deploying"


def test_an_unknown_pinned_version_warns_once_not_on_every_pass():
    md = body()
    md["spec"]["serving"]["modelVersion"] = "v7"
    warned = [e for _ in range(3) for e in step(md).events if e[1] == "UnknownVersion"]
    assert len(warned) == 1
    assert get_condition(md["status"]["conditions"], "Ready")["reason"] == "UnknownVersion"


def test_turning_on_autoscaling_hands_the_replica_count_over_before_letting_go():
    md = body()
    md["spec"]["serving"].pop("replicas", None)
    md["spec"]["serving"]["autoscaling"] = {"minReplicas": 2, "maxReplicas": 6}
    md["status"] = {"modelVersion": "v1", "history": [{"version": "v1", "servable": "tflite"}]}
    ours = p.deployment_state({"metadata": {"generation": 1, "managedFields": [
        {"manager": "modelops-operator", "operation": "Apply", "fieldsV1": {"f:spec": {"f:replicas": {}}}}]},
        "spec": {"replicas": 3, "template": {"metadata": {"labels": {"modelops.io/model-version": "v1"}}}},
        "status": {"observedGeneration": 1, "replicas": 3, "updatedReplicas": 3, "readyReplicas": 3,
                   "availableReplicas": 3}})
    plan = step(md, p.Observed(deployment=ours))
    assert plan.handover == [{"apiVersion": "apps/v1", "kind": "Deployment",
                              "metadata": {"name": "digits", "namespace": "ml"}, "spec": {"replicas": 3}}]
    assert "replicas" not in next(o for o in plan.apply if o["kind"] == "Deployment")["spec"]
    let_go = p.DeploymentState(**{**ours.__dict__, "replicas_applied_by_us": False})
    assert step(md, p.Observed(deployment=let_go)).handover == []


def test_a_succeeded_job_whose_report_is_gone_retrains_instead_of_waiting_forever():
    md = body()
    step(md)
    complete = {"status": {"conditions": [{"type": "Complete", "status": "True"}]}}
    step(md, p.Observed(training_job=p.job_state(complete, [])))
    assert md["status"]["phase"] == "Retraining" and md["status"]["attempts"] == 2
    assert get_condition(md["status"]["conditions"], "Evaluated")["reason"] == "ReportMissing"


def test_a_succeeded_job_with_an_invalid_report_fails_with_the_field():
    md = body()
    step(md)
    text = encode(StageReport(stage="train", succeeded=True, version="v1", metrics={"accuracy": 0.123456}))
    pod = {"metadata": {"name": "digits-train-v1-a1-x", "creationTimestamp": NOW},
           "status": {"phase": "Succeeded", "containerStatuses": [{"state": {"terminated": {
               "exitCode": 0, "message": text.replace("0.123456", "NaN")}}}]}}
    complete = {"status": {"conditions": [{"type": "Complete", "status": "True"}]}}
    step(md, p.Observed(training_job=p.job_state(complete, [pod])))
    assert md["status"]["phase"] == "Failed" and "metrics.accuracy: nan is not a finite number" in md["status"]["message"]


def test_a_new_version_removes_what_the_version_before_last_left_and_a_superseded_run_everything():
    md = body(status={"modelVersion": "v2", "latestVersion": "v2",
                      "history": [{"version": "v2", "outcome": "Deployed", "attempts": 1, "servable": "tflite"},
                                  {"version": "v1", "outcome": "Superseded", "attempts": 2}],
                      "pipeline": {"version": "v2", "stage": "done", "attempt": 1, "specHash": "old"}})
    plan = step(md, p.Observed(deployment=rolled_out("v2")))
    assert md["status"]["latestVersion"] == "v3"
    assert sorted(d for d in plan.delete if d[0] != "HorizontalPodAutoscaler") == sorted(
        [("Job", "digits-train-v1-a1"), ("Job", "digits-train-v1-a2"), ("Job", "digits-compress-v1"),
         ("ConfigMap", "digits-train-v1-a1-config"), ("ConfigMap", "digits-train-v1-a2-config"),
         ("ConfigMap", "digits-compress-v1-config"),
         ("Service", "digits-train-v1-a1-workers"), ("Service", "digits-train-v1-a2-workers")])
    md["spec"]["training"]["hyperparameters"]["epochs"] = 33          # v3 is superseded mid-training
    md["metadata"]["generation"] = 2
    plan = step(md, p.Observed(deployment=rolled_out("v2")))
    assert ("ConfigMap", "digits-train-v3-a1-config") in plan.delete and ("Job", "digits-train-v3-a1") in plan.delete
    assert ("Job", "digits-compress-v2") in plan.delete, "v4 keeps only v3's"


def deployment(version, *, desired=2, replicas, updated, ready, available, generation=1, observed=1):
    labels = {"modelops.io/model-version": version}
    return p.deployment_state({"metadata": {"generation": generation},
                               "spec": {"replicas": desired, "template": {"metadata": {"labels": labels}}},
                               "status": {"observedGeneration": observed, "replicas": replicas,
                                          "updatedReplicas": updated, "readyReplicas": ready,
                                          "availableReplicas": available}})


def to_deploying(md):
    step(md)
    step(md, p.Observed(training_job=finished("train", accuracy=0.95)))
    step(md, p.Observed(compression_job=finished("compress", accuracy=0.948)))


def test_ready_waits_for_the_whole_rollout_and_every_message_counts_the_same_replicas():
    """Seen for real: Ready at 1/2 replicas, a Deployed event saying 1 while the condition said 2."""
    md = body()
    to_deploying(md)
    plan = step(md, p.Observed(deployment=deployment("v1", replicas=2, updated=2, ready=1, available=1)))
    assert md["status"]["phase"] == "Deploying" and md["status"]["ready"] == "1/2"
    assert get_condition(md["status"]["conditions"], "Ready")["status"] == "False"
    assert "1 available" in get_condition(md["status"]["conditions"], "Deployed")["message"]
    assert ("Normal", "Deployed") not in [e[:2] for e in plan.events]

    plan = step(md, p.Observed(deployment=deployment("v1", replicas=2, updated=2, ready=2, available=2)))
    ready = get_condition(md["status"]["conditions"], "Ready")
    assert md["status"]["phase"] == "Ready" and ready["status"] == "True"
    deployed = [m for kind, reason, m in plan.events if reason == "Deployed"]
    assert deployed == ["v1 is serving (2/2 replicas ready)"] and "2/2 replicas ready" in ready["message"]


def test_the_devices_training_really_ran_on_are_kept_in_status():
    """The pod's termination message goes with the pod: what it said about GPUs is kept in the history."""
    md = body()
    step(md)
    ran = {"devices": ["GPU:0", "GPU:1"], "gpusVisible": 2, "precision": "mixed_float16", "jitCompile": True,
           "intraOpThreads": 8}
    report = StageReport(stage="train", succeeded=True, version="v1", metrics={"accuracy": 0.95}, training=ran)
    step(md, p.Observed(training_job=p.JobState(active=False, succeeded=True, report=report)))
    assert md["status"]["history"][0]["training"] == ran
    trained = get_condition(md["status"]["conditions"], "Trained")["message"]
    assert trained == "v1: attempt 1 trained on GPU:0, GPU:1 (mixed_float16, XLA)"


def test_a_surge_never_shows_more_ready_replicas_than_desired_and_is_not_a_finished_rollout():
    state = deployment("v2", replicas=3, updated=1, ready=3, available=3)
    assert not state.rolled_out and state.ready_text == "2/2"
    old_pods_left = deployment("v2", replicas=3, updated=2, ready=3, available=3)
    assert not old_pods_left.rolled_out
    not_seen_yet = deployment("v2", replicas=2, updated=2, ready=2, available=2, generation=2, observed=1)
    assert not not_seen_yet.rolled_out
    assert deployment("v2", replicas=2, updated=2, ready=2, available=2).rolled_out


def failed_v1(reason, message):
    """v1 failed with `reason`, and an edit that fixes nothing (serving replicas) left it failed."""
    md = body()
    step(md)
    step(md, p.Observed(training_job=p.JobState(active=False, failed=True, failure_reason=reason,
                                                failure_message=message)))
    assert md["status"]["phase"] == "Failed" and md["status"]["pipeline"]["reason"] == reason
    md["metadata"]["generation"] = 2
    md["spec"]["serving"]["replicas"] = 3
    assert step(md).status["phase"] == "Failed" and md["status"]["latestVersion"] == "v1"
    md["metadata"]["generation"] = 3
    return md


def test_a_storage_error_is_retried_as_a_new_version_once_the_pods_identity_changes():
    """Fixing who the pods run as is how a StorageError is fixed; nothing else about the model changed."""
    md = failed_v1("StorageError", "storageRoot: cannot write /mnt/pvc/models/ml as uid 65532 gid 65532")
    md["spec"]["podSecurityContext"] = {"runAsUser": 1000, "runAsGroup": 1000}
    plan = step(md)
    assert md["status"]["latestVersion"] == "v2" and md["status"]["phase"] == "Training"
    assert "Job/digits-train-v2-a1" in kinds(plan)


def test_a_storage_error_is_retried_once_the_operators_default_identity_changes():
    """An admin who fixes the chart's default pod security context (OpenShift, NFS) need not edit every resource."""
    md = failed_v1("StorageError", "cannot write")
    plan = p.plan(md, parse(md["spec"]), p.Observed(), b.Images(pod_security={}), NOW)
    md["status"] = plan.status
    assert md["status"]["latestVersion"] == "v2" and "Job/digits-train-v2-a1" in kinds(plan)


def test_an_out_of_memory_training_fails_at_once_and_is_retried_when_its_memory_changes():
    md = failed_v1("OOMKilled", "pod digits-train-v1-a1-x exited with code 137 (OOMKilled)")
    assert "spec.training.resources.limits.memory" in md["status"]["message"]
    md["spec"]["training"]["resources"] = {"requests": {"memory": "4Gi"}, "limits": {"memory": "4Gi"}}
    plan = step(md)
    assert md["status"]["latestVersion"] == "v2" and "Job/digits-train-v2-a1" in kinds(plan)


def test_a_placement_edit_restarts_a_running_stage_job_without_a_new_version():
    md = body()
    step(md)
    made = parse(md["spec"]).placement_hash
    md["spec"]["training"]["resources"] = {"requests": {"cpu": "1"}, "limits": {"cpu": "2"}}   # the quota's fix
    md["metadata"]["generation"] = 2
    running = p.JobState(active=True, placement=made)
    plan = step(md, p.Observed(training_job=running))
    assert md["status"]["latestVersion"] == "v1" and md["status"]["attempts"] == 1
    assert plan.delete == [("Job", "digits-train-v1-a1")] and plan.create_only == []
    assert "restarting it with the new placement" in md["status"]["message"]
    same = p.JobState(active=True, placement=parse(md["spec"]).placement_hash)
    assert step(md, p.Observed(training_job=same)).delete == []
    assert step(md, p.Observed(training_job=p.JobState(active=True))).delete == [], "made before the label"
