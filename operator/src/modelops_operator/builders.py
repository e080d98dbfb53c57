"""Pure functions that build the Kubernetes objects of one ModelDeployment from its spec.

No I/O: each returns a plain dict. Names are deterministic (a restarted operator finds the
objects it made instead of making twins), every object carries the app.kubernetes.io labels
and an owner reference to the ModelDeployment, and every pod meets the "restricted" Pod
Security profile.
"""
from __future__ import annotations

import hashlib
import json
import math
import posixpath
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from modelops_contracts import jobconfig
from modelops_contracts.feedback import feedback_dir
from modelops_contracts.report import EXIT_CODE_BY_REASON, PERMANENT_EXIT_CODES

from . import constants as c
from . import podsecurity
from .spec import Spec


@dataclass(frozen=True)
class Owner:
    """The ModelDeployment that owns the children: enough for names, labels and owner references."""
    namespace: str
    name: str
    uid: str

    def reference(self) -> dict[str, Any]:
        return {"apiVersion": c.API_VERSION, "kind": c.KIND, "name": self.name, "uid": self.uid,
                "controller": True, "blockOwnerDeletion": True}


@dataclass(frozen=True)
class Images:
    """The operator's defaults for what the children run: images, the identity pods run as, the DNS domain."""
    training: str = c.DEFAULT_TRAINING_IMAGE
    serving: str = c.DEFAULT_SERVING_IMAGE
    pod_security: Mapping[str, Any] = field(default_factory=lambda: dict(podsecurity.DEFAULTS))
    training_gpu: str = c.DEFAULT_TRAINING_GPU_IMAGE
    cluster_domain: str = c.DEFAULT_CLUSTER_DOMAIN
    allowed_images: tuple[str, ...] = ()   # image prefixes a spec may name (imagepolicy); empty: any

    def for_training(self, spec: Spec) -> str:
        """The spec's image, else the CUDA variant when the pods get GPUs (without CUDA they train on the CPU)."""
        return spec.training_image or (self.training_gpu if spec.gpus_per_worker else self.training)


# --- names -------------------------------------------------------------------------------

def training_job_name(owner: Owner, version: str, attempt: int) -> str:
    return f"{owner.name}-train-{version}-a{attempt}"


def compression_job_name(owner: Owner, version: str) -> str:
    return f"{owner.name}-compress-{version}"


def config_map_name(job_name: str) -> str:
    return f"{job_name}-config"


def workers_service_name(job_name: str) -> str:
    return f"{job_name}-workers"


def serving_name(owner: Owner) -> str:
    return owner.name


def attempt_seed(owner: Owner, version: str, attempt: int) -> int:
    """A different, reproducible seed per attempt: a retrain explores, a restart repeats."""
    digest = hashlib.sha256(f"{owner.namespace}/{owner.name}/{version}/{attempt}".encode()).hexdigest()
    return int(digest[:8], 16) % (2 ** 31)


def endpoint(owner: Owner, cluster_domain: str = c.DEFAULT_CLUSTER_DOMAIN) -> str:
    return f"http://{serving_name(owner)}.{owner.namespace}.svc.{cluster_domain}/v1/models/{owner.name}:predict"


# --- shared pieces -----------------------------------------------------------------------

def labels(owner: Owner, component: str, **extra: str) -> dict[str, str]:
    out = {"app.kubernetes.io/name": "modelops", "app.kubernetes.io/instance": owner.name,
           "app.kubernetes.io/component": component, "app.kubernetes.io/part-of": "modelops",
           c.LABEL_MANAGED_BY: c.MANAGED_BY, c.LABEL_MODEL: owner.name}
    out.update(extra)
    return out


def metadata(owner: Owner, name: str, component: str, **extra_labels: str) -> dict[str, Any]:
    """Object metadata; the owner's uid is a label here only, never on pod templates (no rollout)."""
    return {"name": name, "namespace": owner.namespace,
            "labels": labels(owner, component, **{c.LABEL_OWNER_UID: owner.uid}, **extra_labels),
            "ownerReferences": [owner.reference()]}


