"""TFRecord files and image directories, read against a declared featureSpec: good files train, bad ones
are refused naming the file, the record and the feature."""
import dataclasses
import json
import re

import numpy as np
import pytest
from training_fixtures import job_config

from modelops_contracts import feedback as contract

from modelops_training import data, feedback_data, formats, record_stream
from modelops_training.errors import BadConfig, BadData
from modelops_training.tf_runtime import tf
from modelops_training.compress import compress
from modelops_training.train import train

pytestmark = pytest.mark.component
SPEC = {"image": {"dtype": "uint8", "shape": [8, 8, 1]}, "digit": {"dtype": "int64", "shape": []}}


def example(**features) -> bytes:
    def feature(value):
        value = np.asarray(value)
        if value.dtype.kind == "f":
            return tf.train.Feature(float_list=tf.train.FloatList(value=value.ravel()))
        return tf.train.Feature(int64_list=tf.train.Int64List(value=value.ravel()))
    return tf.train.Example(features=tf.train.Features(feature={k: feature(v) for k, v in features.items()})
                            ).SerializeToString()


def write_shards(root, shards: int = 3):
    digits = formats.digits_images()
    parts = np.array_split(np.arange(len(digits.target)), shards)
    for i, part in enumerate(parts):
        with tf.io.TFRecordWriter(str(root / f"digits.tfrecord-{i:05d}")) as writer:
            for j in part:
                writer.write(example(image=digits.features[j], digit=digits.target[j]))
    return digits


def load(tmp_path, uri, spec=SPEC, target="digit", template="cnn-classifier"):
    return data.load(job_config(tmp_path, model={"template": template},
                                data={"uri": uri, "target": target, "featureSpec": spec}))


def test_sharded_tfrecords_read_back_as_the_images_they_hold_and_a_cnn_trains_on_them(tmp_path):
    digits = write_shards(tmp_path)
    prepared = load(tmp_path, str(tmp_path / "digits.tfrecord-*"))
    assert prepared.train_rows + prepared.val_rows == len(digits.target)
    assert prepared.x_train.dtype == np.uint8 and prepared.x_train.shape[1:] == (8, 8, 1)
    config = job_config(tmp_path / "store", model={"template": "cnn-classifier"},
                        data={"uri": str(tmp_path / "digits.tfrecord-*"), "target": "digit", "featureSpec": SPEC},
                        training={"epochs": 4, "learningRate": 0.003})
    result = train(config)
    assert result.succeeded, result.message
    assert result.metrics["accuracy"] >= 0.85
    # Compression scans the same records to the same fingerprint, calibrates int8 on the kept training sample.
    compressed = compress(dataclasses.replace(config, stage="compress", compression=dataclasses.replace(
        config.compression, method="int8")))
    assert compressed.succeeded, compressed.message
    assert compressed.compression["metricBefore"] - compressed.compression["metricAfter"] <= 0.02


@pytest.mark.parametrize("records, words", [
    ([{"image": np.zeros((8, 8, 1), int), "digit": 1}, {"digit": 2}],
     "bad.tfrecord record 1: Feature: image (data type: int64) is required but could not be found."),
    ([{"image": np.zeros(63, int), "digit": 1}], "bad.tfrecord record 0: Key: image.  Can't parse serialized Example"),
    ([{"image": np.zeros(64), "digit": 1}], "bad.tfrecord record 0: Key: image.  Data types don't match. "
                                            "Data type: float but expected type: int64"),
    ([{"image": np.zeros((8, 8, 1), int), "digit": 1}, {"image": np.full((8, 8, 1), 300), "digit": 1}],
     "feature 'image' in bad.tfrecord record 1: 300 is outside uint8's 0..255"),
])
def test_a_bad_record_is_named_by_file_record_and_feature(tmp_path, records, words):
    with tf.io.TFRecordWriter(str(tmp_path / "bad.tfrecord")) as writer:
        for r in records:
            writer.write(example(**r))
    with pytest.raises(BadData, match=re.escape(words)):
        load(tmp_path, str(tmp_path / "bad.tfrecord"))


def test_a_corrupt_file_no_match_and_a_missing_spec_are_refused(tmp_path):
    (tmp_path / "junk.tfrecord").write_bytes(b"\x01" * 100)
    with pytest.raises(BadData, match="junk.tfrecord record 0 onwards: not a TFRecord file or corrupt"):
        load(tmp_path, str(tmp_path / "junk.tfrecord"))
    with pytest.raises(BadData, match="no TFRecord file matches"):
        load(tmp_path, str(tmp_path / "none-*.tfrecord"))
    with pytest.raises(BadConfig, match="data.featureSpec: required"):
        load(tmp_path, str(tmp_path / "junk.tfrecord"), spec=None)
    with pytest.raises(BadConfig, match="data.target: 'label' must name one of the featureSpec features"):
        load(tmp_path, str(tmp_path / "junk.tfrecord"), target="label")


