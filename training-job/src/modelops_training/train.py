"""The training stage: `train(config) -> StageReport`.

Loads and splits the data, trains under the configured distribution strategy with BackupAndRestore
on the shared storage, evaluates on the held-out split, and (chief only) publishes the version
directory atomically: model.keras, saved_model/, metrics.json, history.json, logs/, manifest.json.
"""
from __future__ import annotations

import logging
import math
import os
import shutil
import tempfile
from pathlib import Path

from modelops_contracts import feedback as fb_contract
from modelops_contracts import manifest as mf
from modelops_contracts.jobconfig import JobConfig
from modelops_contracts.report import StageReport

from . import (acceleration, artifacts, backup, data, distribution, export, feedback_data, features, metrics,
               pipeline, reference, worker_env)
from .errors import BadData, TrainingFailed
from .progress import EpochLog
from .stage import run_stage
from .templates import ModelInputs, build_model, compile_model
from .tf_runtime import keras, tf

log = logging.getLogger("modelops.train")
PREDICT_BATCH = 1024


def train(config: JobConfig) -> StageReport:
    try:
        return run_stage("train", config, _train)
    finally:
        acceleration.float32_policy()   # the precision policy is process-wide; leave none behind


def _train(config: JobConfig) -> StageReport:
    tf_config = worker_env.tf_config_from_env(os.environ)
    ran = acceleration.configure(config.training, os.environ)           # threads and precision: before any TF op
    strategy = distribution.make_strategy(config.training, tf_config)   # first op: MWMS must precede any other
    chief = worker_env.is_chief(tf_config)
    label = worker_env.task_label(tf_config)
    spec = config.training
    prepared, fed = feedback_data.extend(data.load(config), config)
    if prepared.train_rows < spec.batch_size:
        raise BadData(f"data: {prepared.train_rows} training rows are fewer than training.batchSize "
                      f"{spec.batch_size}")
    if chief:
        artifacts.ensure_parent(config.version_dir)   # fail on unwritable storage before spending time training
        artifacts.remove_leftovers(config.version_dir, spec.attempt)
    inputs = ModelInputs.of(prepared)
    keras.utils.set_random_seed(spec.seed)
    with strategy.scope():
        model = build_model(config, inputs)
        acceleration.check_output(model, spec)
        compile_model(model, prepared.task, spec.learning_rate, jit_compile=spec.jit_compile)
    ran["devices"] = acceleration.devices_used(strategy)

    steps = pipeline.steps_per_epoch(prepared.train_rows, spec.batch_size)
    epoch_log = EpochLog(spec.epochs, steps * spec.batch_size, label)
    with tempfile.TemporaryDirectory(prefix="modelops-scratch-") as scratch:
        # The multi-worker pattern: every worker logs, only the chief's logs land in the version.
        log_dir = Path(scratch) / "logs"
        every = worker_env.epochs_between_backups(steps, os.environ)
        callbacks = [backup.PeriodicBackup(str(artifacts.backup_dir(config.version_dir, spec.attempt)), every),
                     epoch_log,
                     keras.callbacks.TensorBoard(str(log_dir), histogram_freq=0, profile_batch=0)]
        workers = worker_env.worker_count(tf_config)
        log.info("%s: training %s on %s, %d epochs × %d steps, strategy %s with %d replicas, "
                 "backup every %d epochs", label, config.model.template,
                 features.describe(prepared.x_train, prepared.train_rows), spec.epochs, steps, spec.strategy,
                 strategy.num_replicas_in_sync, every)
        if prepared.stream is not None or workers > 1:
            log.info("%s: training examples %s", label, pipeline.describe_sharding(prepared, workers))
        try:
            history = model.fit(pipeline.for_training(prepared, spec.batch_size, spec.seed, workers),
                                epochs=spec.epochs, steps_per_epoch=steps, callbacks=callbacks, verbose=0,
                                validation_data=pipeline.validation_dataset(prepared.x_val, prepared.y_val,
                                                                            spec.batch_size),
                                validation_steps=pipeline.validation_steps(prepared.val_rows, spec.batch_size))
        except tf.errors.OpError as e:
            raise TrainingFailed(f"training: {type(e).__name__}: {e.message.splitlines()[0]}") from None
        if chief:
            # fit() completed, so the attempt has nothing left to resume (tf-keras already emptied the backup).
            shutil.rmtree(artifacts.backup_dir(config.version_dir, spec.attempt), ignore_errors=True)
        epochs = _history(history, epoch_log)
        losses = [row["loss"] for row in epochs]
        if not losses or not all(math.isfinite(v) for v in losses):
            raise TrainingFailed(f"training: the loss became {losses[-1] if losses else 'undefined'} "
                                 f"(try a lower training.learningRate)")

        # Evaluate and export a plain float32 copy of the trained weights: no strategy, so no collective op
        # can leave workers waiting on each other after fit (mixed precision keeps float32 variables).
        acceleration.float32_policy()
        trained = build_model(config, inputs)
        trained.set_weights(model.get_weights())
        held_out = metrics.reportable(metrics.evaluate(prepared.task, prepared.y_val, trained.predict(
            prepared.x_val, batch_size=PREDICT_BATCH, verbose=0)), config.metric, "held-out split")
        log.info("%s: held-out %s", label, " ".join(f"{k}={v:.4g}" for k, v in held_out.items()))
        if not chief:
            return StageReport(stage="train", succeeded=True, version=config.model.version, attempt=spec.attempt,
                               metric=config.metric, metrics=held_out, training=ran,
                               message=f"{label}: trained; the chief writes the artifacts")
        training_info = {"epochsRun": len(epochs), "resumedAtEpoch": epoch_log.resumed_at_epoch,
                         "samplesPerEpoch": steps * spec.batch_size,
                         "samplesPerSecond": round(epoch_log.samples_per_second, 1),
                         "workers": worker_env.worker_count(tf_config),
                         "replicas": strategy.num_replicas_in_sync, "strategy": spec.strategy, **ran,
                         **({"feedback": fed} if fed else {})}
        with artifacts.staged_version(config.version_dir) as staging:
            _write_version(staging, config, prepared, trained, held_out, epochs, training_info, log_dir)
        # The serving pods mount the model's feedback directory: a subPath must exist, and be ours (a
        # directory the kubelet creates for a missing one belongs to root).
        m = config.model
        fb_contract.feedback_dir(config.storage_root, m.namespace, m.name, m.uid).mkdir(exist_ok=True)
    return StageReport(stage="train", succeeded=True, version=config.model.version, attempt=spec.attempt,
                       metric=config.metric, metrics=held_out, artifact_path=str(config.version_dir), training=ran)


