"""The `cnn-classifier` template: a stack of conv blocks and a dense head over one image input.

Images enter as stored (uint8 pixels 0..255, or floats); uint8 is rescaled to [0, 1] inside the
model, so clients send the raw pixels and int8 compression keeps a uint8 input. Each param has
bounds (also in the CRD); a value outside them is refused naming the param.
"""
from __future__ import annotations

from typing import Any

from .errors import BadConfig
from .tf_runtime import keras

INPUT_NAME = "image"
# param -> (default, lowest, highest)
BOUNDS: dict[str, tuple[Any, Any, Any]] = {
    "filters": ([16, 32], 1, 512),        # per conv block
    "kernelSize": (3, 1, 7),
    "denseUnits": (64, 1, 4096),
    "dropout": (0.0, 0.0, 0.9),
}


def params_of(params: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(params) - set(BOUNDS))
    if unknown:
        raise BadConfig(f"model.params.{unknown[0]}: not a cnn-classifier param (have: {', '.join(BOUNDS)})")
    out = {}
    for name, (default, low, high) in BOUNDS.items():
        value = params.get(name, default)
        values = value if name == "filters" else [value]
        if name == "filters" and (not isinstance(value, list) or not 1 <= len(value) <= 4):
            raise BadConfig(f"model.params.filters: expected a list of 1 to 4 filter counts, got {value!r}")
        kind = float if name == "dropout" else int
        for v in values:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or (kind is int and not isinstance(v, int)) \
                    or not low <= v <= high:
                raise BadConfig(f"model.params.{name}: expected {kind.__name__}s in [{low}, {high}], got {value!r}")
        out[name] = value
    return out


def build(params: dict[str, Any], inputs) -> "keras.Model":
    p = params_of(params)
    if len(inputs.input_shapes) != 1:
        raise BadConfig(f"model.template: cnn-classifier takes one image input, the data has "
                        f"{len(inputs.input_shapes)} arrays (use a custom model)")
    dtype, shape = next(iter(inputs.input_shapes.values()))
    if len(shape) != 3:
        raise BadConfig(f"model.template: cnn-classifier takes images [height, width, channels], "
                        f"the data's examples have shape {list(shape)}")
    image = keras.Input(shape=shape, dtype=dtype, name=INPUT_NAME)
    x = keras.layers.Rescaling(1.0 / 255.0, name="rescale")(image) if dtype == "uint8" else \
        keras.layers.Rescaling(1.0, name="as_float")(image)
    for i, filters in enumerate(p["filters"]):
        x = keras.layers.Conv2D(filters, p["kernelSize"], padding="same", activation="relu", name=f"conv_{i}")(x)
        if min(x.shape[1], x.shape[2]) >= 2:
            x = keras.layers.MaxPooling2D(2, name=f"pool_{i}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(p["denseUnits"], activation="relu", name="dense")(x)
    if p["dropout"]:
        x = keras.layers.Dropout(p["dropout"], name="dropout")(x)
    out = keras.layers.Dense(inputs.num_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(image, out, name="cnn_classifier")
