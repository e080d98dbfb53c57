"""The model's signature: each named input and output tensor with its dtype and shape.

The first dimension of every tensor is the batch and is written -1; other dimensions are fixed
sizes, or -1 where the model accepts any size. The trainer records the signature in the artifact
manifest, compression keeps it, the server validates requests against it and reports it as
metadata. Manifests written before the signature existed describe one float32 input of
`featureNames` and one float32 output; `legacy()` derives that signature for them.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, Mapping, Sequence

# Names as NumPy spells them; the serving image maps them to each protocol's names.
DTYPES = ("float32", "float16", "float64", "int8", "uint8", "int16", "int32", "int64", "bool", "string")
# The names of a one-input, one-output model, as the training image has always exported them.
DEFAULT_INPUT = "features"
DEFAULT_OUTPUT = "output"
BATCH = -1


class SignatureError(ValueError):
    """A signature that is malformed; the message names the tensor and field at fault."""


@dataclass(frozen=True)
class TensorSpec:
    name: str
    dtype: str
    shape: tuple[int, ...]     # shape[0] is BATCH

    @property
    def item_shape(self) -> tuple[int, ...]:
        """The shape of one example: everything after the batch dimension."""
        return self.shape[1:]

    def describe(self) -> str:
        return f"{self.name!r} ({self.dtype} {list(self.shape)})"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "shape": list(self.shape)}

    @classmethod
    def from_dict(cls, d: Any, where: str) -> "TensorSpec":
        if not isinstance(d, Mapping):
            raise SignatureError(f"{where}: expected an object with name, dtype and shape")
        name, dtype, shape = d.get("name"), d.get("dtype"), d.get("shape")
        if not isinstance(name, str) or not name:
            raise SignatureError(f"{where}.name: expected a non-empty string, got {name!r}")
        if dtype not in DTYPES:
            raise SignatureError(f"{where}.dtype: {dtype!r} is not one of {', '.join(DTYPES)}")
        if (not isinstance(shape, list) or not shape
                or not all(isinstance(n, int) and not isinstance(n, bool) and (n > 0 or n == -1) for n in shape)):
            raise SignatureError(f"{where}.shape: expected a list of positive sizes or -1, got {shape!r}")
        if shape[0] != BATCH:
            raise SignatureError(f"{where}.shape: the first dimension is the batch and must be -1, got {shape!r}")
        return cls(name, dtype, tuple(shape))


@dataclass(frozen=True)
class Signature:
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    def input(self, name: str) -> TensorSpec | None:
        return self._inputs_by_name.get(name)

    @cached_property     # looked up for every tensor of every request
    def _inputs_by_name(self) -> dict[str, TensorSpec]:
        return {t.name: t for t in self.inputs}

    def output(self, name: str) -> TensorSpec | None:
        return next((t for t in self.outputs if t.name == name), None)

    @cached_property     # asked on every request the server parses
    def is_tabular(self) -> bool:
        """One float32 input of rows [n, F]: the server's fast path and TF Serving's named-feature rows."""
        return len(self.inputs) == 1 and self.inputs[0].dtype == "float32" and len(self.inputs[0].shape) == 2

    def to_dict(self) -> dict[str, Any]:
        return {"inputs": [t.to_dict() for t in self.inputs], "outputs": [t.to_dict() for t in self.outputs]}

    @classmethod
    def from_dict(cls, d: Any, where: str = "signature") -> "Signature":
        if not isinstance(d, Mapping):
            raise SignatureError(f"{where}: expected an object with inputs and outputs")
        parts = {}
        for key in ("inputs", "outputs"):
            items = d.get(key)
            if not isinstance(items, list) or not items:
                raise SignatureError(f"{where}.{key}: expected a non-empty list of tensors")
            specs = tuple(TensorSpec.from_dict(item, f"{where}.{key}[{i}]") for i, item in enumerate(items))
            names = [t.name for t in specs]
            if len(set(names)) != len(names):
                raise SignatureError(f"{where}.{key}: names must be unique, got {names}")
            parts[key] = specs
        return cls(parts["inputs"], parts["outputs"])


def tabular(num_features: int, num_outputs: int) -> Signature:
    return Signature((TensorSpec(DEFAULT_INPUT, "float32", (BATCH, num_features)),),
                     (TensorSpec(DEFAULT_OUTPUT, "float32", (BATCH, num_outputs)),))


def legacy(feature_names: Sequence[str], task: str, classes: Sequence[Any]) -> Signature:
    """The signature every manifest written before this field implied."""
    outputs = len(classes) if task == "classification" and classes else (1 if task == "regression" else BATCH)
    return tabular(len(feature_names), outputs)