RESTRICTED_CONTAINER_SECURITY = {
    "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"},
}
# The small helpers (model fetch, clean-up): requests and limits, or a namespace with a ResourceQuota refuses them.
HELPER_RESOURCES = {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}}
# A Job whose pods never start (an image that cannot be pulled, a node that never comes) stays active
# forever unless it has a deadline; training.activeDeadlineSeconds overrides the training one.
DEFAULT_TRAINING_DEADLINE_S = 24 * 3600
DEFAULT_COMPRESSION_DEADLINE_S = 2 * 3600


def pod_security(spec: Spec, images: Images) -> dict[str, Any]:
    return podsecurity.pod_security_context(images.pod_security, spec.pod_security_context)


def _claim_of(uri: str) -> tuple[str, str] | None:
    if not uri.startswith("pvc://"):
        return None
    claim, _, path = uri[len("pvc://"):].partition("/")
    return claim, path.strip("/")


def model_dir(spec: Spec, owner: Owner, uid: str | None) -> str:
    """The directory of this resource's versions, relative to the storage claim's root: the one
    directory its pods mount (`<path>/<namespace>/<name>/<uid>`; `.../<name>` for pre-uid versions)."""
    return str(jobconfig.version_dir(spec.storage_subpath, owner.namespace, owner.name, "", uid)).rstrip("/")


def _data_dir(path: str) -> str:
    """The directory holding the data (a file, a directory of images or a glob of shards), relative to its claim."""
    fixed = re.split(r"[*?\[]", path, maxsplit=1)[0]
    return posixpath.dirname(fixed.rstrip("/") if fixed == path else fixed)


def _claim_volumes(spec: Spec, storage_dir: str, *, read_only_storage: bool) -> tuple[list[dict], list[dict]]:
    """Volumes and mounts: the storage claim's `storage_dir` only (another model's versions stay out of
    reach of user code), and the data read-only, each at the path it has under PVC_ROOT/<claim>, so the
    paths in the job config resolve as if the whole claim were mounted."""
    volumes = [{"name": "pvc-0", "persistentVolumeClaim": {"claimName": spec.storage_claim,
                                                           "readOnly": read_only_storage}}]
    mounts = [_mount("pvc-0", spec.storage_claim, storage_dir, read_only_storage)]
    data = _claim_of(spec.data_uri)
    if data and data[0] == spec.storage_claim:
        mounts.append(_mount("pvc-0", data[0], _data_dir(data[1]), True))
    elif data:   # another claim of the namespace: the data's own, read-only
        volumes.append({"name": "pvc-1", "persistentVolumeClaim": {"claimName": data[0], "readOnly": True}})
        mounts.append(_mount("pvc-1", data[0], "", True))
    return volumes, mounts


def _mount(volume: str, claim: str, sub_path: str, read_only: bool) -> dict[str, Any]:
    mount = {"name": volume, "mountPath": f"{c.PVC_ROOT}/{claim}" + (f"/{sub_path}" if sub_path else ""),
             "readOnly": read_only}
    if sub_path:
        mount["subPath"] = sub_path
    return mount


# Makes a model's directory as the pod's user before the stage container mounts it by subPath: the
# kubelet would make it as root, which the pods cannot write on storage without fsGroup (hostPath, NFS).
PREPARE_SCRIPT = ("import os, sys\ntry:\n    os.makedirs(sys.argv[1], exist_ok=True)\nexcept OSError as e:\n"
                  "    print(f'storage: cannot create {sys.argv[1]} as uid {os.getuid()} gid {os.getgid()}: "
                  "{e.strerror}')\n    sys.exit(int(sys.argv[2]))\n")
PREPARE_CONTAINER = "prepare-storage"


def prepare_storage_container(spec: Spec, images: Images, storage_dir: str) -> dict[str, Any]:
    """Runs the operator's serving image (never the spec's), the only container that sees the storage root."""
    root = f"{c.PVC_ROOT}/{spec.storage_claim}"
    return {"name": PREPARE_CONTAINER, "image": images.serving,
            "command": ["python", "-c", PREPARE_SCRIPT, f"{root}/{storage_dir}",
                        str(EXIT_CODE_BY_REASON["StorageError"])],
            "volumeMounts": [{"name": "pvc-0", "mountPath": root, "readOnly": False}], "resources": HELPER_RESOURCES,
            "securityContext": RESTRICTED_CONTAINER_SECURITY, "terminationMessagePolicy": "FallbackToLogsOnError"}


