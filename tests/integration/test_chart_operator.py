"""The user path end to end: `helm install`, then the installed operator's identity reconciles every example.

kwok only pretends to run the chart's operator pod, so the operator runs here as a local process
authenticated as the chart's ServiceAccount: exactly the permissions `helm install` granted.
"""
import json

import yaml

from tests.integration.operator_fixtures import OperatorProcess, apply, finish_job, report, wait_phase
from tests.integration.test_chart import CHART, chart_crds, helm, leftovers, restrict  # noqa: F401  (chart_crds: a fixture)
from tests.support.kube import REPO_ROOT, kubectl, wait_for, write_serviceaccount_kubeconfig

# example -> (metric, value its training reports, worker pods)
EXAMPLES = {"digits": ("accuracy", 0.95, 1), "diabetes": ("r2", 0.45, 2), "linear": ("mse", 0.3, 1),
            "cancer-gpu": ("auc", 0.99, 1)}


def test_helm_install_then_the_installed_operator_reconciles_every_example(namespace, chart_crds, storage,
                                                                           tmp_path):
    release = namespace
    restrict(namespace)
    helm("install", release, str(CHART), "--namespace", namespace, "--skip-crds",
         "--set", f"peering.name={release}", "--wait", "--timeout=120s")
    account = f"{release}-modelops"
    env = {"KUBECONFIG": str(write_serviceaccount_kubeconfig(namespace, account, tmp_path / "chart.kubeconfig"))}
    operator = OperatorProcess(namespace, tmp_path, env).start()
    try:
        for path in sorted((REPO_ROOT / "examples").glob("*.yaml")):
            apply(namespace, yaml.safe_load(path.read_text()))
        for name, (metric, value, pods) in EXAMPLES.items():
            finish_job(namespace, f"{name}-train-v1-a1", pods=pods, message=report("train", "v1", {metric: value}))
        for name, (metric, value, _) in EXAMPLES.items():
            wait_phase(namespace, name, "Compressing", timeout=90)
            finish_job(namespace, f"{name}-compress-v1", message=report("compress", "v1", {metric: value}))
        for name, (metric, value, _) in EXAMPLES.items():
            status = wait_phase(namespace, name, "Ready", timeout=90)
            assert status["modelVersion"] == "v1" and status["metricSummary"] == f"{metric}={value:.4g}"
    finally:
        operator.stop()
    log = operator.log.read_text()
    assert "Forbidden" not in log, operator.logs()
    kubectl("delete", "md", "--all", "-n", namespace, "--wait=true", "--timeout=60s")
    helm("uninstall", release, "--namespace", namespace, "--wait", "--timeout=120s")
    wait_for(lambda: not leftovers(namespace, release), 60, f"every object of release {release} to be gone")
    assert json.loads(kubectl("get", "crd", "modeldeployments.modelops.io", "-o", "json").stdout)
