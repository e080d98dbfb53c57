"""`modelops-operator`: kopf with modelops' settings, as one command.

Flags win over environment variables (which is how the Helm chart configures it).
"""
from __future__ import annotations

import argparse
import logging
import os
import random
import sys
from typing import Sequence

import kopf

from . import builders as b
from . import constants as c
from . import handlers  # noqa: F401  (registers the handlers with kopf)
from . import imagepolicy, podsecurity
from .kube import CONNECTIONS, Kube
from .metrics import Metrics
from .reconciler import Reconciler


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    env = os.environ.get
    p = argparse.ArgumentParser(prog="modelops-operator", description=__doc__.splitlines()[0])
    p.add_argument("--namespace", "-n", action="append", default=None,
                   help="watch this namespace (repeatable; env MODELOPS_WATCH_NAMESPACES, comma-separated). "
                        "Default: all namespaces")
    p.add_argument("--health-port", type=int, default=int(env("MODELOPS_HEALTH_PORT", "8080")),
                   help="port of GET /healthz (liveness)")
    p.add_argument("--metrics-port", type=int, default=int(env("MODELOPS_METRICS_PORT", "9090")),
                   help="port of GET /metrics (Prometheus); 0 disables it")
    p.add_argument("--host", default=env("MODELOPS_LISTEN_HOST", "0.0.0.0"), help="address the two ports bind")
    p.add_argument("--peering", default=env("MODELOPS_PEERING", ""),
                   help="kopf peering name: replicas with the same name elect one active (needs the peering CRDs). "
                        "Empty: standalone")
    p.add_argument("--priority", type=int, default=int(env("MODELOPS_PRIORITY", "0")) or None,
                   help="peering priority; the highest live one is active. Default: random, so that replicas "
                        "of one Deployment never tie (on a tie kopf lets both run)")
    p.add_argument("--training-image", default=env("MODELOPS_TRAINING_IMAGE", c.DEFAULT_TRAINING_IMAGE))
    p.add_argument("--serving-image", default=env("MODELOPS_SERVING_IMAGE", c.DEFAULT_SERVING_IMAGE))
    p.add_argument("--training-gpu-image", default=env("MODELOPS_TRAINING_GPU_IMAGE", c.DEFAULT_TRAINING_GPU_IMAGE),
                   help="training image with CUDA, for ModelDeployments that request GPUs and set no image")
    p.add_argument("--cluster-domain", default=env("MODELOPS_CLUSTER_DOMAIN", c.DEFAULT_CLUSTER_DOMAIN),
                   help="the cluster's DNS domain, in status.endpoint")
    p.add_argument("--pod-security-context", default=env("MODELOPS_POD_SECURITY_CONTEXT", ""),
                   help="JSON: runAsUser, runAsGroup, fsGroup, fsGroupChangePolicy of the pods the operator creates, "
                        "unless a ModelDeployment sets spec.podSecurityContext. Default: 65532 for all three "
                        "(the images' user) and OnRootMismatch; {} leaves them to the platform (OpenShift)")
    p.add_argument("--allowed-images", default=env("MODELOPS_ALLOWED_IMAGES", ""),
                   help="comma-separated image prefixes a ModelDeployment may name in training.image and "
                        "serving.image; others are refused (ImageNotAllowed). Empty: any image")
    p.add_argument("--cleanup-timeout", type=float, default=float(env("MODELOPS_CLEANUP_TIMEOUT_S", "300")),
                   help="seconds a deletion waits for the artifact clean-up Job before releasing the finalizer")
    p.add_argument("--log-level", default=env("MODELOPS_LOG_LEVEL", "info"),
                   choices=["debug", "info", "warning", "error"])
    args = p.parse_args(argv)
    try:
        args.pod_security_context = podsecurity.parse_defaults(args.pod_security_context)
    except podsecurity.PodSecurityError as e:
        p.error(str(e))
    if args.namespace is None:
        args.namespace = [n.strip() for n in env("MODELOPS_WATCH_NAMESPACES", "").split(",") if n.strip()]
    return args


def operator_settings(args: argparse.Namespace) -> kopf.OperatorSettings:
    """Every kopf setting in one place."""
    settings = kopf.OperatorSettings()
    # kopf's bookkeeping goes to annotations under our prefix; status keeps only documented fields.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=c.ANNOTATION_PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=c.ANNOTATION_PREFIX, key="last-handled-configuration")
    # Our own Events tell the story; kopf's per-handler events would only repeat it.
    settings.posting.level = logging.WARNING
    settings.execution.max_workers = CONNECTIONS
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.networking.request_timeout = 60
    if args.peering:
        settings.peering.name = args.peering
        settings.peering.mandatory = True
        settings.peering.clusterwide = not args.namespace
    return settings


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    metrics = Metrics()
    if args.metrics_port:
        metrics.serve(args.metrics_port, args.host)
    defaults = b.Images(training=args.training_image, serving=args.serving_image,
                        pod_security=args.pod_security_context, training_gpu=args.training_gpu_image,
                        cluster_domain=args.cluster_domain,
                        allowed_images=imagepolicy.parse_allowed(args.allowed_images))
    memo = kopf.Memo(reconciler=Reconciler(Kube.connect(), defaults, metrics, cleanup_timeout_s=args.cleanup_timeout))
    priority = args.priority if args.priority is not None else random.randint(1, 2 ** 31 - 1)
    kopf.run(settings=operator_settings(args), memo=memo, standalone=not args.peering,
             peering_name=args.peering or None, priority=priority, clusterwide=not args.namespace, namespaces=args.namespace,
             liveness_endpoint=f"http://{args.host}:{args.health_port}/healthz" if args.health_port else None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