def storage_root(spec: Spec) -> str:
    """The storage root as pods see it (pvc://claim/path -> /mnt/pvc/claim/path)."""
    sub = spec.storage_subpath
    return f"{c.PVC_ROOT}/{spec.storage_claim}" + (f"/{sub}" if sub else "")


def version_path(spec: Spec, owner: Owner, version: str, uid: str | None) -> str:
    return str(jobconfig.version_dir(storage_root(spec), owner.namespace, owner.name, version, uid))


def artifact_path(owner: Owner, version: str) -> str:
    """Where a version lives under storage.uri: the resource's uid keeps same-named resources apart."""
    return str(jobconfig.version_dir("", owner.namespace, owner.name, version, owner.uid))


# --- training and compression ------------------------------------------------------------

def build_job_config(spec: Spec, owner: Owner, stage: str, version: str, attempt: int,
                     uid: str | None = None, feedback_before_ms: int | None = None) -> jobconfig.JobConfig:
    """The contract the training image reads, derived from the spec (never the reverse).

    `uid`: the owner's uid when the version lives in the resource's own directory (see artifact_path).
    `feedback_before_ms`: train on the collected feedback too, the segments written before this unix time in ms
    (a version started by a quality drop, spec.monitoring): one cutoff, so every worker reads the same rows.
    """
    params = dict(spec.model_params or {})
    return jobconfig.JobConfig(
        stage=stage,
        model=jobconfig.ModelRef(namespace=owner.namespace, name=owner.name, version=version,
                                 template=spec.template, custom_module=spec.custom_module, params=params,
                                 uid=uid),
        data=jobconfig.DataSpec(uri=spec.data_uri, target=spec.target,
                                features=tuple(spec.features) if spec.features else None,
                                validation_split=spec.validation_split, shuffle_seed=spec.shuffle_seed,
                                s3_endpoint=spec.s3_endpoint, feature_spec=spec.feature_spec),
        training=jobconfig.TrainingSpec(strategy=spec.strategy, workers=spec.workers,
                                        gpus_per_worker=spec.gpus_per_worker, epochs=spec.epochs,
                                        batch_size=spec.batch_size, learning_rate=spec.learning_rate,
                                        seed=attempt_seed(owner, version, attempt), attempt=attempt,
                                        precision=spec.precision, jit_compile=spec.jit_compile),
        metric=spec.metric,
        compression=jobconfig.CompressionSpec(method=spec.compression_method,
                                              pruning_sparsity=spec.pruning_sparsity if spec.pruning_enabled else 0.0),
        storage_root=storage_root(spec),
        feedback=jobconfig.FeedbackSource(
            directory=str(feedback_dir(storage_root(spec), owner.namespace, owner.name, uid)),
            max_share=spec.feedback_max_share, written_before=feedback_before_ms)
        if feedback_before_ms is not None and stage == "train" else None,
    )


def build_config_map(owner: Owner, job_name: str, config: jobconfig.JobConfig, component: str,
                     spec_hash: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": metadata(owner, config_map_name(job_name), component,
                                 **{c.LABEL_VERSION: config.model.version, c.LABEL_SPEC_HASH: spec_hash}),
            "data": {"job.json": config.to_json()}}


def with_identity(pod_spec: dict[str, Any], spec: Spec, *, service_account: str | None, env: list | None,
                  env_from: list | None) -> dict[str, Any]:
    """Who a pod is (its ServiceAccount, for cloud identities such as EKS IRSA or Pod Identity), the
    user's extra environment (after ours: the CRD refuses names that would shadow it) and pull secrets."""
    container = pod_spec["containers"][0]
    if env:
        container["env"] = list(container.get("env") or []) + json.loads(json.dumps(env))
    if env_from:
        container["envFrom"] = json.loads(json.dumps(env_from))
    if service_account:
        pod_spec["serviceAccountName"] = service_account
    if spec.image_pull_secrets:
        pod_spec["imagePullSecrets"] = [{"name": s["name"]} for s in spec.image_pull_secrets]
    return pod_spec


def _gpu_toleration() -> dict[str, str]:
    return {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}


