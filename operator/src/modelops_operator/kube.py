"""The operator's only door to the Kubernetes API (everything else is pure).

Objects go in and come out as plain dicts. Mutable children are written with server-side
apply (create, adopt and update in one idempotent call); Jobs, whose pod template is
immutable, are created once and adopted as they are.
"""
from __future__ import annotations

import json
import logging
from typing import Any, Mapping

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from . import constants as c
from .ownership import adoptable

log = logging.getLogger(__name__)

# kind -> (API prefix, plural). The RBAC rules in the chart grant exactly these.
RESOURCES: dict[str, tuple[str, str]] = {
    "ConfigMap": ("/api/v1", "configmaps"),
    "Service": ("/api/v1", "services"),
    "Pod": ("/api/v1", "pods"),
    "PersistentVolumeClaim": ("/api/v1", "persistentvolumeclaims"),
    "Job": ("/apis/batch/v1", "jobs"),
    "Deployment": ("/apis/apps/v1", "deployments"),
    "HorizontalPodAutoscaler": ("/apis/autoscaling/v2", "horizontalpodautoscalers"),
    "PodDisruptionBudget": ("/apis/policy/v1", "poddisruptionbudgets"),
    c.KIND: (f"/apis/{c.API_VERSION}", c.PLURAL),
}


CONNECTIONS = 32


class ConflictError(RuntimeError):
    """A child's name is taken by an object this ModelDeployment does not own."""


class Kube:
    """A thin, dict-in dict-out client over one ApiClient."""

    def __init__(self, api: client.ApiClient):
        self.api = api

    @classmethod
    def connect(cls) -> "Kube":
        configuration = client.Configuration()
        try:
            config.load_incluster_config(client_configuration=configuration)
        except config.ConfigException:
            config.load_kube_config(client_configuration=configuration)
        # One connection per kopf worker thread, or requests queue for a free one.
        configuration.connection_pool_maxsize = CONNECTIONS
        return cls(client.ApiClient(configuration))

    def _call(self, method: str, path: str, *, body: Any = None, query: list | None = None,
              content_type: str = "application/json") -> dict[str, Any]:
        response = self.api.call_api(
            path, method, query_params=query or [], body=body,
            header_params={"Accept": "application/json", "Content-Type": content_type},
            auth_settings=["BearerToken"], _preload_content=False, _return_http_data_only=True,
            _request_timeout=30)
        data = response.data
        return json.loads(data) if data else {}

    @staticmethod
    def _path(kind: str, namespace: str, name: str | None = None, sub: str | None = None) -> str:
        prefix, plural = RESOURCES[kind]
        path = f"{prefix}/namespaces/{namespace}/{plural}"
        if name:
            path += f"/{name}"
        if sub:
            path += f"/{sub}"
        return path

    def read(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return self._call("GET", self._path(kind, namespace, name))
        except ApiException as e:
            if e.status == 404:
                return None
            raise

    def list(self, kind: str, namespace: str, label_selector: str) -> list[dict[str, Any]]:
        result = self._call("GET", self._path(kind, namespace), query=[("labelSelector", label_selector)])
        return result.get("items") or []

    def apply(self, obj: Mapping[str, Any], manager: str = c.FIELD_MANAGER) -> dict[str, Any]:
        """Server-side apply: creates, adopts or updates the fields this operator manages."""
        meta = obj["metadata"]
        return self._call("PATCH", self._path(obj["kind"], meta["namespace"], meta["name"]), body=obj,
                          query=[("fieldManager", manager), ("force", "true")],
                          content_type="application/apply-patch+yaml")

    def create_or_adopt(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Create an immutable object, or return the existing one when this owner already made it."""
        meta = obj["metadata"]
        try:
            return self._call("POST", self._path(obj["kind"], meta["namespace"]), body=obj)
        except ApiException as e:
            if e.status != 409:
                raise
        existing = self.read(obj["kind"], meta["namespace"], meta["name"])
        if existing is None:  # deleted between our POST and GET; the next reconcile creates it
            return {}
        if not adoptable(existing, obj):
            raise ConflictError(f"{obj['kind']} {meta['name']} exists and is not owned by this ModelDeployment")
        return existing

    def json_patch(self, kind: str, namespace: str, name: str, patch: list[dict[str, Any]]) -> dict[str, Any]:
        """A JSON patch; one guarded by a `test` op that fails raises 409, as any stale write does.

        The API server answers a failed `test` with 422: treated as an error, it would post
        ReconcileFailed and back off for what is only a resource that moved on.
        """
        try:
            return self._call("PATCH", self._path(kind, namespace, name), body=patch,
                              content_type="application/json-patch+json")
        except ApiException as e:
            if e.status == 422 and any(op.get("op") == "test" for op in patch):
                raise ApiException(status=409, reason=f"Conflict: {api_message(e)}") from e
            raise

    def delete(self, kind: str, namespace: str, name: str, uid: str | None = None) -> bool:
        """Delete by name; with `uid`, only that very object (409 from the precondition: it was replaced)."""
        options: dict[str, Any] = {"propagationPolicy": "Background"}
        if uid:
            options["preconditions"] = {"uid": uid}
        try:
            self._call("DELETE", self._path(kind, namespace, name), body=options)
            return True
        except ApiException as e:
            if e.status == 404 or (uid and e.status == 409):
                return False
            raise

    def replace_status(self, body: Mapping[str, Any], status: Mapping[str, Any]) -> dict[str, Any]:
        """Write the whole status with optimistic concurrency (409 when the object moved on)."""
        meta = body["metadata"]
        obj = {"apiVersion": c.API_VERSION, "kind": c.KIND, "metadata": meta, "spec": body.get("spec"),
               "status": status}
        return self._call("PUT", self._path(c.KIND, meta["namespace"], meta["name"], "status"), body=obj)

    def warning_events(self, namespace: str, kind: str, name: str) -> list[dict[str, Any]]:
        """The Warning events about one object (why a Job creates no pod, why a pod does not start)."""
        selector = f"involvedObject.kind={kind},involvedObject.name={name},type=Warning"
        result = self._call("GET", f"/api/v1/namespaces/{namespace}/events", query=[("fieldSelector", selector)])
        return result.get("items") or []

    def pod_proxy_get(self, namespace: str, pod: str, port: int, path: str) -> bytes:
        """GET a pod's own HTTP endpoint through the API server (RBAC: get pods/proxy), whatever the
        NetworkPolicy between the operator and the pod; short timeouts, one slow replica must not hold a pass."""
        response = client.CoreV1Api(self.api).connect_get_namespaced_pod_proxy_with_path(
            f"{pod}:{port}", namespace, path, _preload_content=False, _request_timeout=(3, 5))
        return response.data

    def create_event(self, namespace: str, event: Mapping[str, Any]) -> dict[str, Any]:
        return self._call("POST", f"/api/v1/namespaces/{namespace}/events", body=event)


def api_message(error: ApiException) -> str:
    """The API server's one-line explanation in an error's body ('' when there is none)."""
    try:
        return json.loads(error.body).get("message", "")[:500]
    except (TypeError, ValueError):
        return ""
