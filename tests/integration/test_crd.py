"""The ModelDeployment CRD as users meet it through the real API server."""
import copy
import json
import re

import pytest
import yaml

from tests.support.kube import REPO_ROOT, kubectl, kubectl_json

EXAMPLES = sorted((REPO_ROOT / "examples").glob("*.yaml"))
BASE = yaml.safe_load((REPO_ROOT / "examples" / "digits-classifier.yaml").read_text())


def test_every_example_applies_and_get_shows_the_columns(crd, namespace):
    for path in EXAMPLES:
        kubectl("apply", "-n", namespace, "-f", str(path))
    out = kubectl("get", "md", "-n", namespace).stdout
    header = out.splitlines()[0].split()
    assert header == ["NAME", "PHASE", "VERSION", "METRIC", "READY", "LIVE", "URL", "AGE"]
    names = {line.split()[0] for line in out.splitlines()[1:]}
    assert names == {yaml.safe_load(p.read_text())["metadata"]["name"] for p in EXAMPLES}


def test_the_api_server_fills_in_defaults(crd, namespace):
    md = {"apiVersion": "modelops.io/v1alpha1", "kind": "ModelDeployment", "metadata": {"name": "minimal"},
          "spec": {"model": {"template": "linear-regression"}, "data": {"uri": "builtin:linear", "target": "y"},
                   "evaluation": {"metric": "mse", "threshold": {"max": 0.1}}, "storage": {"uri": "pvc://models"}}}
    kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(md))
    spec = kubectl_json("get", "md/minimal", "-n", namespace)["spec"]
    assert spec["training"]["strategy"] == {"type": "OneDevice", "workers": 1, "gpusPerWorker": 0}
    assert spec["training"]["hyperparameters"] == {"epochs": 10, "batchSize": 32, "learningRate": 0.001}
    assert spec["compression"]["method"] == "dynamic-range" and spec["serving"]["replicas"] == 1
    assert spec["evaluation"]["maxRetrains"] == 2


def test_a_canary_rollout_gets_the_defaults_the_operator_assumes(crd, namespace):
    from modelops_operator.rollout import FIELDS, Rollout, parse_rollout
    md = copy.deepcopy(BASE)
    md["metadata"]["name"] = "canary"
    md["spec"]["serving"]["rollout"] = {"strategy": "Canary", "canary": {"replicas": 2}}
    kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(md))
    canary = kubectl_json("get", "md/canary", "-n", namespace)["spec"]["serving"]["rollout"]["canary"]
    assert set(canary) == {path.split(".")[-1] for path, default, *_ in FIELDS.values()
                           if path.startswith("canary.") and default is not None}
    assert parse_rollout({"rollout": {"strategy": "Canary", "canary": canary}}) == Rollout(strategy="Canary", replicas=2)


def test_explain_describes_the_fields(crd):
    out = kubectl("explain", "md.spec.evaluation.threshold").stdout
    assert "exactly one of min (higher is better) or max (lower is better)" in " ".join(out.split())
    out = kubectl("explain", "md.spec.training.strategy.type").stdout
    assert "MultiWorkerMirrored" in out


def mutate(fn):
    md = copy.deepcopy(BASE)
    md["metadata"]["name"] = "bad"
    fn(md["spec"])
    return md


def set_path(path, value):
    def fn(spec):
        node = spec
        keys = path.split(".")
        for k in keys[:-1]:
            node = node.setdefault(k, {})
        if value is DELETE:
            node.pop(keys[-1], None)
        else:
            node[keys[-1]] = value
    return fn


DELETE = object()