def _job(spec: Spec, owner: Owner, images: Images, *, name: str, component: str, version: str, attempt: int,
         image: str, command: list[str], workers: int, gpus: int, env: list[dict], deadline_s: int,
         uid: str | None) -> dict[str, Any]:
    pod_labels = labels(owner, component, **{c.LABEL_VERSION: version, c.LABEL_ATTEMPT: str(attempt)})
    storage_dir = model_dir(spec, owner, uid)
    volumes, mounts = _claim_volumes(spec, storage_dir, read_only_storage=False)
    volumes += [{"name": "config", "configMap": {"name": config_map_name(name)}},
                {"name": "tmp", "emptyDir": {}}]
    mounts += [{"name": "config", "mountPath": c.CONFIG_MOUNT, "readOnly": True},
               {"name": "tmp", "mountPath": "/tmp"}]
    container = "train" if component == "training" else "compress"
    resources = json.loads(json.dumps(spec.training_resources or {}))
    if gpus:
        resources.setdefault("limits", {})["nvidia.com/gpu"] = gpus
    tolerations = list(spec.tolerations or [])
    # Compression inherits training's placement (often a GPU pool's nodeSelector), so it needs the
    # GPU taint's toleration whenever training asked for GPUs, even though it requests none itself.
    if spec.gpus_per_worker and _gpu_toleration() not in tolerations:
        tolerations.append(_gpu_toleration())
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "securityContext": pod_security(spec, images),
        "initContainers": [prepare_storage_container(spec, images, storage_dir)],
        "containers": [{
            "name": container,
            "image": image,
            "command": command,
            "args": ["--config", f"{c.CONFIG_MOUNT}/job.json"],
            "env": [{"name": "MODELOPS_PVC_ROOT", "value": c.PVC_ROOT}, {"name": "HOME", "value": "/tmp"}] + env,
            "resources": resources,
            "volumeMounts": mounts,
            "securityContext": RESTRICTED_CONTAINER_SECURITY,
            # The stage report travels as the termination message; a crash without one still says why.
            "terminationMessagePath": jobconfig.DEFAULT_REPORT_PATH,
            "terminationMessagePolicy": "FallbackToLogsOnError",
        }],
        "volumes": volumes,
    }
    for key, value in (("nodeSelector", spec.node_selector), ("affinity", spec.affinity),
                       ("priorityClassName", spec.priority_class_name)):
        if value:
            pod_spec[key] = value
    if tolerations:
        pod_spec["tolerations"] = tolerations
    with_identity(pod_spec, spec, service_account=spec.training_service_account, env=spec.training_env,
                  env_from=spec.training_env_from)
    job_spec: dict[str, Any] = {
        "backoffLimit": spec.backoff_limit,
        "completions": workers,
        "parallelism": workers,
        "activeDeadlineSeconds": deadline_s,
        "podFailurePolicy": pod_failure_policy(container, PREPARE_CONTAINER),
        "template": {"metadata": {"labels": pod_labels, "annotations": dict(spec.pod_annotations or {})},
                     "spec": pod_spec},
    }
    if workers > 1:
        job_spec["completionMode"] = "Indexed"
        pod_spec["subdomain"] = workers_service_name(name)
    return queued(spec, {"apiVersion": "batch/v1", "kind": "Job", "spec": job_spec, "metadata": metadata(
        owner, name, component, **{c.LABEL_VERSION: version, c.LABEL_ATTEMPT: str(attempt),
                                   c.LABEL_SPEC_HASH: spec.version_hash, c.LABEL_PLACEMENT_HASH: spec.placement_hash})})


def queued(spec: Spec, job: dict[str, Any]) -> dict[str, Any]:
    """A Job for Kueue: created suspended; Kueue admits it by unsuspending it once all its pods fit (a gang)."""
    if spec.queue_name:
        job["spec"]["suspend"] = True
        job["metadata"]["labels"][c.LABEL_KUEUE_QUEUE] = spec.queue_name
    return job


# 128 + SIGKILL: how a container the kernel's OOM killer ended exits (its reason then says OOMKilled).
EXIT_KILLED = 137


