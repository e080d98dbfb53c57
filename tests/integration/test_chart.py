"""The Helm chart and install.yaml against the real API server: lint, server-side dry run (with PodSecurity
admission enforcing the restricted profile), install, and an uninstall that leaves only the CRDs."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support.kube import kubeconfig, kubectl, kubectl_json, tool, wait_for

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART = REPO_ROOT / "manifests" / "helm" / "modelops"
INSTALL = REPO_ROOT / "manifests" / "install.yaml"
HELM_TIMEOUT_S = 180
INSTALL_TIMEOUT = "120s"
# Everything the chart can create, namespaced and cluster-wide, for the "nothing left behind" check.
NAMESPACED_KINDS = "deployments,replicasets,pods,services,serviceaccounts,roles,rolebindings,kopfpeerings,secrets"
CLUSTER_KINDS = "clusterroles,clusterrolebindings,clusterkopfpeerings"


def helm(*args: str, input: str | None = None) -> str:
    result = subprocess.run([str(tool("helm")), f"--kubeconfig={kubeconfig()}", *args], input=input,
                            capture_output=True, text=True, timeout=HELM_TIMEOUT_S, check=False)
    if result.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def restrict(namespace: str) -> None:
    """Makes PodSecurity admission refuse any pod in `namespace` that breaks the restricted profile."""
    kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted", "--overwrite")


@pytest.fixture
def chart_crds(control_plane) -> list[str]:
    """The chart's CRDs applied for real (Helm puts crds/ in before any template), and Established."""
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CHART / "crds"))
    names = [doc["metadata"]["name"] for path in sorted((CHART / "crds").glob("*.yaml"))
             for doc in yaml.safe_load_all(path.read_text()) if doc]
    kubectl("wait", "--for=condition=Established", "--timeout=60s", *(f"crd/{n}" for n in names))
    return names


