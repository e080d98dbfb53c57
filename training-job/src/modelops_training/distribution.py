"""Distribution strategies, chosen by the job config (the cluster layout comes from `worker_env`)."""
from __future__ import annotations

import json
import os
from typing import Any, Mapping

from modelops_contracts.jobconfig import TrainingSpec

from . import barrier
from .errors import BadConfig
from .tf_runtime import tf
from .worker_env import JOB_INDEX_ENV, WORKER_HOSTS_ENV, worker_count


def make_strategy(spec: TrainingSpec, tf_config: Mapping[str, Any] | None) -> "tf.distribute.Strategy":
    """The same code runs on CPU and GPU: the strategies place variables on whatever devices exist.

    MultiWorkerMirroredStrategy must be created before TensorFlow runs any op in this process.
    """
    if spec.strategy == "MultiWorkerMirrored":
        if spec.workers > 1 and worker_count(tf_config) != spec.workers:
            raise BadConfig(f"training.workers: {spec.workers} workers configured but the worker environment "
                            f"describes {worker_count(tf_config)} (set {WORKER_HOSTS_ENV} and {JOB_INDEX_ENV}, "
                            f"or TF_CONFIG)")
        if tf_config:
            os.environ["TF_CONFIG"] = json.dumps(tf_config)
        if worker_count(tf_config) > 1:
            barrier.wait_for_peers(tf_config, barrier.startup_timeout(os.environ))
        return tf.distribute.MultiWorkerMirroredStrategy()
    if spec.strategy == "Mirrored":
        return tf.distribute.MirroredStrategy()
    # OneDevice: the default strategy places everything on the first GPU when there is one, else the CPU —
    # what OneDeviceStrategy would do, but BackupAndRestore refuses OneDeviceStrategy and accepts this.
    return tf.distribute.get_strategy()