def pod_failure_policy(stage: str, *helpers: str) -> dict[str, Any]:
    """Never count a pod that was evicted or preempted; fail the Job at the first permanent exit code, or
    when the stage ran out of memory (the same limit runs out again).

    Without it, a BadData, StorageError or OOMKilled pod is re-run backoffLimit times to fail the same way.
    Rules apply in order: an evicted pod killed after its grace period also exits 137.
    """
    return {"rules": [
        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
        *({"action": "FailJob", "onExitCodes": {"containerName": container, "operator": "In",
                                                "values": list(PERMANENT_EXIT_CODES)}} for container in (stage, *helpers)),
        {"action": "FailJob", "onExitCodes": {"containerName": stage, "operator": "In", "values": [EXIT_KILLED]}},
    ]}


def worker_hosts(job_name: str, namespace: str, workers: int) -> str:
    """Pod i of an Indexed Job with subdomain S is reachable as <job>-<i>.<S>."""
    svc = workers_service_name(job_name)
    return ",".join(f"{job_name}-{i}.{svc}.{namespace}.svc:{c.WORKER_PORT}" for i in range(workers))


def build_training_job(spec: Spec, owner: Owner, images: Images, version: str, attempt: int,
                       uid: str | None = None) -> dict[str, Any]:
    """`uid`: as for build_job_config, the owner's uid when the version lives in the resource's own directory."""
    name = training_job_name(owner, version, attempt)
    env = []
    if spec.workers > 1:
        # The trainer builds TF_CONFIG from these and JOB_COMPLETION_INDEX, which Kubernetes sets.
        env.append({"name": "MODELOPS_WORKER_HOSTS", "value": worker_hosts(name, owner.namespace, spec.workers)})
        env.append({"name": "MODELOPS_STARTUP_TIMEOUT_S",
                    "value": str(spec.startup_timeout_seconds or c.DEFAULT_STARTUP_TIMEOUT_S)})
    return _job(spec, owner, images, name=name, component="training", version=version, attempt=attempt,
                image=images.for_training(spec), command=["modelops-train"], workers=spec.workers, gpus=spec.gpus_per_worker, env=env,
                deadline_s=spec.active_deadline_seconds or DEFAULT_TRAINING_DEADLINE_S, uid=uid)


def build_workers_service(owner: Owner, job_name: str, version: str) -> dict[str, Any]:
    """Headless Service giving each worker pod of a multi-worker Job a stable DNS name."""
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": metadata(owner, workers_service_name(job_name), "training", **{c.LABEL_VERSION: version}),
            "spec": {"clusterIP": "None", "publishNotReadyAddresses": True,
                     "selector": {"batch.kubernetes.io/job-name": job_name},
                     "ports": [{"name": "grpc", "port": c.WORKER_PORT, "targetPort": c.WORKER_PORT}]}}


def build_compression_job(spec: Spec, owner: Owner, images: Images, version: str,
                          uid: str | None = None) -> dict[str, Any]:
    return _job(spec, owner, images, name=compression_job_name(owner, version), component="compression",
                version=version, attempt=1, image=spec.training_image or images.training,
                command=["modelops-compress"], workers=1, gpus=0, env=[],
                deadline_s=DEFAULT_COMPRESSION_DEADLINE_S, uid=uid)


# --- serving -----------------------------------------------------------------------------

DRAIN_SECONDS = 5
GRACEFUL_TIMEOUT_S = 20


def serving_selector(owner: Owner) -> dict[str, str]:
    return {"app.kubernetes.io/instance": owner.name, "app.kubernetes.io/component": "serving"}


def serving_label_selector(owner: Owner) -> str:
    """serving_selector as a label selector string (status.selector, listing the serving pods)."""
    return ",".join(f"{k}={v}" for k, v in serving_selector(owner).items())