# (what is wrong, change, text the API server's refusal must contain: the offending field)
INVALID = [
    ("unknown template", set_path("model.template", "resnet"), "spec.model.template"),
    ("custom without module", set_path("model.template", "custom"), "spec.model.customModule"),
    ("module without custom", set_path("model.customModule", "pkg.mod"), "spec.model.customModule"),
    ("module not a python path", lambda s: s["model"].update(template="custom", customModule="pkg/mod.py"),
     "spec.model.customModule"),
    ("no data", set_path("data", DELETE), "spec.data"),
    ("unknown data scheme", set_path("data.uri", "ftp://host/x.csv"), "spec.data.uri"),
    ("unknown bundled dataset", set_path("data.uri", "builtin:mnist"), "spec.data.uri"),
    ("csv without target", set_path("data.uri", "pvc://datasets/house.csv"), "spec.data"),
    ("validation split too large", set_path("data.validationSplit", 0.95), "spec.data.validationSplit"),
    ("unknown strategy", set_path("training.strategy.type", "Horovod"), "spec.training.strategy.type"),
    ("workers without multi-worker", set_path("training.strategy.workers", 4), "spec.training.strategy.workers"),
    ("too many workers", lambda s: s["training"].update(strategy={"type": "MultiWorkerMirrored", "workers": 65}),
     "spec.training.strategy.workers"),
    ("several GPUs on one device", set_path("training.strategy.gpusPerWorker", 2),
     "spec.training.strategy.gpusPerWorker"),
    ("negative GPUs", set_path("training.strategy.gpusPerWorker", -1), "spec.training.strategy.gpusPerWorker"),
    ("zero epochs", set_path("training.hyperparameters.epochs", 0), "spec.training.hyperparameters.epochs"),
    ("learning rate as text", set_path("training.hyperparameters.learningRate", "fast"),
     "spec.training.hyperparameters.learningRate"),
    ("backoff too high", set_path("training.backoffLimit", 100), "spec.training.backoffLimit"),
    ("unknown metric", set_path("evaluation.metric", "f1"), "spec.evaluation.metric"),
    ("regression metric on a classifier", lambda s: s["evaluation"].update(metric="mse", threshold={"max": 1}),
     "spec.evaluation.metric"),
    ("both threshold bounds", set_path("evaluation.threshold", {"min": 0.8, "max": 0.9}),
     "spec.evaluation.threshold"),
    ("no threshold bound", set_path("evaluation.threshold", {}), "spec.evaluation.threshold"),
    ("max bound for accuracy", set_path("evaluation.threshold", {"max": 0.9}), "spec.evaluation.threshold"),
    ("negative retrains", set_path("evaluation.maxRetrains", -1), "spec.evaluation.maxRetrains"),
    ("unknown compression", set_path("compression.method", "int4"), "spec.compression.method"),
    ("pruning without conversion", lambda s: s["compression"].update(method="none", pruning={"enabled": True}),
     "spec.compression.pruning.enabled"),
    ("negative tolerance", set_path("compression.maxDegradation", -0.1), "spec.compression.maxDegradation"),
    ("unknown degradation policy", set_path("compression.onDegradation", "Ignore"), "spec.compression.onDegradation"),
    ("min above max replicas", set_path("serving.autoscaling", {"minReplicas": 5, "maxReplicas": 2}),
     "spec.serving.autoscaling.minReplicas"),
    ("autoscaling without max", set_path("serving.autoscaling", {"minReplicas": 2}),
     "spec.serving.autoscaling.maxReplicas"),
    ("autoscaling without a cpu request", set_path("serving", {"autoscaling": {"maxReplicas": 3}}),
     "spec.serving.resources"),
    ("root pods", set_path("podSecurityContext", {"runAsUser": 0}), "spec.podSecurityContext.runAsUser"),
    ("unknown ownership policy", set_path("podSecurityContext", {"fsGroupChangePolicy": "Never"}),
     "spec.podSecurityContext.fsGroupChangePolicy"),
    ("negative replicas", set_path("serving.replicas", -1), "spec.serving.replicas"),
    ("bad version pin", set_path("serving.modelVersion", "latest"), "spec.serving.modelVersion"),
    ("zero batch size", set_path("serving.batching.maxBatchSize", 0), "spec.serving.batching.maxBatchSize"),
    ("storage not a pvc", set_path("storage.uri", "s3://bucket/models"), "spec.storage.uri"),
    ("no storage", set_path("storage", DELETE), "spec.storage"),
    ("cpu as nonsense", set_path("training.resources", {"requests": {"cpu": "lots"}}),
     "spec.training.resources.requests"),
    # A name is never empty (an empty target column was accepted once).
    ("empty target", set_path("data.target", ""), "spec.data.target"),
    ("empty feature name", set_path("data.features", ["a", ""]), "spec.data.features[1]"),
    ("empty training image", set_path("training.image", ""), "spec.training.image"),
    ("empty serving image", set_path("serving.image", ""), "spec.serving.image"),
    ("empty priority class", set_path("training.priorityClassName", ""), "spec.training.priorityClassName"),
    ("empty node label name", set_path("training.nodeSelector", {"": "gpu"}), "spec.training.nodeSelector"),
    ("empty annotation name", set_path("training.podAnnotations", {"": "x"}), "spec.training.podAnnotations"),
    ("empty service account", set_path("serving.serviceAccountName", ""), "spec.serving.serviceAccountName"),
    ("empty env name", set_path("training.env", [{"name": "", "value": "x"}]), "spec.training.env[0].name"),
    ("empty secret name", set_path("training.envFrom", [{"secretRef": {"name": ""}}]),
     "spec.training.envFrom[0].secretRef.name"),
    ("empty pull secret", set_path("imagePullSecrets", [{"name": ""}]), "spec.imagePullSecrets[0].name"),
    ("empty featureSpec name", set_path("data.featureSpec", {"": {"dtype": "float32"}}), "spec.data.featureSpec"),
    ("envFrom with no source", set_path("training.envFrom", [{"prefix": "AWS_"}]), "spec.training.envFrom[0]"),
    ("envFrom with two sources", set_path("serving.envFrom", [{"secretRef": {"name": "s"}, "configMapRef": {"name": "c"}}]),
     "spec.serving.envFrom[0]"),
    ("valueFrom with no source", set_path("training.env", [{"name": "TOKEN", "valueFrom": {}}]),
     "spec.training.env[0].valueFrom"),
    ("empty secret in valueFrom", set_path("training.env", [
        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "", "key": "token"}}}]),
     "spec.training.env[0].valueFrom.secretKeyRef.name"),
    ("empty config map key in valueFrom", set_path("serving.env", [
        {"name": "REGION", "valueFrom": {"configMapKeyRef": {"name": "aws", "key": ""}}}]),
     "spec.serving.env[0].valueFrom.configMapKeyRef.key"),
    ("empty field path in valueFrom", set_path("serving.env", [{"name": "NODE", "valueFrom": {"fieldRef": {}}}]),
     "spec.serving.env[0].valueFrom.fieldRef.fieldPath"),
    ("value and valueFrom", set_path("training.env", [
        {"name": "TOKEN", "value": "x", "valueFrom": {"secretKeyRef": {"name": "s", "key": "token"}}}]),
     "spec.training.env[0]"),
    ("mixed precision on CPUs", set_path("training.precision", "mixed_float16"), "spec.training.precision"),
    ("env shadowing the operator's", set_path("serving.env", [{"name": "MODELOPS_MODEL_DIR", "value": "/x"}]),
     "spec.serving.env"),
    ("unknown rollout strategy", set_path("serving.rollout", {"strategy": "BlueGreen"}), "spec.serving.rollout.strategy"),
    ("no canary pods", set_path("serving.rollout", {"strategy": "Canary", "canary": {"replicas": 0}}),
     "spec.serving.rollout.canary.replicas"),
    ("error rate above 1", set_path("serving.rollout", {"canary": {"maxErrorRate": 2}}),
     "spec.serving.rollout.canary.maxErrorRate"),
    ("canary timeout before its minimum time", set_path("serving.rollout", {
        "strategy": "Canary", "canary": {"minDurationSeconds": 900, "timeoutSeconds": 600}}),
     "spec.serving.rollout.canary.minDurationSeconds"),
    ("unknown timeout policy", set_path("serving.rollout", {"canary": {"onTimeout": "Promote"}}),
     "spec.serving.rollout.canary.onTimeout"),
]


