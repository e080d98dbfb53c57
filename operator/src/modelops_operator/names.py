"""How long a ModelDeployment's name may be: every name derived from it must fit its Kubernetes limit.

The Job controller copies a Job's name into the `batch.kubernetes.io/job-name` label (63 characters),
pods of an Indexed Job are named `<job>-<index>` as their hostname (a DNS label), and Services are DNS
labels too. The CRD refuses a longer name at `kubectl apply` (a CEL rule on metadata.name whose
numbers a unit test keeps equal to these); `modelops run` asks `check_name` the same.
"""
from __future__ import annotations

import re

from . import builders as b
from .spec import SpecError

DNS_LABEL_MAX = 63
# The largest version serving.modelVersion may name, and the last attempt evaluation.maxRetrains (≤ 10) allows.
LONGEST_VERSION = "v999999"
LAST_ATTEMPT = 11
MAX_WORKERS = 64
DNS_1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
LENGTH_MESSAGE = ("metadata.name must be at most {limit} characters: the longest name derived from it, "
                  "<name>{suffix} (the training Job's workers Service), must fit a 63-character DNS label")
SHAPE_MESSAGE = ("metadata.name must be a DNS-1035 label (lower-case letters, digits and '-', starting with a "
                 "letter): it names the serving Service")


def derived_names(name: str) -> dict[str, str]:
    """The longest name of each kind that a ModelDeployment called `name` can lead to."""
    owner = b.Owner(namespace="", name=name, uid="0" * 36)
    job = b.training_job_name(owner, LONGEST_VERSION, LAST_ATTEMPT)
    return {"training Job": job, "worker hostname": f"{job}-{MAX_WORKERS - 1}",
            "training Job's workers Service": b.workers_service_name(job),
            "training ConfigMap": b.config_map_name(job), "compression Job": b.compression_job_name(owner, LONGEST_VERSION),
            "cleanup Job": b.cleanup_job_name(owner), "serving Service": b.serving_name(owner),
            "canary Deployment": b.canary_name(owner)}


def longest_suffix() -> str:
    return max((n for n in derived_names("").values()), key=len)


def max_name_length() -> int:
    return DNS_LABEL_MAX - len(longest_suffix())


def check_name(name: str) -> None:
    if len(name) > max_name_length():
        raise SpecError(LENGTH_MESSAGE.format(limit=max_name_length(), suffix=longest_suffix()))
    if not DNS_1035_LABEL.match(name):
        raise SpecError(SHAPE_MESSAGE)