def serving_env(spec: Spec, owner: Owner, version: str, servable: str) -> list[dict[str, str]]:
    """The serving image's environment contract (see docs/serving.md)."""
    env = [{"name": "MODELOPS_MODEL_DIR", "value": f"{c.MODELS_MOUNT}/{version}"},
           {"name": "MODELOPS_MODEL_NAME", "value": owner.name},
           {"name": "MODELOPS_SERVABLE", "value": servable},
           {"name": "MODELOPS_HOST", "value": "0.0.0.0"},
           {"name": "MODELOPS_PORT", "value": str(c.SERVING_PORT)},
           {"name": "MODELOPS_GRPC_PORT", "value": str(c.SERVING_GRPC_PORT)},
           {"name": "MODELOPS_MAX_BATCH_SIZE", "value": str(spec.max_batch_size)},
           {"name": "MODELOPS_MAX_LATENCY_MS", "value": str(spec.max_latency_ms)},
           # On SIGTERM the server turns not-ready and keeps serving while endpoints drop it, then
           # finishes what it accepted: a rolling update loses no request.
           {"name": "MODELOPS_DRAIN_SECONDS", "value": str(DRAIN_SECONDS)},
           {"name": "MODELOPS_GRACEFUL_TIMEOUT_S", "value": str(GRACEFUL_TIMEOUT_S)}]
    workers = serving_workers(spec)
    if workers > 1:   # only above the server's default: an operator upgrade leaves other Deployments' pods alone
        env.append({"name": "MODELOPS_WORKERS", "value": str(workers)})
    return env


def serving_workers(spec: Spec) -> int:
    """Server processes per pod: one per CPU of the serving container's limit (a Python process serves on one
    core), one without a limit, since the node's CPUs are then shared with whatever else runs there."""
    limit = ((spec.serving_resources or {}).get("limits") or {}).get("cpu")
    return max(1, math.ceil(cpu_cores(limit))) if limit is not None else 1


def cpu_cores(quantity: str | int | float) -> float:
    """A Kubernetes CPU quantity in cores: 2, "1.5", "1500m"."""
    text = str(quantity).strip()
    return float(text[:-1]) / 1000 if text.endswith("m") else float(text)


def build_serving_deployment(spec: Spec, owner: Owner, images: Images, version: str,
                             servable: str, uid: str | None = None) -> dict[str, Any]:
    """The inference Deployment serving `version` (the "tflite" or "tfliteFloat32" servable).

    A new version rolls out with maxUnavailable 0, so the old pods serve until new ones are
    Ready; with autoscaling the HPA owns `replicas`, so it is left out.
    """
    image = spec.serving_image or images.serving
    pod_labels = {**labels(owner, "serving"), c.LABEL_VERSION: version}
    probe = {"httpGet": {"port": "http"}, "periodSeconds": 5, "timeoutSeconds": 2}
    storage_dir = model_dir(spec, owner, uid)
    # Writable only for the feedback mount (see _keep_feedback); the model's own mount stays read-only.
    storage_volume = {"name": "pvc-0", "persistentVolumeClaim": {"claimName": spec.storage_claim,
                                                                 "readOnly": not spec.monitoring_enabled}}
    deployment_spec: dict[str, Any] = {
        "selector": {"matchLabels": serving_selector(owner)},
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
        "revisionHistoryLimit": 5,
        "template": {
            "metadata": {"labels": pod_labels},
            "spec": {
                "automountServiceAccountToken": False,
                "securityContext": pod_security(spec, images),
                "terminationGracePeriodSeconds": DRAIN_SECONDS + GRACEFUL_TIMEOUT_S + 10,
                "initContainers": [{
                    "name": "fetch-model",
                    "image": image,
                    "command": ["modelops-fetch"],
                    "args": ["--source", version_path(spec, owner, version, uid), "--dest", f"{c.MODELS_MOUNT}/{version}"],
                    "volumeMounts": [_mount("pvc-0", spec.storage_claim, storage_dir, True),
                                     {"name": "models", "mountPath": c.MODELS_MOUNT}],
                    "resources": HELPER_RESOURCES,
                    "securityContext": RESTRICTED_CONTAINER_SECURITY,
                    "terminationMessagePolicy": "FallbackToLogsOnError",
                }],
                "containers": [{
                    "name": "server",
                    "image": image,
                    "command": ["modelops-serve"],
                    "env": serving_env(spec, owner, version, servable),
                    "ports": [{"name": "http", "containerPort": c.SERVING_PORT, "protocol": "TCP"},
                              {"name": "grpc", "containerPort": c.SERVING_GRPC_PORT, "protocol": "TCP"}],
                    "readinessProbe": {**probe, "httpGet": {"path": "/v2/health/ready", "port": "http"}},
                    "livenessProbe": {**probe, "httpGet": {"path": "/v2/health/live", "port": "http"},
                                      "failureThreshold": 6},
                    "resources": spec.serving_resources or {},
                    "volumeMounts": [{"name": "models", "mountPath": c.MODELS_MOUNT, "readOnly": True},
                                     {"name": "tmp", "mountPath": "/tmp"}],
                    "securityContext": RESTRICTED_CONTAINER_SECURITY,
                }],
                "volumes": [storage_volume, {"name": "models", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}}],
            },
        },
    }
    _keep_feedback(deployment_spec["template"]["spec"]["containers"][0], spec, owner, uid)
    with_identity(deployment_spec["template"]["spec"], spec, service_account=spec.serving_service_account,
                  env=spec.serving_env, env_from=spec.serving_env_from)
    if not spec.autoscaling:
        deployment_spec["replicas"] = spec.replicas
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": metadata(owner, serving_name(owner), "serving"), "spec": deployment_spec}


