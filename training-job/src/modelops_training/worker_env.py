"""The worker environment contract: how a training process learns its place in a multi-worker cluster.

Free of TensorFlow, so the operator side and unit tests can use it cheaply. The env contract (what the operator sets on each pod of an Indexed Job, and what the local runner
sets on each process), read by `tf_config_from_env`, in order of precedence:

1. `TF_CONFIG` — used as given.
2. `MODELOPS_WORKER_HOSTS=host0:port,host1:port,…` plus `JOB_COMPLETION_INDEX=<i>` (Kubernetes sets the
   index on Indexed Job pods) — this process is worker `i` of that list.
3. `MODELOPS_JOB_NAME`, `MODELOPS_SERVICE_NAME`, `MODELOPS_WORKERS` (count), optional
   `MODELOPS_WORKER_PORT` (default 2222), plus `JOB_COMPLETION_INDEX` — the hosts are the Indexed Job's
   stable pod names behind its headless Service: `<job>-<k>.<service>:<port>` for k in 0..workers-1.
4. none of these — a single process; no TF_CONFIG.

Optional on every worker: `MODELOPS_BACKUP_EVERY_STEPS` (default 500), the fewest training steps between two
fault-tolerance backups (see `backup.py`).

Worker 0 is the chief: it alone writes artifacts.
"""
from __future__ import annotations

import json
import math
from typing import Any, Mapping

from .errors import BadConfig

WORKER_HOSTS_ENV = "MODELOPS_WORKER_HOSTS"
JOB_INDEX_ENV = "JOB_COMPLETION_INDEX"
JOB_NAME_ENV = "MODELOPS_JOB_NAME"
SERVICE_NAME_ENV = "MODELOPS_SERVICE_NAME"
WORKERS_ENV = "MODELOPS_WORKERS"
WORKER_PORT_ENV = "MODELOPS_WORKER_PORT"
DEFAULT_WORKER_PORT = 2222


def build_tf_config(hosts: list[str], index: int) -> dict[str, Any]:
    if not 0 <= index < len(hosts):
        raise BadConfig(f"{JOB_INDEX_ENV}: {index} is outside the {len(hosts)} worker hosts")
    return {"cluster": {"worker": list(hosts)}, "task": {"type": "worker", "index": index}}


def indexed_job_hosts(job: str, service: str, workers: int, port: int = DEFAULT_WORKER_PORT) -> list[str]:
    """The DNS names Kubernetes gives the pods of an Indexed Job whose pods use `service` as subdomain."""
    return [f"{job}-{k}.{service}:{port}" for k in range(workers)]


def tf_config_from_env(env: Mapping[str, str]) -> dict[str, Any] | None:
    if env.get("TF_CONFIG"):
        try:
            return json.loads(env["TF_CONFIG"])
        except json.JSONDecodeError as e:
            raise BadConfig(f"TF_CONFIG: not JSON ({e.msg})") from None
    if env.get(WORKER_HOSTS_ENV):
        hosts = [h.strip() for h in env[WORKER_HOSTS_ENV].split(",") if h.strip()]
    elif env.get(JOB_NAME_ENV):
        missing = [k for k in (SERVICE_NAME_ENV, WORKERS_ENV) if not env.get(k)]
        if missing:
            raise BadConfig(f"{', '.join(missing)}: required with {JOB_NAME_ENV}")
        hosts = indexed_job_hosts(env[JOB_NAME_ENV], env[SERVICE_NAME_ENV], _int_env(env, WORKERS_ENV),
                                  _int_env(env, WORKER_PORT_ENV, DEFAULT_WORKER_PORT))
    else:
        return None
    if JOB_INDEX_ENV not in env:
        raise BadConfig(f"{JOB_INDEX_ENV}: required to pick this worker among {len(hosts)} hosts")
    return build_tf_config(hosts, _int_env(env, JOB_INDEX_ENV))


def _int_env(env: Mapping[str, str], key: str, default: int | None = None) -> int:
    value = env.get(key)
    if value is None and default is not None:
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise BadConfig(f"{key}: expected an integer, got {value!r}") from None


def worker_count(tf_config: Mapping[str, Any] | None) -> int:
    if not tf_config:
        return 1
    cluster = tf_config.get("cluster", {})
    return len(cluster.get("worker", [])) + len(cluster.get("chief", []))


def is_chief(tf_config: Mapping[str, Any] | None) -> bool:
    """The chief task if the cluster names one, else worker 0 (the multi-worker convention)."""
    if not tf_config:
        return True
    task = tf_config.get("task", {})
    if task.get("type") == "chief":
        return True
    return task.get("type") == "worker" and task.get("index") == 0 and "chief" not in tf_config.get("cluster", {})


def task_label(tf_config: Mapping[str, Any] | None) -> str:
    if not tf_config:
        return "worker 0/1"
    task = tf_config.get("task", {})
    return f"{task.get('type')} {task.get('index')}/{worker_count(tf_config)}"


BACKUP_EVERY_STEPS_ENV = "MODELOPS_BACKUP_EVERY_STEPS"
DEFAULT_BACKUP_EVERY_STEPS = 500


def epochs_between_backups(steps_per_epoch: int, env: Mapping[str, str]) -> int:
    raw = env.get(BACKUP_EVERY_STEPS_ENV, str(DEFAULT_BACKUP_EVERY_STEPS))
    try:
        min_steps = int(raw)
    except ValueError:
        raise BadConfig(f"{BACKUP_EVERY_STEPS_ENV}: expected an integer, got {raw!r}") from None
    if min_steps < 1:
        raise BadConfig(f"{BACKUP_EVERY_STEPS_ENV}: must be at least 1, got {min_steps}")
    return max(1, math.ceil(min_steps / steps_per_epoch))
