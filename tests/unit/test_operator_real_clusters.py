"""Pods for real clusters: identity and credentials, the CUDA image for GPU pods, the cluster domain."""
import pytest

from modelops_operator import builders as b
from modelops_operator.spec import SpecError, parse
from operator_samples import example

OWNER = b.Owner(namespace="ml", name="digits", uid="uid-1")
IMAGES = b.Images(training="train:1", serving="serve:1")
S3_ENV = [{"name": "AWS_REGION", "value": "eu-west-1"},
          {"name": "AWS_SECRET_ACCESS_KEY", "valueFrom": {"secretKeyRef": {"name": "s3", "key": "secret"}}}]


def identity_spec():
    raw = example("digits-classifier")["spec"]
    raw["training"].update(serviceAccountName="trainer", env=S3_ENV, envFrom=[{"secretRef": {"name": "s3-creds"}}])
    raw["serving"].update(serviceAccountName="server", env=[{"name": "LOG_FORMAT", "value": "json"}])
    raw["imagePullSecrets"] = [{"name": "registry"}]
    return parse(raw)


def test_training_and_compression_pods_take_the_training_identity():
    spec = identity_spec()
    for job in (b.build_training_job(spec, OWNER, IMAGES, "v1", 1), b.build_compression_job(spec, OWNER, IMAGES, "v1")):
        pod = job["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] == "trainer" and pod["imagePullSecrets"] == [{"name": "registry"}]
        container = pod["containers"][0]
        names = [e["name"] for e in container["env"]]
        assert names[:2] == ["MODELOPS_PVC_ROOT", "HOME"] and names[-2:] == ["AWS_REGION", "AWS_SECRET_ACCESS_KEY"]
        assert container["envFrom"] == [{"secretRef": {"name": "s3-creds"}}]


def test_serving_pods_take_the_serving_identity_and_cleanup_only_the_pull_secrets():
    spec = identity_spec()
    pod = b.build_serving_deployment(spec, OWNER, IMAGES, "v1", "tflite")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "server" and pod["imagePullSecrets"] == [{"name": "registry"}]
    assert pod["containers"][0]["env"][-1] == {"name": "LOG_FORMAT", "value": "json"}
    assert "envFrom" not in pod["containers"][0]
    cleanup = b.build_cleanup_job(spec, OWNER, IMAGES)["spec"]["template"]["spec"]
    assert cleanup["imagePullSecrets"] == [{"name": "registry"}] and "serviceAccountName" not in cleanup


def test_without_identity_fields_pods_use_the_namespace_default():
    spec = parse(example("digits-classifier")["spec"])
    pod = b.build_training_job(spec, OWNER, IMAGES, "v1", 1)["spec"]["template"]["spec"]
    assert "serviceAccountName" not in pod and "imagePullSecrets" not in pod and "envFrom" not in pod["containers"][0]


@pytest.mark.parametrize("name", ["MODELOPS_MODEL_DIR", "HOME", "TF_CONFIG"])
def test_env_may_not_shadow_what_the_operator_sets(name):
    raw = example("digits-classifier")["spec"]
    raw["serving"]["env"] = [{"name": name, "value": "x"}]
    with pytest.raises(SpecError, match=r"^spec\.serving\.env: env: MODELOPS_\*"):
        parse(raw)


def test_the_endpoint_uses_the_configured_cluster_domain():
    assert b.endpoint(OWNER) == "http://digits.ml.svc.cluster.local/v1/models/digits:predict"
    assert b.endpoint(OWNER, "corp.example") == "http://digits.ml.svc.corp.example/v1/models/digits:predict"


def test_the_operator_reads_the_cluster_domain_and_gpu_image(monkeypatch):
    from modelops_operator.main import parse_args
    monkeypatch.setenv("MODELOPS_CLUSTER_DOMAIN", "corp.example")
    args = parse_args(["--training-gpu-image", "train-gpu:2"])
    assert (args.cluster_domain, args.training_gpu_image) == ("corp.example", "train-gpu:2")


def test_gpu_pods_get_the_cuda_image_unless_the_spec_names_one():
    images = b.Images(training="train:1", serving="serve:1", training_gpu="train-gpu:1")
    raw = example("gpu-mirrored")["spec"]
    raw["training"].pop("image", None)
    spec = parse(raw)
    assert spec.gpus_per_worker > 0
    train_pod = b.build_training_job(spec, OWNER, images, "v1", 1)["spec"]["template"]["spec"]
    assert train_pod["containers"][0]["image"] == "train-gpu:1"
    # Compression requests no GPU: the smaller CPU image.
    compress_pod = b.build_compression_job(spec, OWNER, images, "v1")["spec"]["template"]["spec"]
    assert compress_pod["containers"][0]["image"] == "train:1"
    raw["training"]["image"] = "mine:2"
    assert b.build_training_job(parse(raw), OWNER, images, "v1", 1)["spec"]["template"]["spec"][
        "containers"][0]["image"] == "mine:2"
    cpu = b.build_training_job(parse(example("digits-classifier")["spec"]), OWNER, images, "v1", 1)
    assert cpu["spec"]["template"]["spec"]["containers"][0]["image"] == "train:1"


def test_status_endpoint_uses_the_operators_cluster_domain():
    from modelops_contracts.report import StageReport
    from modelops_operator import pipeline as p
    from operator_samples import body
    images = b.Images(cluster_domain="corp.example")
    md, now = body(), "2026-11-29T12:00:00Z"
    done = {stage: p.JobState(active=False, succeeded=True, report=StageReport(
        stage=stage, succeeded=True, version="v1", metrics={"accuracy": 0.95})) for stage in ("train", "compress")}
    md["status"] = p.plan(md, parse(md["spec"]), p.Observed(training_job=done["train"]), images, now).status
    md["status"] = p.plan(md, parse(md["spec"]), p.Observed(compression_job=done["compress"]), images, now).status
    rolled = p.DeploymentState(version="v1", desired=2, replicas=2, ready=2, updated=2, rolled_out=True)
    status = p.plan(md, parse(md["spec"]), p.Observed(deployment=rolled), images, now).status
    assert status["endpoint"] == "http://digits.ml.svc.corp.example/v1/models/digits:predict"