def write_images(root, per_class: int = 3):
    for label, value in (("cat", 40), ("dog", 200)):
        (root / label).mkdir(parents=True)
        for i in range(per_class):
            pixels = np.full((12, 10, 3), value + i, np.uint8)
            (root / label / f"{i}.png").write_bytes(tf.io.encode_png(pixels).numpy())


def test_an_image_directory_is_decoded_and_resized_to_the_declared_shape(tmp_path):
    write_images(tmp_path / "pets")
    prepared = load(tmp_path, str(tmp_path / "pets"), spec={"image": {"dtype": "uint8", "shape": [6, 5, 1]}},
                    target=None)
    images = np.concatenate([prepared.x_train, prepared.x_val])
    assert images.shape == (6, 6, 5, 1) and images.dtype == np.uint8
    assert prepared.classes == ["cat", "dog"]
    labels = np.concatenate([prepared.y_train, prepared.y_val])
    # Grey levels survive decoding and resizing: each image's class is readable from its pixels.
    assert ((images.reshape(6, -1).mean(axis=1) > 120) == (labels == 1)).all()


def test_a_file_that_is_not_an_image_is_named_with_its_class_folder(tmp_path):
    write_images(tmp_path / "pets")
    (tmp_path / "pets" / "dog" / "3.png").write_bytes(b"not a png")
    with pytest.raises(BadData, match=r"data: dog/3.png does not decode as an image"):
        load(tmp_path, str(tmp_path / "pets"), spec={"image": {"dtype": "uint8", "shape": [6, 5, 1]}}, target=None)
    (tmp_path / "pets" / "dog" / "3.png").unlink()
    (tmp_path / "pets" / "dog" / "notes.txt").write_text("x")
    with pytest.raises(BadData, match=r"dog/notes.txt is not a .png, .jpg or .jpeg file"):
        load(tmp_path, str(tmp_path / "pets"), spec={"image": {"dtype": "uint8", "shape": [6, 5, 1]}}, target=None)


def shards(tmp_path, count: int):
    tmp_path.mkdir(parents=True, exist_ok=True)
    digits = write_shards(tmp_path, count)
    return digits, str(tmp_path / "digits.tfrecord-*")


def test_the_training_split_streams_from_the_files_and_the_split_is_the_in_memory_one(tmp_path):
    digits, uri = shards(tmp_path, 3)
    streamed = load(tmp_path, uri)
    in_memory = data.prepare(digits, "classification", 0.2, 42)   # the same records, split as any other data
    assert streamed.stream is not None and streamed.train_rows == in_memory.train_rows
    # All 1,438 training rows fit in the kept sample: the very rows, in the very order, in-memory data has
    # (int8 calibration and pruning see the same examples either way).
    assert streamed.train_rows <= record_stream.TRAIN_SAMPLE
    np.testing.assert_array_equal(streamed.x_train, in_memory.x_train)
    np.testing.assert_array_equal(streamed.y_train, in_memory.y_train)
    # The same held-out examples (the stream keeps them in file order, the in-memory split in shuffled order).
    def pairs(x, y):
        return sorted((label, image.tobytes()) for image, label in zip(x, y))
    assert pairs(streamed.x_val, streamed.y_val) == pairs(in_memory.x_val, in_memory.y_val)
    # One pass over the stream yields exactly the training split, each image with its own label.
    dataset = record_stream.training_dataset(streamed.stream, 1, seed=0, workers=1)
    x, y = next(iter(dataset.unbatch().batch(streamed.train_rows)))
    assert pairs(x.numpy(), y.numpy()) == pairs(in_memory.x_train, in_memory.y_train)


def test_the_fingerprint_follows_the_records_and_the_split(tmp_path):
    _, uri = shards(tmp_path, 2)
    first = load(tmp_path, uri).fingerprint
    assert load(tmp_path, uri).fingerprint == first
    reseeded = data.load(job_config(tmp_path, model={"template": "cnn-classifier"},
                                    data={"uri": uri, "target": "digit", "featureSpec": SPEC, "shuffleSeed": 7}))
    assert reseeded.fingerprint != first
    with tf.io.TFRecordWriter(str(tmp_path / "digits.tfrecord-00001")) as writer:   # one shard rewritten
        writer.write(example(image=np.zeros((8, 8, 1), int), digit=3))
        writer.write(example(image=np.ones((8, 8, 1), int), digit=4))
    assert load(tmp_path, uri).fingerprint != first


