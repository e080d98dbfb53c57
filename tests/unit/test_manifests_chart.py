"""The Helm chart, rendered with the pinned helm and read back: one source for CRDs and RBAC, strict
values, documented values, and operator pods that meet the restricted Pod Security Standard."""

from __future__ import annotations

import json
import re
import subprocess
import tarfile
from pathlib import Path

import jsonschema
import pytest
import yaml

from tests.support.kube import tool

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART = REPO_ROOT / "manifests" / "helm" / "modelops"
SOURCE_CRDS = REPO_ROOT / "crds"
# Shipped only in the chart: kopf's own CRDs for peering, not a modelops API.
CHART_ONLY_CRDS = {"kopf-peerings.kopf.dev.yaml"}
CLUSTER_SCOPED = {"customresourcedefinitions", "namespaces", "clusterkopfpeerings"}
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Pod"}
RESTRICTED_VOLUME_TYPES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
                           "persistentVolumeClaim", "projected", "secret"}


class RenderError(Exception):
    """helm template refused the values (the message is helm's)."""


def render(*values: str, tests: bool = True) -> list[dict]:
    """The chart's objects as `helm template` renders them, with `--set` for each of `values`."""
    args = [str(tool("helm")), "template", "rel", str(CHART), "--namespace", "ops"]
    for value in values:
        args += ["--set", value]
    if not tests:
        args.append("--skip-tests")
    result = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    if result.returncode != 0:
        raise RenderError(result.stderr)
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def by_kind(objects: list[dict], kind: str) -> list[dict]:
    return [o for o in objects if o["kind"] == kind]


def pod_spec(workload: dict) -> dict:
    spec = workload["spec"]
    if workload["kind"] == "Pod":
        return spec
    if workload["kind"] == "CronJob":
        return spec["jobTemplate"]["spec"]["template"]["spec"]
    return spec["template"]["spec"]


def restricted_violations(spec: dict) -> list[str]:
    """What in a pod spec breaks the restricted Pod Security Standard (plus our read-only root filesystem)."""
    found = []
    pod_sc = spec.get("securityContext", {})
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(flag):
            found.append(f"pod sets {flag}")
    for volume in spec.get("volumes", []):
        kinds = set(volume) - {"name"}
        if not kinds <= RESTRICTED_VOLUME_TYPES:
            found.append(f"volume {volume['name']} is of type {sorted(kinds)}")
    for container in spec.get("containers", []) + spec.get("initContainers", []):
        name, sc = container["name"], container.get("securityContext", {})
        if not (sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is True):
            found.append(f"{name}: runAsNonRoot is not true")
        if sc.get("runAsUser", pod_sc.get("runAsUser")) == 0:
            found.append(f"{name}: runs as uid 0")
        seccomp = sc.get("seccompProfile", pod_sc.get("seccompProfile", {})).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            found.append(f"{name}: seccompProfile is {seccomp!r}")
        if sc.get("allowPrivilegeEscalation") is not False:
            found.append(f"{name}: allowPrivilegeEscalation is not false")
        if sc.get("privileged"):
            found.append(f"{name}: privileged")
        capabilities = sc.get("capabilities", {})
        if "ALL" not in capabilities.get("drop", []):
            found.append(f"{name}: capabilities.drop lacks ALL")
        if set(capabilities.get("add", [])) - {"NET_BIND_SERVICE"}:
            found.append(f"{name}: adds capabilities {capabilities['add']}")
        if sc.get("readOnlyRootFilesystem") is not True:
            found.append(f"{name}: root filesystem is writable")
    return found


def test_chart_crds_are_links_to_the_crds_folder_plus_kopf_peering():
    source = sorted(SOURCE_CRDS.glob("*.yaml"))
    assert source, "crds/ holds no CRD"
    for crd in source:
        shipped = CHART / "crds" / crd.name
        assert shipped.is_symlink() and shipped.resolve() == crd.resolve(), \
            f"{shipped.relative_to(REPO_ROOT)} must be a symlink to crds/{crd.name}, the one source"
    chart_only = {p.name for p in (CHART / "crds").glob("*.yaml")} - {p.name for p in source}
    assert chart_only == CHART_ONLY_CRDS


