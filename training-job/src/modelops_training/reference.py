"""The training data's distribution per feature, for the manifest (contracts.drift.Reference).

The server scores live inputs against it; without one a version serves as before and reports no
drift. Only a table feeding a one-input model gets a reference: the columns of an image are pixels,
and named inputs are not one feature vector.
"""
from __future__ import annotations

import numpy as np
from modelops_contracts import drift
from modelops_contracts.signature import Signature

from . import features as feats


def table_reference(x: np.ndarray, names: list[str], input_name: str, bins: int = drift.BINS) -> drift.Reference:
    """Quantile cut points per column and each bin's share of the rows, binned as the contract says."""
    x = np.asarray(x, dtype=np.float64)
    if len(names) != x.shape[1]:
        names = [f"{input_name}[{i}]" for i in range(x.shape[1])]
    cuts = np.linspace(0.0, 1.0, bins + 1)[1:-1]
    columns = []
    for name, column in zip(names, x.T):
        edges = np.unique(np.quantile(column, cuts))
        counts = np.bincount(np.searchsorted(edges, column, side="right"), minlength=len(edges) + 1)
        columns.append(drift.FeatureBins(name, tuple(edges.tolist()), tuple((counts / len(column)).tolist())))
    return drift.Reference(input_name, len(x), tuple(columns))


def of(x_train: feats.Features, feature_names: list[str], signature: Signature) -> drift.Reference | None:
    """The reference of a one-input model trained on a table of at most MAX_FEATURES columns, else None."""
    if len(signature.inputs) != 1 or not feats.is_table(x_train) or x_train.shape[1] > drift.MAX_FEATURES:
        return None
    return table_reference(x_train, feature_names, signature.inputs[0].name)
