"""One log line per epoch: loss, metric, samples/s and ETA — whether the run resumed from a backup, and a stop on a NaN loss."""
from __future__ import annotations

import logging
import math
import time

from .tf_runtime import keras

log = logging.getLogger("modelops.train")


class EpochLog(keras.callbacks.Callback):
    def __init__(self, epochs: int, samples_per_epoch: int, label: str):
        super().__init__()
        self.epochs = epochs
        self.samples_per_epoch = samples_per_epoch
        self.label = label
        self.resumed_at_epoch: int | None = None   # 0-based epoch a restored run started at
        self.epoch_seconds: list[float] = []
        self._started = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        if not self.epoch_seconds and self.resumed_at_epoch is None and epoch > 0:
            self.resumed_at_epoch = epoch
            log.info("%s: resumed from backup at epoch %d/%d", self.label, epoch + 1, self.epochs)
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self._started
        self.epoch_seconds.append(seconds)
        mean = sum(self.epoch_seconds) / len(self.epoch_seconds)
        eta = mean * (self.epochs - epoch - 1)
        values = " ".join(f"{k}={v:.4g}" for k, v in (logs or {}).items())
        if not math.isfinite((logs or {}).get("loss", 0.0)):
            # Checked per epoch, not per batch (as TerminateOnNaN does): batch hooks would sync every step.
            self.model.stop_training = True
        log.info("%s: epoch %d/%d %s samples/s=%.0f eta=%.1fs", self.label, epoch + 1, self.epochs, values,
                 self.samples_per_epoch / seconds if seconds > 0 else math.inf, eta)

    @property
    def samples_per_second(self) -> float:
        total = sum(self.epoch_seconds)
        return self.samples_per_epoch * len(self.epoch_seconds) / total if total > 0 else 0.0