def test_packaged_chart_carries_the_crd_content_not_a_link(tmp_path):
    subprocess.run([str(tool("helm")), "package", str(CHART), "--destination", str(tmp_path)],
                   capture_output=True, text=True, timeout=60, check=True)
    (package,) = tmp_path.glob("modelops-*.tgz")
    with tarfile.open(package) as archive:
        for crd in SOURCE_CRDS.glob("*.yaml"):
            member = archive.getmember(f"modelops/crds/{crd.name}")
            assert member.isfile() and archive.extractfile(member).read() == crd.read_bytes()


def test_kopf_peering_crds_serve_the_group_kopf_looks_for():
    docs = list(yaml.safe_load_all((CHART / "crds" / "kopf-peerings.kopf.dev.yaml").read_text()))
    assert {(d["spec"]["names"]["plural"], d["spec"]["scope"]) for d in docs} == {
        ("kopfpeerings", "Namespaced"), ("clusterkopfpeerings", "Cluster")}
    assert all(d["spec"]["group"] == "kopf.dev" and d["spec"]["versions"][0]["name"] == "v1" for d in docs)


def load_schema() -> dict:
    return json.loads((CHART / "values.schema.json").read_text())


def load_values() -> dict:
    return yaml.safe_load((CHART / "values.yaml").read_text())


def test_values_yaml_satisfies_its_schema():
    jsonschema.validate(load_values(), load_schema())


@pytest.mark.parametrize("change, expected", [
    ({"replicas": 2}, "Additional properties"),
    ({"image": {"repository": "x", "tag": "", "pullPolicy": "Sometimes"}}, "Sometimes"),
    ({"watchNamespaces": ["Not_A_Namespace"]}, "does not match"),
    ({"peering": {"enabled": True, "name": "modelops", "lease": 5}}, "Additional properties"),
    ({"logLevel": "verbose"}, "verbose"),
    ({"logLevel": "INFO"}, "INFO"),
])
def test_schema_refuses_mistyped_values(change, expected):
    with pytest.raises(jsonschema.ValidationError, match=expected):
        jsonschema.validate({**load_values(), **change}, load_schema())


def schema_leaves(schema: dict, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    leaves = []
    for key, sub in schema.get("properties", {}).items():
        path = prefix + (key,)
        leaves += schema_leaves(sub, path) if "properties" in sub else [path]
    return leaves


def commented_keys(text: str) -> dict[tuple[str, ...], bool]:
    """Each key path of a block-style YAML file, and whether a comment line directly precedes it."""
    result, stack, previous = {}, [], ""
    for line in text.splitlines():
        match = re.match(r"^(\s*)([A-Za-z][\w.-]*):", line)
        if match:
            indent = len(match[1])
            stack = [(i, k) for i, k in stack if i < indent] + [(indent, match[2])]
            result[tuple(k for _, k in stack)] = previous.lstrip().startswith("#")
        if line.strip():
            previous = line
    return result


def test_every_value_has_a_comment_and_a_schema_entry():
    documented = commented_keys((CHART / "values.yaml").read_text())
    leaves = schema_leaves(load_schema())
    missing = [".".join(p) for p in leaves if p not in documented]
    undocumented = [".".join(p) for p in leaves if p in documented and not documented[p]]
    assert not missing, f"in values.schema.json but not in values.yaml: {missing}"
    assert not undocumented, f"values without a comment: {undocumented}"


def rules_file() -> list[dict]:
    return yaml.safe_load((CHART / "files" / "operator-rules.yaml").read_text())


def grants(rules: list[dict]) -> set[tuple[str, str, str]]:
    return {(g, r, v) for rule in rules for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]}


def test_cluster_wide_install_grants_exactly_the_rules_file():
    objects = render()
    (role,) = by_kind(objects, "ClusterRole")
    assert grants(role["rules"]) == grants(rules_file())
    assert not by_kind(objects, "Role")
    (binding,) = by_kind(objects, "ClusterRoleBinding")
    (account,) = by_kind(objects, "ServiceAccount")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account["metadata"]["name"], "namespace": "ops"}]


