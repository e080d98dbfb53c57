"""The one place that imports TensorFlow, so every module gets the same Keras.

Keras 3 fails under MultiWorkerMirroredStrategy in `fit` with TF 2.21 while tf-keras (Keras 2) works
(see shared/design/TENSORFLOW.md), so the trainer uses tf-keras: TF_USE_LEGACY_KERAS must be set
before TensorFlow is first imported, which is why nothing else imports tensorflow directly.
"""
import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

if not keras.__version__.startswith("2."):
    raise ImportError(f"modelops-training needs tf-keras 2.x, got keras {keras.__version__}")

__all__ = ["tf", "keras"]
