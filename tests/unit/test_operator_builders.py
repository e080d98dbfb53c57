"""The objects the operator creates, built from a spec without any I/O."""
import copy

import pytest

from modelops_contracts import jobconfig
from modelops_operator import builders as b
from modelops_operator.spec import parse
from operator_samples import example

OWNER = b.Owner(namespace="ml", name="digits", uid="uid-1")
IMAGES = b.Images(training="train:1", serving="serve:1")


def assert_restricted(pod_spec):
    assert pod_spec["securityContext"]["runAsNonRoot"] is True
    assert pod_spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for container in pod_spec.get("initContainers", []) + pod_spec["containers"]:
        sc = container["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False and sc["capabilities"] == {"drop": ["ALL"]}
        assert sc["readOnlyRootFilesystem"] is True


def assert_owned(obj):
    assert obj["metadata"]["ownerReferences"] == [OWNER.reference()]
    labels = obj["metadata"]["labels"]
    for key in ("name", "instance", "component", "part-of", "managed-by"):
        assert f"app.kubernetes.io/{key}" in labels


def test_single_device_training_job():
    spec = parse(example("digits-classifier")["spec"])
    job = b.build_training_job(spec, OWNER, IMAGES, "v1", 1)
    assert job["metadata"]["name"] == "digits-train-v1-a1"
    assert_owned(job)
    pod = job["spec"]["template"]["spec"]
    assert_restricted(pod)
    assert "completionMode" not in job["spec"] and job["spec"]["completions"] == 1
    assert pod["containers"][0]["command"] == ["modelops-train"]
    assert pod["containers"][0]["resources"]["requests"] == {"cpu": "1", "memory": "2Gi"}
    assert "tolerations" not in pod


def test_multi_worker_training_is_an_indexed_job_with_stable_worker_hosts():
    spec = parse(example("diabetes-multiworker")["spec"])
    job = b.build_training_job(spec, OWNER, IMAGES, "v2", 3)
    assert job["spec"]["completionMode"] == "Indexed"
    assert job["spec"]["completions"] == job["spec"]["parallelism"] == 2
    pod = job["spec"]["template"]["spec"]
    assert pod["subdomain"] == "digits-train-v2-a3-workers"
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert env["MODELOPS_WORKER_HOSTS"] == ("digits-train-v2-a3-0.digits-train-v2-a3-workers.ml.svc:2222,"
                                            "digits-train-v2-a3-1.digits-train-v2-a3-workers.ml.svc:2222")
    svc = b.build_workers_service(OWNER, "digits-train-v2-a3", "v2")
    assert svc["spec"]["clusterIP"] == "None" and svc["metadata"]["name"] == pod["subdomain"]


def test_gpu_training_requests_gpus_and_tolerates_the_gpu_taint():
    spec = parse(example("gpu-mirrored")["spec"])
    pod = b.build_training_job(spec, OWNER, IMAGES, "v1", 1)["spec"]["template"]["spec"]
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 2
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    compress = b.build_compression_job(spec, OWNER, IMAGES, "v1")["spec"]["template"]["spec"]
    assert "nvidia.com/gpu" not in compress["containers"][0]["resources"].get("limits", {})
    assert compress["nodeSelector"] == pod["nodeSelector"], "compression runs where training ran"
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in compress["tolerations"]


def test_the_job_config_is_the_contract_the_trainer_reads():
    spec = parse(example("gpu-mirrored")["spec"])
    cfg = b.build_job_config(spec, OWNER, "train", "v4", 2)
    back = jobconfig.JobConfig.from_dict(cfg.to_dict())
    assert back == cfg
    assert back.storage_root == "/mnt/pvc/models/team-a"
    assert str(back.version_dir) == "/mnt/pvc/models/team-a/ml/digits/v4"
    assert back.compression.pruning_sparsity == 0.5 and back.training.attempt == 2
    assert cfg.training.seed != b.build_job_config(spec, OWNER, "train", "v4", 3).training.seed


def test_serving_rolls_out_without_unavailability_and_lets_the_hpa_own_replicas():
    spec = parse(example("digits-classifier")["spec"])
    deploy = b.build_serving_deployment(spec, OWNER, IMAGES, "v3", "tflite")
    assert_owned(deploy)
    assert deploy["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert deploy["spec"]["replicas"] == 2
    pod = deploy["spec"]["template"]["spec"]
    assert_restricted(pod)
    assert pod["initContainers"][0]["args"] == ["--source", "/mnt/pvc/models/ml/digits/v3", "--dest", "/models/v3"]
    assert pod["containers"][0]["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    auto = parse(example("diabetes-multiworker")["spec"])
    assert "replicas" not in b.build_serving_deployment(auto, OWNER, IMAGES, "v1", "tflite")["spec"]
    hpa = b.build_hpa(auto, OWNER)
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 6)


def test_the_grpc_port_is_set_on_the_server_opened_on_the_pod_and_published_by_the_service():
    deploy = b.build_serving_deployment(parse(example("digits-classifier")["spec"]), OWNER, IMAGES, "v1", "tflite")
    server = deploy["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "MODELOPS_GRPC_PORT", "value": "9000"} in server["env"]
    assert {"name": "grpc", "containerPort": 9000, "protocol": "TCP"} in server["ports"]
    service = b.build_serving_service(OWNER)
    assert {"name": "grpc", "port": 9000, "targetPort": "grpc", "protocol": "TCP"} in service["spec"]["ports"]


@pytest.mark.parametrize("limits, workers", [({}, 1), ({"cpu": "500m"}, 1), ({"cpu": 2}, 2),
                                             ({"cpu": "1500m"}, 2), ({"cpu": "4"}, 4), ({"memory": "1Gi"}, 1)])
def test_a_serving_pod_runs_one_server_process_per_cpu_of_its_limit(limits, workers):
    doc = example("digits-classifier")["spec"]
    doc["serving"]["resources"] = {"requests": {"cpu": "250m"}, "limits": limits}
    deploy = b.build_serving_deployment(parse(doc), OWNER, IMAGES, "v1", "tflite")
    env = deploy["spec"]["template"]["spec"]["containers"][0]["env"]
    set_to = [e["value"] for e in env if e["name"] == "MODELOPS_WORKERS"]
    assert set_to == ([str(workers)] if workers > 1 else []), "one, the server's default, is left unset"


def test_a_pdb_exists_only_when_more_than_one_replica_serves():
    raw = example("linear-regression")["spec"]
    wanted, unwanted = b.build_serving_objects(parse(raw), OWNER, IMAGES, "v1", "tflite")
    assert [o["kind"] for o in wanted] == ["Deployment", "Service"]
    assert ("PodDisruptionBudget", "digits") in unwanted and ("HorizontalPodAutoscaler", "digits") in unwanted
    raw = copy.deepcopy(raw)
    raw["serving"]["replicas"] = 3
    wanted, _ = b.build_serving_objects(parse(raw), OWNER, IMAGES, "v1", "tflite")
    assert [o["kind"] for o in wanted] == ["Deployment", "Service", "PodDisruptionBudget"]


def test_a_recreated_resource_of_the_same_name_stores_its_versions_apart():
    """Versions restarting at v1 used to replace the predecessor's v1 (and restore its backups)."""
    spec = parse(example("digits-classifier")["spec"])
    before, after = (b.Owner(namespace="ml", name="digits", uid=u) for u in ("uid-1", "uid-2"))
    dirs = {str(b.build_job_config(spec, o, "train", "v1", 1, o.uid).version_dir) for o in (before, after)}
    assert dirs == {"/mnt/pvc/models/ml/digits/uid-1/v1", "/mnt/pvc/models/ml/digits/uid-2/v1"}
    assert b.artifact_path(after, "v1") == "ml/digits/uid-2/v1"
    fetch = b.build_serving_deployment(spec, after, IMAGES, "v1", "tflite", after.uid)
    assert fetch["spec"]["template"]["spec"]["initContainers"][0]["args"][1] == "/mnt/pvc/models/ml/digits/uid-2/v1"
    legacy = b.build_serving_deployment(spec, after, IMAGES, "v1", "tflite", None)
    assert legacy["spec"]["template"]["spec"]["initContainers"][0]["args"][1] == "/mnt/pvc/models/ml/digits/v1"


def every_pod_spec(spec, images=IMAGES):
    serving, _ = b.build_serving_objects(spec, OWNER, images, "v1", "tflite", OWNER.uid)
    return {"training": b.build_training_job(spec, OWNER, images, "v1", 1, OWNER.uid)["spec"]["template"]["spec"],
            "compression": b.build_compression_job(spec, OWNER, images, "v1", OWNER.uid)["spec"]["template"]["spec"],
            "serving": serving[0]["spec"]["template"]["spec"],
            "cleanup": b.build_cleanup_job(spec, OWNER, images)["spec"]["template"]["spec"]}


def test_pods_run_as_the_images_user_by_default_and_as_configured_otherwise():
    raw = example("digits-classifier")["spec"]
    for pod in every_pod_spec(parse(raw)).values():
        assert_restricted(pod)
        assert pod["securityContext"] == {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"},
                                          "runAsUser": 65532, "runAsGroup": 65532, "fsGroup": 65532,
                                          "fsGroupChangePolicy": "OnRootMismatch"}
    platform = b.Images(training="t", serving="s", pod_security={})       # OpenShift: the platform picks
    raw["podSecurityContext"] = {"runAsGroup": 0, "fsGroupChangePolicy": "Always"}
    for pod in every_pod_spec(parse(raw), platform).values():
        assert pod["securityContext"] == {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"},
                                          "runAsGroup": 0}
    raw["podSecurityContext"] = {"runAsUser": 2000, "fsGroup": 3000}
    for pod in every_pod_spec(parse(raw)).values():
        sc = pod["securityContext"]
        assert (sc["runAsUser"], sc["runAsGroup"], sc["fsGroup"], sc["runAsNonRoot"]) == (2000, 65532, 3000, True)


def test_stage_jobs_fail_at_once_on_permanent_exit_codes_ignore_disruptions_and_have_deadlines():
    spec = parse(example("digits-classifier")["spec"])
    training = b.build_training_job(spec, OWNER, IMAGES, "v1", 1)["spec"]
    compression = b.build_compression_job(spec, OWNER, IMAGES, "v1")["spec"]
    for job, container in ((training, "train"), (compression, "compress")):
        # In order: an evicted pod's SIGKILL (137) must never fail the Job, so the Ignore rule comes first.
        ignore, fail_job, fail_storage, out_of_memory = job["podFailurePolicy"]["rules"]
        assert ignore == {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}
        assert fail_job["action"] == fail_storage["action"] == out_of_memory["action"] == "FailJob"
        assert fail_job["onExitCodes"] == {"containerName": container, "operator": "In", "values": [2, 3, 5, 8]}
        assert fail_storage["onExitCodes"]["containerName"] == "prepare-storage"   # its StorageError is permanent
        assert out_of_memory["onExitCodes"] == {"containerName": container, "operator": "In", "values": [137]}
        assert job["template"]["spec"]["restartPolicy"] == "Never"   # the API server requires it for the policy
    assert training["activeDeadlineSeconds"] == b.DEFAULT_TRAINING_DEADLINE_S
    assert compression["activeDeadlineSeconds"] == b.DEFAULT_COMPRESSION_DEADLINE_S
    raw = example("digits-classifier")["spec"]
    raw["training"]["activeDeadlineSeconds"] = 600
    assert b.build_training_job(parse(raw), OWNER, IMAGES, "v1", 1)["spec"]["activeDeadlineSeconds"] == 600


def test_every_container_has_requests_and_limits_when_the_spec_gives_them():
    """A namespace with a ResourceQuota on cpu/memory refuses any container without them."""
    raw = example("digits-classifier")["spec"]
    raw["training"]["resources"] = raw["serving"]["resources"] = {
        "requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}}
    for component, pod in every_pod_spec(parse(raw)).items():
        for container in pod.get("initContainers", []) + pod["containers"]:
            resources = container["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]) and {"cpu", "memory"} <= set(resources["limits"]), \
                (component, container["name"])


def storage_mounts(pod, claim="models"):
    return [(m["mountPath"], m.get("subPath"), m["readOnly"]) for container in
            pod.get("initContainers", []) + pod["containers"] for m in container.get("volumeMounts", [])
            if m["name"] in {v["name"] for v in pod["volumes"]
                             if (v.get("persistentVolumeClaim") or {}).get("claimName") == claim}]


def test_user_code_mounts_only_its_own_model_directory_of_the_storage_claim():
    """Training (user code) mounted the whole claim read-write and could rewrite other models' versions."""
    raw = example("digits-classifier")["spec"]
    raw["storage"]["uri"] = "pvc://models/team-a"
    pods = every_pod_spec(parse(raw))
    own = "team-a/ml/digits/uid-1"
    for stage in ("training", "compression"):
        stage_container = pods[stage]["containers"][0]
        assert [(m["mountPath"], m["subPath"], m["readOnly"]) for m in stage_container["volumeMounts"]
                if m["name"] == "pvc-0"] == [(f"/mnt/pvc/models/{own}", own, False)], stage
        prepare = pods[stage]["initContainers"][0]
        assert prepare["image"] == "serve:1" and prepare["command"][3] == f"/mnt/pvc/models/{own}"
    assert storage_mounts(pods["serving"]) == [(f"/mnt/pvc/models/{own}", own, True)]
    assert storage_mounts(pods["cleanup"]) == [("/mnt/pvc/models", None, False),   # prepare-storage
                                               ("/mnt/pvc/models/team-a/ml/digits", "team-a/ml/digits", False)]
    assert pods["cleanup"]["containers"][0]["image"] == "serve:1"   # never the spec's image on the name directory
    legacy = b.build_training_job(parse(raw), OWNER, IMAGES, "v1", 1, None)["spec"]["template"]["spec"]
    assert storage_mounts(legacy)[-1] == ("/mnt/pvc/models/team-a/ml/digits", "team-a/ml/digits", False)


def test_data_on_the_storage_claim_is_mounted_read_only_by_its_directory():
    raw = example("digits-classifier")["spec"]
    raw["data"]["target"] = "digit"
    for uri, data_dir in (("pvc://models/data/train.csv", "data"), ("pvc://models/shards/train-*.tfrecord", "shards"),
                          ("pvc://models/images/", ""), ("pvc://models/a/b/images", "a/b")):
        raw["data"]["uri"] = uri
        pod = b.build_training_job(parse(raw), OWNER, IMAGES, "v1", 1, "uid-1")["spec"]["template"]["spec"]
        mounts = storage_mounts({**pod, "initContainers": []})
        assert mounts[0] == ("/mnt/pvc/models/ml/digits/uid-1", "ml/digits/uid-1", False)
        assert mounts[1] == ("/mnt/pvc/models" + (f"/{data_dir}" if data_dir else ""), data_dir or None, True), uri
    raw["data"]["uri"] = "pvc://datasets/train.csv"   # another claim: read-only, as before
    pod = b.build_training_job(parse(raw), OWNER, IMAGES, "v1", 1, "uid-1")["spec"]["template"]["spec"]
    assert storage_mounts(pod, "datasets") == [("/mnt/pvc/datasets", None, True)]
