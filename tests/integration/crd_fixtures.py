"""The ModelDeployment CRD installed once per test session."""
import pytest

from tests.support.kube import REPO_ROOT, kubectl, wait_for

CRD_FILE = REPO_ROOT / "crds" / "modeldeployments.modelops.io.yaml"
# kopf's peering CRDs, as the chart installs them beside ours.
PEERING_CRDS = REPO_ROOT / "manifests" / "helm" / "modelops" / "crds" / "kopf-peerings.kopf.dev.yaml"


def apply_crds(path) -> None:
    """Apply CRDs and wait until they are Established (kubectl wait errors while status is still empty)."""
    names = kubectl("apply", "--server-side", "--force-conflicts", "-f", str(path), "-o", "name").stdout.split()
    for name in names:
        wait_for(lambda: kubectl("wait", "--for=condition=Established", "--timeout=10s", name,
                                 check=False).returncode == 0, 60, f"{name} to be Established")


@pytest.fixture(scope="session")
def crd(control_plane):
    """Installed at the start of the session, as a cluster has its CRDs long before an operator starts."""
    apply_crds(CRD_FILE)
    apply_crds(PEERING_CRDS)
    return CRD_FILE