@pytest.mark.parametrize("what, change, field", INVALID, ids=[x[0] for x in INVALID])
def test_an_invalid_model_deployment_is_refused_naming_the_field(crd, namespace, what, change, field):
    result = kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(mutate(change)), check=False)
    assert result.returncode != 0, f"the API server accepted: {what}"
    assert field in result.stderr, f"{what}: refusal does not name {field}:\n{result.stderr}"
    assert kubectl("get", "md", "-n", namespace, "-o", "name").stdout.strip() == ""


def test_the_operators_own_reader_refuses_the_same_corpus():
    """modelops run has no API server: its reader must refuse the cross-field cases too."""
    from modelops_operator.spec import SpecError, parse
    cross_field = {"custom without module", "module without custom", "csv without target",
                   "workers without multi-worker", "several GPUs on one device", "regression metric on a classifier",
                   "both threshold bounds", "no threshold bound", "max bound for accuracy",
                   "pruning without conversion", "min above max replicas", "autoscaling without max", "no storage",
                   "empty node label name", "empty annotation name", "env shadowing the operator's",
                   "autoscaling without a cpu request", "canary timeout before its minimum time",
                   "empty featureSpec name", "envFrom with no source", "envFrom with two sources",
                   "valueFrom with no source", "mixed precision on CPUs", "value and valueFrom"}
    for what, change, field in INVALID:
        if what in cross_field:
            with pytest.raises(SpecError, match=re.escape(field)):
                parse(mutate(change)["spec"])


def test_scale_subresource_changes_serving_replicas(crd, namespace):
    kubectl("apply", "-n", namespace, "-f", str(REPO_ROOT / "examples" / "digits-classifier.yaml"))
    kubectl("scale", "md/digits", "-n", namespace, "--replicas=4")
    assert kubectl_json("get", "md/digits", "-n", namespace)["spec"]["serving"]["replicas"] == 4


def test_storage_uri_is_immutable(crd, namespace):
    """Moving storage would point the served version (and every pin) at an empty directory."""
    kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(BASE))
    moved = copy.deepcopy(BASE)
    moved["spec"]["storage"]["uri"] = "pvc://elsewhere"
    refused = kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(moved), check=False)
    assert refused.returncode != 0 and "storage.uri is immutable" in refused.stderr
    kept = copy.deepcopy(BASE)
    kept["spec"]["storage"]["deleteOnModelDeletion"] = True
    kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(kept))