def canary_name(owner: Owner) -> str:
    return f"{owner.name}-canary"


def canary_selector(owner: Owner) -> dict[str, str]:
    return {**serving_selector(owner), c.LABEL_TRACK: c.TRACK_CANARY}


def build_canary_deployment(spec: Spec, owner: Owner, images: Images, version: str,
                            servable: str, uid: str | None = None) -> dict[str, Any]:
    """The new version's pods beside the stable ones, as the stable Deployment would run them.

    Its pods keep the serving labels, so the Service sends them a share of the traffic in proportion
    to the ready endpoints (no mesh); the track label alone keeps its ReplicaSets apart from the stable
    Deployment's. A fixed replica count: the HPA scales the stable Deployment only.
    """
    deployment = build_serving_deployment(spec, owner, images, version, servable, uid)
    deployment["metadata"] = metadata(owner, canary_name(owner), "serving",
                                      **{c.LABEL_VERSION: version, c.LABEL_TRACK: c.TRACK_CANARY})
    deployment["spec"]["selector"] = {"matchLabels": canary_selector(owner)}
    deployment["spec"]["template"]["metadata"]["labels"][c.LABEL_TRACK] = c.TRACK_CANARY
    deployment["spec"]["replicas"] = spec.rollout.replicas
    return deployment
def _keep_feedback(container: dict[str, Any], spec: Spec, owner: Owner, uid: str | None) -> None:
    """Every server names itself in prediction ids, so any replica forwards feedback to the one that
    answered (with monitoring or without: feedback by id works with N replicas either way). With
    spec.monitoring it also keeps joined feedback in the model's feedback directory (the trainer made it,
    owned by the pods' user): only then is the claim's volume writable (each other mount stays read-only)."""
    container["env"] += [
        {"name": "MODELOPS_REPLICA", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "MODELOPS_POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "MODELOPS_ID_KEY", "value": owner.uid}]
    if not spec.monitoring_enabled:
        return
    sub = str(feedback_dir(spec.storage_subpath, owner.namespace, owner.name, uid))
    container["env"].append({"name": "MODELOPS_FEEDBACK_DIR", "value": c.FEEDBACK_MOUNT})
    # pvc-0: the storage claim's volume in build_serving_deployment.
    container["volumeMounts"].append({"name": "pvc-0", "mountPath": c.FEEDBACK_MOUNT, "subPath": sub})


def build_replicas_handover(owner: Owner, replicas: int) -> dict[str, Any]:
    """The Deployment's current replica count alone, applied by another manager before autoscaling
    takes over (Kubernetes' documented migration of a Deployment to an HPA with server-side apply)."""
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": serving_name(owner), "namespace": owner.namespace}, "spec": {"replicas": replicas}}


def build_serving_service(owner: Owner) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": metadata(owner, serving_name(owner), "serving"),
            "spec": {"selector": serving_selector(owner),
                     "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"},
                               {"name": "grpc", "port": c.SERVING_GRPC_PORT, "targetPort": "grpc", "protocol": "TCP"}]}}


def build_hpa(spec: Spec, owner: Owner) -> dict[str, Any]:
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": metadata(owner, serving_name(owner), "serving"),
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": serving_name(owner)},
                     "minReplicas": spec.autoscaling_min, "maxReplicas": spec.autoscaling_max,
                     "metrics": [{"type": "Resource", "resource": {
                         "name": "cpu", "target": {"type": "Utilization",
                                                   "averageUtilization": spec.autoscaling_cpu}}}]}}


