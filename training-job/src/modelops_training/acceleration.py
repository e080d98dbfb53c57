"""What the trainer runs on, and how: thread counts from the container's CPU limit, the GPUs it was promised,
mixed precision and XLA. Everything here must happen before TensorFlow runs its first op.

`configure` returns what really ran, for the log and the stage report: a pod that was given
`nvidia.com/gpu` but trains on the CPU (an image without CUDA) must say so, not pass silently.
"""
from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Any, Mapping

from modelops_contracts.jobconfig import TrainingSpec

from .errors import BadConfig, GPUUnavailable
from .tf_runtime import keras, tf

log = logging.getLogger("modelops.acceleration")
CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")                  # cgroup v2
CGROUP_V1_CPU = Path("/sys/fs/cgroup/cpu")                       # cgroup v1: cfs_quota_us (-1: none), cfs_period_us
CPU_LIMIT_ENV = "MODELOPS_CPU_LIMIT"


def cpu_limit(cpu_max: str | None, cpu_count: int) -> int:
    """Cores the container may use: cgroup v2 `cpu.max` ("<quota> <period>" or "max <period>"), rounded up.

    Without it TensorFlow sizes its thread pools by the node's cores, and a pod limited to 2 of 64
    cores runs 64 threads that the CFS quota throttles in turn.
    """
    parts = (cpu_max or "").split()
    if len(parts) == 2 and parts[0] != "max":
        try:
            return max(1, math.ceil(int(parts[0]) / int(parts[1])))
        except (ValueError, ZeroDivisionError):
            pass
    return max(1, cpu_count)


def threads(env: Mapping[str, str]) -> int:
    if env.get(CPU_LIMIT_ENV):
        try:
            return max(1, math.ceil(float(env[CPU_LIMIT_ENV])))
        except ValueError:
            raise BadConfig(f"{CPU_LIMIT_ENV}: expected a number of cores, got {env[CPU_LIMIT_ENV]!r}") from None
    return cpu_limit(_cgroup_cpu_max(), os.cpu_count() or 1)


def _cgroup_cpu_max() -> str | None:
    """The limit in cpu.max's form, from cgroup v2 or, on older nodes, v1."""
    if CGROUP_CPU_MAX.is_file():
        return CGROUP_CPU_MAX.read_text()
    quota, period = CGROUP_V1_CPU / "cpu.cfs_quota_us", CGROUP_V1_CPU / "cpu.cfs_period_us"
    if quota.is_file() and period.is_file():
        value = quota.read_text().strip()
        return f"{'max' if value.startswith('-') else value} {period.read_text().strip()}"
    return None


def configure(spec: TrainingSpec, env: Mapping[str, str]) -> dict[str, Any]:
    """Set threads, check the GPUs, set the precision policy; returns what will run (for the report)."""
    cores = threads(env)
    try:
        tf.config.threading.set_intra_op_parallelism_threads(cores)
        tf.config.threading.set_inter_op_parallelism_threads(min(cores, 2))
    except RuntimeError:   # TensorFlow already ran in this process (in-process callers): its pools stay
        log.warning("TensorFlow is already initialised; keeping its thread pools instead of %d threads", cores)
        cores = tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count() or 1
    gpus = tf.config.list_physical_devices("GPU")
    if spec.gpus_per_worker and not gpus:
        raise GPUUnavailable(
            f"training.strategy.gpusPerWorker is {spec.gpus_per_worker} but TensorFlow sees no GPU: the image has no "
            f"CUDA libraries (use the modelops-training-gpu image, the operator's defaults.trainingGpuImage) or the "
            f"node's NVIDIA driver is not exposed to the pod")
    keras.mixed_precision.set_global_policy(spec.precision)
    info = {"precision": spec.precision, "jitCompile": spec.jit_compile, "intraOpThreads": cores,
            "gpusVisible": len(gpus)}
    log.info("devices: %d GPU(s) visible%s; %d intra-op threads; precision %s; XLA %s", len(gpus),
             f" ({', '.join(g.name for g in gpus)})" if gpus else ", training on the CPU", cores, spec.precision,
             "on" if spec.jit_compile else "off")
    return info


def devices_used(strategy: "tf.distribute.Strategy") -> list[str]:
    """The devices the strategy's replicas ran on (the default strategy uses the first GPU, else the CPU)."""
    try:
        names = list(strategy.extended.worker_devices)
    except RuntimeError:   # the default strategy does not list them
        gpus = tf.config.list_logical_devices("GPU")
        names = [gpus[0].name if gpus else "/device:CPU:0"]
    return [n[n.index("device:") + len("device:"):] if "device:" in n else n for n in names]


def check_output(model: "keras.Model", spec: TrainingSpec) -> None:
    """Under mixed precision the output must still be float32: a float16 softmax or regression output
    overflows and rounds (the built-in templates' output layers are float32)."""
    dtype = model.outputs[0].dtype
    if spec.precision == "mixed_float16" and dtype != tf.float32:
        raise BadConfig(f"training.precision: with mixed_float16 the model's output must be float32, got "
                        f"{dtype.name} (give the last layer dtype='float32')")


def float32_policy() -> None:
    """Back to float32, so the exported copy of the model computes in float32 (what serving expects)."""
    keras.mixed_precision.set_global_policy("float32")
