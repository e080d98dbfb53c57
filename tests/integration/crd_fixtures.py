"""The ModelDeployment CRD installed once per test session (imported by the tests that need it)."""
import pytest

from tests.support.kube import REPO_ROOT, kubectl

CRD_FILE = REPO_ROOT / "crds" / "modeldeployments.modelops.io.yaml"


@pytest.fixture(scope="session")
def crd(control_plane):
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRD_FILE))
    kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd/modeldeployments.modelops.io")
    return CRD_FILE