def wants_pdb(spec: Spec) -> bool:
    return (spec.autoscaling_min if spec.autoscaling else spec.replicas) > 1


def build_pdb(owner: Owner) -> dict[str, Any]:
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": metadata(owner, serving_name(owner), "serving"),
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": serving_selector(owner)}}}


def build_serving_objects(spec: Spec, owner: Owner, images: Images, version: str,
                          servable: str, uid: str | None = None) -> tuple[list[dict], list[tuple[str, str]]]:
    """Everything serving needs, and the (kind, name) of serving objects that must not exist."""
    wanted = [build_serving_deployment(spec, owner, images, version, servable, uid), build_serving_service(owner)]
    unwanted = []
    for present, obj, kind in ((spec.autoscaling, build_hpa(spec, owner) if spec.autoscaling else None,
                                "HorizontalPodAutoscaler"),
                               (wants_pdb(spec), build_pdb(owner), "PodDisruptionBudget")):
        if present:
            wanted.append(obj)
        else:
            unwanted.append((kind, serving_name(owner)))
    return wanted, unwanted


def cleanup_job_name(owner: Owner) -> str:
    return f"{owner.name}-cleanup-{owner.uid[:8]}"


# Fails (so the finalizer's Warning says so) when a path cannot be removed; a missing one is done.
CLEANUP_SCRIPT = "import os, shutil, sys\nfor path in sys.argv[1:]:\n    if os.path.lexists(path):\n" \
                 "        shutil.rmtree(path)\n"


def cleanup_targets(spec: Spec, owner: Owner, legacy_versions: list[str]) -> list[str]:
    """This resource's directory, and the versions it made before versions lived under its uid."""
    root = storage_root(spec)
    own = str(jobconfig.version_dir(root, owner.namespace, owner.name, "", owner.uid)).rstrip("/")
    return [own] + [str(jobconfig.version_dir(root, owner.namespace, owner.name, v)) for v in legacy_versions]


def build_cleanup_job(spec: Spec, owner: Owner, images: Images, legacy_versions: list[str] = ()) -> dict[str, Any]:
    """A Job that deletes the model's versions from storage, for a ModelDeployment being deleted.

    It has no owner reference on purpose: the owner is going away, and the Job must outlive it
    long enough to finish; ttlSecondsAfterFinished removes it afterwards. It mounts the resource's name
    directory (its uid directory, and pre-uid versions, are removed, so neither can be the mount) and
    runs the operator's serving image, never the spec's.
    """
    name_dir = model_dir(spec, owner, None)
    meta = metadata(owner, cleanup_job_name(owner), "cleanup")
    del meta["ownerReferences"]
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta, "spec": {
        "backoffLimit": 2, "ttlSecondsAfterFinished": 600, "activeDeadlineSeconds": 600,
        "template": {"metadata": {"labels": labels(owner, "cleanup"),
                                  "annotations": dict(spec.pod_annotations or {})},
                     "spec": {"restartPolicy": "Never", "automountServiceAccountToken": False,
                              "securityContext": pod_security(spec, images),
                              # Never mounted before (nothing trained): made as the pods' user, not root,
                              # or a later resource of the same name could not make its directory in it.
                              "initContainers": [prepare_storage_container(spec, images, name_dir)],
                              "containers": [{
                                  "name": "cleanup", "image": images.serving,
                                  "command": ["python", "-c", CLEANUP_SCRIPT,
                                              *cleanup_targets(spec, owner, list(legacy_versions))],
                                  "volumeMounts": [_mount("pvc-0", spec.storage_claim, name_dir, False)],
                                  "resources": HELPER_RESOURCES, "securityContext": RESTRICTED_CONTAINER_SECURITY}],
                              "volumes": [{"name": "pvc-0", "persistentVolumeClaim": {
                                  "claimName": spec.storage_claim, "readOnly": False}}]}}}}
    # Only the pull secrets: deleting files on the claim needs no cloud identity.
    with_identity(job["spec"]["template"]["spec"], spec, service_account=None, env=None, env_from=None)
    return job
