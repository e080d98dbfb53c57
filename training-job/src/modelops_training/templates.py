"""Model architectures: the built-in templates and the hook for a user's own module.

The table templates take ONE float32 input `features` [batch, num_features] of RAW features (a
Normalization layer holding the training split's mean and variance is the first layer); the
cnn-classifier takes ONE image input `image` [batch, H, W, C] as stored (uint8 pixels are rescaled
inside the model). Custom models may take any named N-d inputs, matching the data's arrays. Every
model returns ONE float32 output: [batch, 1] for regression, [batch, num_classes] probabilities for
classification; `check_signature` enforces that, and the manifest records whatever inputs it has.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from modelops_contracts.jobconfig import JobConfig

from . import cnn, features as feats
from .data import Prepared, import_custom_module
from .errors import BadConfig
from .tf_runtime import keras

DEFAULT_HIDDEN_UNITS = (512, 256)   # ≥ 100k parameters on the bundled data, so compression ratios mean something
DEFAULT_DROPOUT = 0.0


@dataclass(frozen=True)
class ModelInputs:
    """What a model builder learns about the data (custom modules receive this too)."""
    task: str
    num_features: int
    num_classes: int
    feature_names: list[str]
    mean: np.ndarray | None   # tables only: per-column statistics of the training split
    variance: np.ndarray | None
    target_mean: float        # regression only (classification: 0)
    target_std: float         # regression only (classification: 1)
    # Each input array's (dtype, shape after the batch), keyed by name ("" for a single unnamed array).
    input_shapes: dict[str, tuple[str, tuple[int, ...]]] = field(default_factory=dict)

    @classmethod
    def of(cls, data: Prepared) -> "ModelInputs":
        regression = data.task == "regression"
        table = feats.is_table(data.x_train)
        # Streamed data: the statistics of the whole training split, which x_train only samples.
        stream = data.stream
        y = data.y_train if stream is None else stream.labels[stream.train_mask]
        mean = (data.x_train.mean(axis=0) if stream is None else stream.mean) if table else None
        variance = (data.x_train.var(axis=0) if stream is None else stream.variance) if table else None
        return cls(target_mean=float(y.mean()) if regression else 0.0,
                   target_std=float(y.std() or 1.0) if regression else 1.0,
                   task=data.task, num_features=data.num_features, num_classes=len(data.classes),
                   feature_names=list(data.feature_names), mean=mean,
                   variance=_usable_variance(variance) if table else None,
                   input_shapes={k: (str(a.dtype), tuple(a.shape[1:])) for k, a in feats.named(data.x_train)})

    def normalization(self) -> "keras.layers.Layer":
        """Normalization learned on the training split, stored in the model so serving sends raw features."""
        return keras.layers.Normalization(mean=self.mean, variance=self.variance, name="normalize")

    def output_layers(self) -> list:
        if self.task == "classification":
            return [keras.layers.Dense(self.num_classes, activation="softmax", name="probabilities", dtype="float32")]
        # The Dense unit predicts the target in standard units and Rescaling maps it back to raw units:
        # the loss stays in the target's units while the last layer's weights stay small, which trains
        # faster and quantizes better than a Dense layer that must reach e.g. 300 on its own.
        # float32 whatever the precision policy: a float16 output rounds and overflows.
        return [keras.layers.Dense(1, name="standardized", dtype="float32"),
                keras.layers.Rescaling(scale=self.target_std, offset=self.target_mean, name="prediction",
                                       dtype="float32")]


def _usable_variance(variance: np.ndarray) -> np.ndarray:
    """Constant columns (e.g. always-blank pixels) get variance 1: they normalise to 0 either way, while
    Keras' 1/epsilon scale for them would dominate int8 quantization ranges and wreck the model."""
    return np.where(variance > 1e-12, variance, 1.0)


def build_model(config: JobConfig, inputs: ModelInputs) -> "keras.Model":
    template = config.model.template
    if template == "custom":
        model = _custom(config, inputs)
    elif template == "cnn-classifier":
        model = cnn.build(config.model.params, inputs)
    else:
        if inputs.mean is None:
            raise BadConfig(f"model.template: {template} takes a table of numbers; the data holds "
                            f"{', '.join(f'{d} {list(s)}' for d, s in inputs.input_shapes.values())} examples "
                            f"(use cnn-classifier or a custom model)")
        model = _sequential(inputs, [] if template == "linear-regression" else _hidden_layers(config.model.params))
    check_signature(model, inputs, template)
    return model