def test_namespaced_install_grants_namespaced_rules_per_namespace_and_only_cluster_reads_cluster_wide():
    objects = render("watchNamespaces={ml,team-b}")
    (cluster_role,) = by_kind(objects, "ClusterRole")
    roles = {r["metadata"]["namespace"]: grants(r["rules"]) for r in by_kind(objects, "Role")}
    assert set(roles) == {"ml", "team-b"}
    assert {r for _, r, _ in grants(cluster_role["rules"])} <= CLUSTER_SCOPED
    for namespace, granted in roles.items():
        assert not {r for _, r, _ in granted} & CLUSTER_SCOPED, namespace
        assert granted | grants(cluster_role["rules"]) == grants(rules_file())
    assert {b["metadata"]["namespace"] for b in by_kind(objects, "RoleBinding")} == {"ml", "team-b"}


def test_peering_object_matches_the_watch_scope_and_goes_away_with_peering():
    (cluster_peering,) = by_kind(render(), "ClusterKopfPeering")
    assert cluster_peering["metadata"]["name"] == "modelops"
    namespaced = by_kind(render("watchNamespaces={ml,team-b}", "peering.name=ops-peers"), "KopfPeering")
    assert {(p["metadata"]["namespace"], p["metadata"]["name"]) for p in namespaced} == {
        ("ml", "ops-peers"), ("team-b", "ops-peers")}
    standalone = render("peering.enabled=false")
    assert not by_kind(standalone, "ClusterKopfPeering")
    assert not any(g == "kopf.dev" for g, _, _ in grants(by_kind(standalone, "ClusterRole")[0]["rules"]))
    args = by_kind(standalone, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert not any(a.startswith("--peering") for a in args), "no peering name: the operator runs standalone"


def test_more_than_one_replica_requires_peering():
    with pytest.raises(RenderError, match="replicaCount above 1 needs peering.enabled"):
        render("replicaCount=2", "peering.enabled=false")


# What docs/install.md tells OpenShift users to set.
OPENSHIFT = ("platformAssignedIds=true",)


@pytest.mark.parametrize("values", [(), ("watchNamespaces={ml}", "replicaCount=2"), OPENSHIFT],
                         ids=["defaults", "namespaced-ha", "openshift"])
def test_every_rendered_pod_meets_the_restricted_profile(values):
    workloads = [o for o in render(*values) if o["kind"] in WORKLOAD_KINDS]
    assert {w["kind"] for w in workloads} == {"Deployment", "Pod"}  # the operator and the `helm test` pod
    for workload in workloads:
        spec = pod_spec(workload)
        assert restricted_violations(spec) == [], workload["metadata"]["name"]


def test_restricted_check_catches_a_weakened_security_context():
    weakened = render("securityContext.allowPrivilegeEscalation=true", "securityContext.runAsNonRoot=false",
                      "podSecurityContext.runAsNonRoot=false")
    spec = pod_spec(by_kind(weakened, "Deployment")[0])
    assert restricted_violations(spec) == ["operator: runAsNonRoot is not true",
                                           "operator: allowPrivilegeEscalation is not false"]


def test_operator_pod_probes_health_endpoints_and_gets_its_settings():
    (deployment,) = by_kind(render("watchNamespaces={ml,team-b}", "logLevel=debug"), "Deployment")
    spec = pod_spec(deployment)
    (container,) = spec["containers"]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {"health": 8080, "metrics": 9090}
    assert container["args"] == ["--health-port=8080", "--metrics-port=9090", "--peering=modelops",
                                 "--namespace=ml", "--namespace=team-b"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["MODELOPS_LOG_LEVEL"] == "debug"
    assert env["MODELOPS_TRAINING_IMAGE"] == load_values()["defaults"]["trainingImage"]
    assert env["MODELOPS_SERVING_IMAGE"] == load_values()["defaults"]["servingImage"]
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]


def test_platform_assigned_ids_leave_every_uid_and_gid_to_the_platform():
    """OpenShift's restricted-v2 SCC refuses fixed ids outside the namespace's range; `{}` in the defaults map
    would not do it, as Helm merges a map into the chart's defaults instead of replacing them."""
    objects = render(*OPENSHIFT)
    for workload in by_kind(objects, "Deployment") + by_kind(objects, "Pod"):
        pod_sc = pod_spec(workload)["securityContext"]
        assert not {"runAsUser", "runAsGroup", "fsGroup"} & set(pod_sc), workload["metadata"]["name"]
        assert pod_sc["runAsNonRoot"] is True
    (container,) = pod_spec(by_kind(objects, "Deployment")[0])["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert json.loads(env["MODELOPS_POD_SECURITY_CONTEXT"]) == {}


def test_helm_test_pod_checks_healthz_through_the_operator_service():
    objects = render()
    (service,) = by_kind(objects, "Service")
    (test_pod,) = by_kind(objects, "Pod")
    assert test_pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    url = test_pod["spec"]["containers"][0]["command"][-1]
    assert url == f"http://{service['metadata']['name']}.ops.svc:8080/healthz"
    assert {"name": "http-health", "port": 8080, "targetPort": "health", "protocol": "TCP"} in service["spec"]["ports"]
    selector = service["spec"]["selector"]
    operator_labels = by_kind(objects, "Deployment")[0]["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= operator_labels.items()
    assert not selector.items() <= test_pod["metadata"]["labels"].items()


def test_metrics_port_leaves_the_service_when_metrics_are_off():
    (service,) = by_kind(render("metrics.enabled=false"), "Service")
    assert [p["name"] for p in service["spec"]["ports"]] == ["http-health"]


def test_service_monitor_needs_the_prometheus_operator_api():
    with pytest.raises(RenderError, match="needs the monitoring.coreos.com/v1 ServiceMonitor API"):
        render("metrics.serviceMonitor.enabled=true")


def test_every_object_carries_the_recommended_labels():
    for obj in render("watchNamespaces={ml}"):
        labels = obj["metadata"].get("labels", {})
        missing = {"app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/component",
                   "app.kubernetes.io/part-of", "app.kubernetes.io/managed-by",
                   "app.kubernetes.io/version"} - set(labels)
        assert not missing, f"{obj['kind']}/{obj['metadata']['name']} lacks {sorted(missing)}"


@pytest.mark.parametrize("values, peering", [(("watchNamespaces={ml,team-b}", "logLevel=debug",
                                               "imagePolicy.allowedImages={r.example/ml/,ghcr.io/x/}"), "modelops"),
                                             (("peering.enabled=false",), "")], ids=["namespaced", "standalone"])
def test_operator_command_line_parses_the_chart_settings(monkeypatch, values, peering):
    from modelops_operator.main import parse_args

    (container,) = pod_spec(by_kind(render(*values), "Deployment")[0])["containers"]
    for var in container["env"]:
        if "value" in var:
            monkeypatch.setenv(var["name"], var["value"])
    args = parse_args(container["args"])
    expected = load_values()
    assert (args.health_port, args.metrics_port, args.peering) == (8080, 9090, peering)
    assert args.namespace == (["ml", "team-b"] if peering else [])
    assert args.log_level == ("debug" if peering else expected["logLevel"])
    assert (args.training_image, args.serving_image) == (expected["defaults"]["trainingImage"],
                                                         expected["defaults"]["servingImage"])
    assert (args.training_gpu_image, args.cluster_domain) == (expected["defaults"]["trainingGpuImage"],
                                                              expected["defaults"]["clusterDomain"])
    assert args.pod_security_context == expected["defaults"]["podSecurityContext"]
    assert args.allowed_images == ("r.example/ml/,ghcr.io/x/" if peering else "")


def test_install_guide_values_table_lists_every_value():
    guide = (REPO_ROOT / "docs" / "install.md").read_text()
    table = set(re.findall(r"^\| `([\w.]+)` \|", guide, flags=re.MULTILINE))
    leaves = {".".join(p) for p in schema_leaves(load_schema())}
    assert table == leaves, f"missing from docs/install.md: {sorted(leaves - table)}; unknown: {sorted(table - leaves)}"