def test_chart_passes_helm_lint_strict():
    result = subprocess.run([str(tool("helm")), "lint", "--strict", str(CHART)],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("values", [[], ["--set", "replicaCount=2"], ["--set", "platformAssignedIds=true"]],
                         ids=["all-namespaces", "two-replicas", "openshift"])
def test_rendered_chart_is_accepted_by_the_api_server(namespace, chart_crds, values):
    restrict(namespace)
    rendered = helm("template", namespace, str(CHART), "--namespace", namespace,
                    "--set", f"peering.name={namespace}", *values)
    result = kubectl("apply", "--dry-run=server", "-f", "-", input=rendered)
    assert "would violate PodSecurity" not in result.stderr, result.stderr
    # The `helm test` pod is checked by PodSecurity admission here (no Deployment pod is made in a dry run).
    assert f"pod/{namespace}-modelops-test-health created (server dry run)" in result.stdout
    assert f"deployment.apps/{namespace}-modelops created (server dry run)" in result.stdout


def test_rendered_chart_for_watched_namespaces_is_accepted_by_the_api_server(namespace, chart_crds):
    rendered = helm("template", namespace, str(CHART), "--namespace", namespace,
                    "--set", f"watchNamespaces={{{namespace}}}", "--set", f"peering.name={namespace}")
    result = kubectl("apply", "--dry-run=server", "-f", "-", input=rendered)
    assert f"role.rbac.authorization.k8s.io/{namespace}-modelops created (server dry run)" in result.stdout
    assert f"kopfpeering.kopf.dev/{namespace} created (server dry run)" in result.stdout


def leftovers(namespace: str, release: str) -> list[str]:
    selector = f"app.kubernetes.io/instance={release}"
    namespaced = kubectl("-n", namespace, "get", NAMESPACED_KINDS, "-l", selector, "-o", "name").stdout.split()
    cluster = kubectl("get", CLUSTER_KINDS, "-l", selector, "-o", "name").stdout.split()
    release_records = kubectl("-n", namespace, "get", "secrets", "-l", f"owner=helm,name={release}",
                              "-o", "name").stdout.split()
    return namespaced + cluster + release_records


def running_operator_pods(namespace: str, selector: str) -> list[str]:
    pods = kubectl_json("-n", namespace, "get", "pods", "-l", selector)["items"]
    return [p["metadata"]["name"] for p in pods if p["status"].get("phase") == "Running"]


def can_i(account: str, verb: str, resource: str) -> str:
    return kubectl("auth", "can-i", verb, resource, "-n", "default", f"--as={account}", check=False).stdout.strip()


def test_helm_install_runs_the_operator_and_uninstall_leaves_only_the_crds(namespace, chart_crds):
    release = namespace
    restrict(namespace)
    # --skip-crds: the fixture applied them with kubectl, as docs/install.md's upgrade path does.
    helm("install", release, str(CHART), "--namespace", namespace, "--skip-crds", "--set", "replicaCount=2",
         "--set", f"peering.name={release}", "--wait", f"--timeout={INSTALL_TIMEOUT}")

    deployment = kubectl_json("-n", namespace, "get", "deployment", f"{release}-modelops")
    assert deployment["status"].get("readyReplicas") == 2, deployment["status"]
    wait_for(lambda: len(running_operator_pods(namespace, f"app.kubernetes.io/instance={release}")) == 2,
             timeout=30, describe="two Running operator pods")
    assert kubectl("get", "clusterkopfpeering", release, check=False).returncode == 0
    account = f"system:serviceaccount:{namespace}:{release}-modelops"
    # RBAC is served from the authorizer's cache: a new binding takes a moment to apply.
    wait_for(lambda: can_i(account, "create", "jobs.batch") == "yes", timeout=30,
             describe=f"{account} may create Jobs in any namespace")
    assert can_i(account, "get", "secrets") == "no"

    helm("uninstall", release, "--namespace", namespace, "--wait", f"--timeout={INSTALL_TIMEOUT}")
    wait_for(lambda: not leftovers(namespace, release), timeout=60,
             describe=f"every object of release {release} to be gone", ignoring=(subprocess.CalledProcessError,))
    for crd in chart_crds:
        kubectl("get", "crd", crd)


def test_install_yaml_runs_the_operator_in_a_restricted_namespace(chart_crds):
    namespace = "modelops-system"
    assert kubectl("get", "namespace", namespace, check=False).returncode != 0, \
        f"namespace {namespace} already exists: something else installed modelops in this cluster"
    objects = [doc for doc in yaml.safe_load_all(INSTALL.read_text()) if doc]
    # --force-conflicts: the CRDs may already be owned by another field manager (Helm's, kubectl's).
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(INSTALL))
    try:
        wait_for(lambda: running_operator_pods(namespace, "app.kubernetes.io/instance=modelops"), timeout=60,
                 describe="the install.yaml operator pod Running (PodSecurity restricted admits it)")
        assert kubectl("get", "clusterkopfpeering", "modelops", check=False).returncode == 0
    finally:
        removable = [o for o in objects if o["kind"] != "CustomResourceDefinition"]
        kubectl("delete", "--ignore-not-found", "--wait=false", "-f", "-",
                input=yaml.safe_dump_all(removable), check=False)
        wait_for(lambda: kubectl("get", "namespace", namespace, check=False).returncode != 0, timeout=90,
                 describe=f"namespace {namespace} to be deleted")


def test_the_grafana_dashboard_and_pod_monitor_are_off_by_default_and_render_when_asked(namespace, chart_crds):
    assert "kind: PodMonitor" not in helm("template", namespace, str(CHART), "--namespace", namespace)
    rendered = helm("template", namespace, str(CHART), "--namespace", namespace,
                    "--set", "grafana.dashboard.enabled=true", "--set", "metrics.podMonitor.enabled=true",
                    "--api-versions", "monitoring.coreos.com/v1/PodMonitor")
    docs = {doc["kind"]: doc for doc in yaml.safe_load_all(rendered) if doc}
    dashboard = docs["ConfigMap"]
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    panels = json.loads(dashboard["data"]["modelops-serving.json"])["panels"]
    assert {"Live metric (labeled pairs in the window)", "Drift (largest PSI of a feature)", "Requests/s",
            "Latency p50 / p99", "Errors/s (5xx)"} <= {p["title"] for p in panels}
    kubectl("apply", "--dry-run=server", "-n", namespace, "-f", "-", input=yaml.safe_dump(dashboard))
    monitor = docs["PodMonitor"]["spec"]
    assert monitor["selector"]["matchLabels"]["app.kubernetes.io/component"] == "serving"
    assert monitor["podTargetLabels"] == ["modelops.io/model-deployment", "modelops.io/model-version"]
    missing = subprocess.run([str(tool("helm")), "template", namespace, str(CHART), "--set",
                              "metrics.podMonitor.enabled=true"], capture_output=True, text=True, check=False)
    assert missing.returncode != 0 and "PodMonitor API" in missing.stderr