def _history(history: "keras.callbacks.History", epoch_log: EpochLog) -> list[dict]:
    first = epoch_log.resumed_at_epoch or 0
    keys = list(history.history)
    return [{"epoch": first + i + 1, **{k: float(history.history[k][i]) for k in keys},
             "seconds": round(epoch_log.epoch_seconds[i], 4)}
            for i in range(len(history.history.get("loss", [])))]


def _write_version(root: Path, config: JobConfig, prepared: data.Prepared, model: "keras.Model",
                   held_out: dict[str, float], epochs: list[dict], training_info: dict, log_dir: Path) -> None:
    export.save(model, root)
    if log_dir.is_dir():
        # The scratch directory is under /tmp (an emptyDir in a pod), the staging directory on the storage
        # volume: two filesystems, where a rename fails with EXDEV. shutil.move copies across them.
        shutil.move(str(log_dir), str(root / "logs"))
    artifacts.write_json(root / "metrics.json", {"metric": config.metric, "heldOut": held_out,
                                                 "validationRows": prepared.val_rows,
                                                 "trainingRows": prepared.train_rows,
                                                 "training": training_info})
    artifacts.write_json(root / "history.json", {"epochs": epochs, "resumedAtEpoch": training_info["resumedAtEpoch"]})
    signature = export.signature(model)
    manifest = mf.Manifest(
        namespace=config.model.namespace, name=config.model.name, version=config.model.version,
        task=prepared.task, feature_names=list(prepared.feature_names), classes=list(prepared.classes),
        servables={"savedModel": export.SAVED_MODEL_DIR, "keras": export.KERAS_FILE},
        metrics=held_out, created_at=artifacts.now_iso(), signature=signature,
        reference=reference.of(prepared.x_train, list(prepared.feature_names), signature),
        extra={"template": config.model.template,
               "metric": config.metric, "dataFingerprint": prepared.fingerprint,
               "parameters": int(model.count_params()), "training": training_info})
    manifest.add_files(root, artifacts.list_files(root))
    manifest.write(root)

