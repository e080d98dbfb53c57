"""Collected feedback added to the training split: deduplicated, capped, the validation split untouched."""
import numpy as np
import pytest

from modelops_contracts import feedback as contract
from modelops_contracts import jobconfig
from modelops_training import data
from modelops_training.errors import BadData
from modelops_training.feedback_data import extend


def config(directory, share=0.5, before=None, **overrides):
    d = {"apiVersion": "modelops.io/v1alpha1", "kind": "JobConfig", "stage": "train", "metric": "accuracy",
         "model": {"namespace": "ml", "name": "m", "version": "v2", "template": "mlp-classifier"},
         "data": {"uri": "builtin:x"}, "storageRoot": "/s",
         "feedback": {"directory": str(directory), "maxShare": share, "writtenBefore": before}}
    d.update(overrides)
    return jobconfig.JobConfig.from_dict(d)


def prepared(rows=20):
    x = np.arange(rows * 2, dtype=np.float32).reshape(rows, 2)
    table = data.Table(features=x, target=np.array(["no", "yes"] * (rows // 2)), feature_names=["a", "b"], source="t")
    return data.prepare(table, "classification", 0.25, seed=3)


def rec(pid, rows, truth, at, joined=True, version="v1"):
    return contract.FeedbackRecord(pid, version, inputs={"features": rows} if joined else {},
                                   prediction=[[0.5, 0.5]] * len(truth) if joined else None,
                                   truth=truth, time=at, joined=joined)


def test_joined_feedback_is_added_to_training_only_and_the_fingerprint_stays(tmp_path):
    contract.write_segment(tmp_path, "r1", 0, 1000, [rec("a", [[100.0, 101.0], [102.0, 103.0]], ["yes", "no"], 1.0),
                                                     rec("b", [], ["no"], 2.0, joined=False)])
    contract.write_segment(tmp_path, "r2", 0, 2000, [rec("a", [[100.0, 101.0], [102.0, 103.0]], ["yes", "no"], 3.0),
                                                     rec("c", [[104.0, 105.0]], ["yes"], 4.0)])
    before = prepared()
    after, info = extend(before, config(tmp_path))
    assert after.fingerprint == before.fingerprint
    assert np.array_equal(after.x_val, before.x_val) and np.array_equal(after.y_val, before.y_val)
    assert after.train_rows == before.train_rows + 3          # "a" once, "b" unjoined, "c"
    assert after.x_train[-3:].tolist() == [[100.0, 101.0], [102.0, 103.0], [104.0, 105.0]]
    yes = before.classes.index("yes")
    assert after.y_train[-3:].tolist() == [yes, 1 - yes, yes] and after.y_train.dtype == before.y_train.dtype
    assert info["rowsAdded"] == 3 and info["segments"] == 2 and info["records"] == 2 and len(info["sha256"]) == 64


def test_the_share_of_feedback_is_capped_keeping_the_newest(tmp_path):
    records = [rec(f"p{i}", [[float(i), 0.0]], ["yes"], float(i)) for i in range(100)]
    contract.write_segment(tmp_path, "r", 0, 1, records)
    before = prepared()                                        # 15 training rows
    after, info = extend(before, config(tmp_path, share=0.25))
    assert info["cap"] == 5 and info["rowsAdded"] == 5
    assert (after.train_rows - before.train_rows) / after.train_rows <= 0.25
    assert after.x_train[-5:, 0].tolist() == [95.0, 96.0, 97.0, 98.0, 99.0]


def test_records_that_do_not_fit_the_model_are_skipped_and_counted(tmp_path):
    contract.write_segment(tmp_path, "r", 0, 1, [
        rec("wide", [[1.0, 2.0, 3.0]], ["yes"], 1.0),                        # three features, the model has two
        rec("cow", [[1.0, 2.0]], ["cow"], 2.0),                              # a class the data never had
        contract.FeedbackRecord("two", "v1", inputs={"a": [[1.0]], "b": [[2.0]]}, truth=["yes"], time=3.0),
        rec("ok", [[7.0, 8.0]], ["no"], 4.0)])
    after, info = extend(prepared(), config(tmp_path))
    assert info["rowsAdded"] == 1 and info["skipped"] == {"inputs": 2, "truth": 1}
    assert after.x_train[-1].tolist() == [7.0, 8.0]


def test_a_bad_segment_fails_the_stage_naming_the_file_and_line(tmp_path):
    good = contract.write_segment(tmp_path, "r", 0, 1, [rec("a", [[1.0, 2.0]], ["yes"], 1.0)])
    bad = contract.write_segment(tmp_path, "r", 1, 2, [rec("b", [[1.0, 2.0]], ["yes"], 1.0)])
    bad.write_text(bad.read_text().replace('"truth":["yes"]', '"truth":"yes"'))
    with pytest.raises(BadData, match=rf"feedback: {bad}:2: truth"):
        extend(prepared(), config(tmp_path))
    assert good.exists()


def test_regression_truths_are_numbers_and_feedback_off_changes_nothing(tmp_path):
    contract.write_segment(tmp_path, "r", 0, 1, [rec("a", [[1.0, 2.0]], [2.5], 1.0),
                                                 rec("b", [[1.0, 2.0]], ["high"], 2.0)])
    x = np.arange(40, dtype=np.float32).reshape(20, 2)
    before = data.prepare(data.Table(x, np.arange(20.0), ["a", "b"], "t"), "regression", 0.25, seed=3)
    after, info = extend(before, config(tmp_path, metric="mse", model={
        "namespace": "ml", "name": "m", "version": "v2", "template": "mlp-regressor"}))
    assert after.y_train[-1] == pytest.approx(2.5) and info["skipped"]["truth"] == 1
    off = config(tmp_path)
    off = jobconfig.JobConfig.from_dict({**off.to_dict(), "feedback": None})
    assert extend(before, off) == (before, {})


def test_a_missing_feedback_directory_adds_nothing(tmp_path):
    after, info = extend(prepared(), config(tmp_path / "never-written"))
    assert info["rowsAdded"] == 0 and after.train_rows == prepared().train_rows


def test_only_segments_written_before_the_jobs_cutoff_are_read_so_every_worker_reads_the_same(tmp_path):
    contract.write_segment(tmp_path, "r", 0, 1000, [rec("early", [[1.0, 2.0]], ["yes"], 1.0)])
    contract.write_segment(tmp_path, "r", 1, 5000, [rec("late", [[3.0, 4.0]], ["yes"], 5.0)])
    after, info = extend(prepared(), config(tmp_path, before=5000))
    assert info["rowsAdded"] == 1 and after.x_train[-1].tolist() == [1.0, 2.0]


def test_reading_stops_at_the_cap_and_an_older_bad_segment_beyond_it_is_not_read(tmp_path):
    old = contract.write_segment(tmp_path, "r", 0, 1000, [rec("old", [[1.0, 2.0]], ["yes"], 1.0)])
    old.write_text("not a segment any more")
    for i in range(3):
        contract.write_segment(tmp_path, "r", i + 1, 2000 + i, [rec(f"n{i}", [[float(i), 0.0]] * 3, ["no"] * 3, 2.0 + i)])
    after, info = extend(prepared(), config(tmp_path, share=0.25))     # cap 5 of 15 training rows
    assert info["cap"] == 5 and info["rowsAdded"] == 5 and info["segments"] == 2
    assert after.x_train[-5:, 0].tolist() == [1.0, 1.0, 2.0, 2.0, 2.0]