def _sequential(inputs: ModelInputs, hidden: list) -> "keras.Model":
    return keras.Sequential([keras.Input(shape=(inputs.num_features,), dtype="float32", name="features"),
                             inputs.normalization(), *hidden, *inputs.output_layers()])


def _hidden_layers(params: dict[str, Any]) -> list:
    units = params.get("hiddenUnits", list(DEFAULT_HIDDEN_UNITS))
    dropout = params.get("dropout", DEFAULT_DROPOUT)
    if not isinstance(units, list) or not units or not all(isinstance(u, int) and u > 0 for u in units):
        raise BadConfig(f"model.params.hiddenUnits: expected a non-empty list of positive integers, got {units!r}")
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise BadConfig(f"model.params.dropout: expected a number in [0, 1), got {dropout!r}")
    layers = []
    for i, n in enumerate(units):
        layers.append(keras.layers.Dense(n, activation="relu", name=f"hidden_{i}"))
        if dropout:
            layers.append(keras.layers.Dropout(dropout, name=f"dropout_{i}"))
    return layers


def _custom(config: JobConfig, inputs: ModelInputs) -> "keras.Model":
    path = config.model.custom_module
    module = import_custom_module(path)
    builder = getattr(module, "build_model", None)
    if not callable(builder):
        raise BadConfig(f"model.customModule: {path} has no build_model(config) function")
    model = builder(*_builder_args(builder, config, inputs, path))
    if not isinstance(model, keras.Model):
        raise BadConfig(f"model.customModule: {path}.build_model returned {type(model).__name__}, "
                        f"not a tf-keras Model")
    return model


def _builder_args(builder, config: JobConfig, inputs: ModelInputs, path: str) -> tuple:
    """`build_model(config, inputs)` gets the data's shape and normalization; `build_model(config)` works too."""
    for args in ((config, inputs), (config,)):
        try:
            inspect.signature(builder).bind(*args)
            return args
        except TypeError:
            continue
    raise BadConfig(f"model.customModule: {path}.build_model must take (config) or (config, inputs)")


def check_signature(model: "keras.Model", inputs: ModelInputs, template: str) -> None:
    """The model's inputs must take the data's arrays (by name when there are several) and its one
    output must fit the task."""
    expected_out = inputs.num_classes if inputs.task == "classification" else 1
    wanted = {k: s for k, (_, s) in inputs.input_shapes.items()}
    got = {name: tuple(t.shape[1:]) for name, t in zip(model.input_names, model.inputs)}
    if not _inputs_fit(got, wanted):
        shown = {k or "input": [-1, *s] for k, s in wanted.items()}
        takes = {k: [-1, *(-1 if d is None else d for d in s)] for k, s in got.items()}
        raise BadConfig(f"model ({template}): the data has inputs {shown}, the model takes {takes}")
    if len(model.outputs) != 1 or tuple(model.outputs[0].shape) != (None, expected_out):
        raise BadConfig(f"model ({template}): expects one output of shape [batch, {expected_out}], "
                        f"got {[tuple(t.shape) for t in model.outputs]}")


def _inputs_fit(got: dict[str, tuple], wanted: dict[str, tuple]) -> bool:
    """One unnamed data array fits any single input; named arrays must match the inputs name for name."""
    if set(wanted) == {""}:
        return len(got) == 1 and _fits(next(iter(got.values())), wanted[""])
    return set(got) == set(wanted) and all(_fits(got[k], wanted[k]) for k in wanted)


def _fits(model_shape: tuple, data_shape: tuple) -> bool:
    return len(model_shape) == len(data_shape) and all(m is None or m == d for m, d in zip(model_shape, data_shape))


def compile_model(model: "keras.Model", task: str, learning_rate: float, jit_compile: bool = False) -> None:
    # Under a mixed_float16 policy tf-keras wraps the optimizer in a LossScaleOptimizer by itself.
    if task == "classification":
        model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"], jit_compile=jit_compile)
    else:
        model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="mse", metrics=["mae"],
                      jit_compile=jit_compile)
