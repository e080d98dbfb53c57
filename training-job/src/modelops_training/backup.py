"""Fault tolerance: BackupAndRestore on the shared storage, at a cost bounded by how often it saves.

A backup writes the weights and the optimizer state (a checkpoint of ~3× the model); measured on the
digits MLP that is 12–35 ms against 60–120 ms epochs, so backing up every epoch of a small dataset
costs more than the training. Backups are therefore taken every N epochs, N chosen so at least
`MODELOPS_BACKUP_EVERY_STEPS` training steps (default 500; `worker_env.epochs_between_backups`) pass
between two of them: at most that much work is redone after a restart. N depends only on the data and config, so every worker of a
multi-worker job backs up at the same epochs, as the collective checkpoint requires.
"""
from __future__ import annotations

from .tf_runtime import keras


class PeriodicBackup(keras.callbacks.BackupAndRestore):
    """tf-keras BackupAndRestore that saves at the end of every `every_epochs`-th epoch only."""

    def __init__(self, backup_dir: str, every_epochs: int):
        super().__init__(backup_dir, save_freq="epoch", delete_checkpoint=True)
        self.every_epochs = every_epochs

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every_epochs == 0:
            super().on_epoch_end(epoch, logs)