def worker_images(stream, workers: int, index: int) -> set[bytes]:
    """What worker `index` of `workers` reads in one epoch's share, through the auto-shard rewrite
    MultiWorkerMirrored applies."""
    from tensorflow.python.data.experimental.ops.distribute import _AutoShardDataset
    dataset = record_stream.training_dataset(stream, 1, seed=0, workers=workers).unbatch()
    sharded = _AutoShardDataset(dataset, workers, index, num_replicas=workers)
    return {x.numpy().tobytes() for x, _ in sharded.take(stream.train_rows // workers)}


def file_images(path) -> set[bytes]:
    parsed = tf.data.TFRecordDataset(str(path)).map(lambda r: tf.io.parse_single_example(
        r, {"image": tf.io.FixedLenFeature([8, 8, 1], tf.int64)}))
    return {np.asarray(p["image"], np.uint8).tobytes() for p in parsed.as_numpy_iterator()}


def test_workers_shard_by_file_when_there_are_enough_files_else_by_record(tmp_path):
    _, uri = shards(tmp_path / "three", 3)
    stream = load(tmp_path, uri).stream
    assert stream.shard_policy(2) == "FILE" and stream.shard_policy(4) == "DATA"
    files = [file_images(tmp_path / "three" / f"digits.tfrecord-{i:05d}") for i in range(3)]
    first, second = worker_images(stream, 2, 0), worker_images(stream, 2, 1)
    assert first <= files[0] | files[2] and second <= files[1]   # each worker reads only its own files
    assert not first & second

    _, uri = shards(tmp_path / "one", 1)
    stream = load(tmp_path, uri).stream
    assert stream.shard_policy(2) == "DATA"
    first, second = worker_images(stream, 2, 0), worker_images(stream, 2, 1)
    assert first and second and not first & second               # one file, its records split between workers


def test_several_inputs_and_a_string_target_stream_as_named_arrays(tmp_path):
    digits = formats.digits_images()
    spec = {"image": {"dtype": "uint8", "shape": [8, 8, 1]}, "parity": {"dtype": "float32", "shape": [1]},
            "label": {"dtype": "string", "shape": []}}
    with tf.io.TFRecordWriter(str(tmp_path / "two.tfrecord")) as writer:
        for image, digit in zip(digits.features[:200], digits.target[:200]):
            label = tf.train.Feature(bytes_list=tf.train.BytesList(value=[("odd" if digit % 2 else "even").encode()]))
            record = tf.train.Example.FromString(example(image=image, parity=np.float32([digit % 2])))
            record.features.feature["label"].CopyFrom(label)
            writer.write(record.SerializeToString())
    prepared = load(tmp_path, str(tmp_path / "two.tfrecord"), spec=spec, target="label")
    assert prepared.classes == ["even", "odd"] and set(prepared.x_val) == {"image", "parity"}
    # The label follows its record: parity 1 is "odd" in the held-out split and in the stream.
    assert (prepared.x_val["parity"][:, 0] == prepared.y_val).all()
    x, y = next(iter(record_stream.training_dataset(prepared.stream, prepared.train_rows, 0, 1)))
    assert x["image"].dtype == tf.uint8 and (x["parity"].numpy()[:, 0] == y.numpy()).all()


def inverted_feedback(directory, digits, count: int) -> None:
    """`count` joined records of one image each: the digits with their pixels inverted, labeled."""
    records = [contract.FeedbackRecord(f"p-{i}", "v1", inputs={"image": [(16 - digits.features[i]).tolist()]},
                                       prediction=[[0.1] * 10], truth=[int(digits.target[i])], time=1.0)
               for i in range(count)]
    contract.write_segment(directory, "pod-a", 0, 1, records)


def test_streamed_records_train_with_feedback_drawn_beside_them_and_shard_by_record(tmp_path):
    digits, uri = shards(tmp_path / "data", 2)
    feedback = tmp_path / "feedback"
    feedback.mkdir()
    inverted_feedback(feedback, digits, 300)
    config = job_config(tmp_path / "store", model={"template": "cnn-classifier"},
                        data={"uri": uri, "target": "digit", "featureSpec": SPEC},
                        training={"epochs": 3, "learningRate": 0.003},
                        feedback={"directory": str(feedback), "maxShare": 0.4})
    records = data.load(config)
    prepared, fed = feedback_data.extend(records, config)
    stream = prepared.stream
    assert fed["rowsAdded"] == 300 and stream.extra_rows == 300
    assert prepared.train_rows == records.train_rows + 300 and prepared.val_rows == records.val_rows
    assert stream.shard_policy(2) == "DATA", "only files shard by FILE; the feedback is in memory"

    # About 300 of every 1,738 examples drawn are feedback, each with its own label.
    x, y = next(iter(record_stream.training_dataset(stream, 1738, seed=0, workers=1)))
    labels = {(16 - digits.features[i]).astype(np.uint8).tobytes(): digits.target[i] for i in range(300)}
    drawn = [(image.tobytes(), label) for image, label in zip(x.numpy(), y.numpy())]
    from_feedback = [(image, label) for image, label in drawn if image in labels]
    assert 200 <= len(from_feedback) <= 400, len(from_feedback)
    assert all(labels[image] == label for image, label in from_feedback)
    # MultiWorkerMirrored's auto-shard rewrite accepts the mix, and each worker's share holds both kinds.
    for index in (0, 1):
        share = worker_images(stream, 2, index)
        assert share & labels.keys() and share - labels.keys(), f"worker {index} of 2"

    result = train(config)
    assert result.succeeded, result.message
    stats = json.loads((config.version_dir / "metrics.json").read_text())
    assert stats["training"]["feedback"]["rowsAdded"] == 300 and stats["trainingRows"] == prepared.train_rows
