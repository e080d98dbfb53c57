"""The naive service most tutorials show: Flask's own server, the Keras model, `model.predict` per request.

Written as the tutorials write it, on purpose: it is the baseline, not a straw man to tune.
Usage: python flask_keras_server.py MODEL_KERAS PORT
"""
import os
import sys

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")   # the model was saved by tf-keras, as the trainer does

import numpy as np  # noqa: E402
import tf_keras as keras  # noqa: E402
from flask import Flask, jsonify, request  # noqa: E402

model = keras.models.load_model(sys.argv[1])
app = Flask(__name__)


@app.route("/v1/models/digits:predict", methods=["POST"])
def predict():
    data = request.get_json()
    predictions = model.predict(np.array(data["instances"]))
    return jsonify({"predictions": predictions.tolist()})


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(sys.argv[2]))
