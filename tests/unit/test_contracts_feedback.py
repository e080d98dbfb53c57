"""Feedback segments, from both sides: what a replica writes, the trainer reads back unchanged;
and the job config's feedback field."""
import json
import os

import pytest

from modelops_contracts import feedback as fb
from modelops_contracts import jobconfig
from test_contracts import sample_config


def record(pid="abc-1", rows=2, **overrides):
    d = dict(prediction_id=pid, version="v1", inputs={"features": [[0.5, 1.0]] * rows},
             prediction=[[0.1, 0.9]] * rows, truth=["yes"] * rows, time=1_700_000_000.25)
    d.update(overrides)
    return fb.FeedbackRecord(**d)


def test_a_written_segment_reads_back_record_for_record(tmp_path):
    records = [record("a-1"), record("a-2", rows=1, truth=[3.5]),
               fb.FeedbackRecord("b-9", "v1", truth=[1], time=5.0, joined=False)]
    path = fb.write_segment(tmp_path, "serve-7f9-xk2", 3, 1_700_000_000_123, records)
    assert path.name == "seg-0001700000000123-serve-7f9-xk2-000003.jsonl"
    assert fb.read_segment(path) == records
    assert [p for p, _ in fb.read_segments(tmp_path)] == [path]


def test_segments_list_oldest_first_whoever_wrote_them_and_skip_temporaries(tmp_path):
    late = fb.write_segment(tmp_path, "a", 1, 2000, [record()])
    early = fb.write_segment(tmp_path, "z", 9, 1000, [record()])
    (tmp_path / ".seg-0000000000000500-a-000000.jsonl.tmp").write_text("half")
    (tmp_path / "notes.txt").write_text("not a segment")
    assert fb.list_segments(tmp_path) == [early, late]


def test_a_replica_name_cannot_escape_the_directory(tmp_path):
    path = fb.write_segment(tmp_path, "../../etc/x", 0, 1, [record()])
    assert path.parent == tmp_path and "/" not in path.name[4:]


def test_the_feedback_directory_sits_beside_the_versions():
    assert fb.feedback_dir("/mnt/pvc/models", "ml", "house", "u-1").as_posix() == "/mnt/pvc/models/ml/house/u-1/feedback"
    assert (fb.feedback_dir("/s", "ml", "house").parent
            == jobconfig.version_dir("/s", "ml", "house", "v1").parent)


@pytest.mark.parametrize("mutate, where", [
    (lambda lines: lines[:2], "header says 2 records, the file holds 1"),
    (lambda lines: [lines[0], "{not json"] + lines[2:], ":2: not JSON"),
    (lambda lines: ['{"kind": "Other"}'] + lines[1:], ":1: not a FeedbackSegment header"),
    (lambda lines: [lines[0], lines[1].replace('"truth":["yes","yes"]', '"truth":["yes"]')] + lines[2:],
     ":2: inputs.features: expected 1 rows"),
    (lambda lines: [lines[0], lines[1], lines[2].replace('"time":1700000000.25', '"time":NaN')],
     ":3: NaN is not a number"),
    (lambda lines: [lines[0], lines[1], lines[2].replace('"id":"b"', '"id":""')], ":3: id: expected"),
    (lambda lines: [], "empty"),
])
def test_a_bad_segment_is_named_with_its_line(tmp_path, mutate, where):
    path = fb.write_segment(tmp_path, "r", 0, 1, [record("a"), record("b")])
    path.write_text("\n".join(mutate(path.read_text().splitlines())))
    with pytest.raises(fb.SegmentError) as e:
        fb.read_segment(path)
    assert str(path) in str(e.value) and where in str(e.value)


def test_a_non_finite_number_is_never_written(tmp_path):
    with pytest.raises(ValueError):
        fb.write_segment(tmp_path, "r", 0, 1, [record(inputs={"features": [[float("nan")], [1.0]]})])
    assert fb.list_segments(tmp_path) == [] and os.listdir(tmp_path) == []


def test_a_segment_pruned_while_reading_is_skipped_not_an_error(tmp_path, monkeypatch):
    a = fb.write_segment(tmp_path, "r", 0, 1, [record("a")])
    b = fb.write_segment(tmp_path, "r", 1, 2, [record("b")])
    real = fb.read_segment

    def pruned_first(path):
        # A replica's disk cap removes the oldest segment between listing and reading it.
        if path == a:
            a.unlink()
        return real(path)
    monkeypatch.setattr(fb, "read_segment", pruned_first)
    assert list(fb.read_segments(tmp_path)) == [(b, [record("b")])]


def test_job_config_carries_the_feedback_source_both_ways():
    cfg = jobconfig.JobConfig.from_dict(sample_config(feedback={"directory": "/mnt/pvc/m/ml/house/u/feedback",
                                                                "maxShare": 0.3, "writtenBefore": 1_700_000_000_000}))
    assert cfg.feedback == jobconfig.FeedbackSource("/mnt/pvc/m/ml/house/u/feedback", 0.3, 1_700_000_000_000)
    assert jobconfig.JobConfig.from_dict(json.loads(cfg.to_json())) == cfg
    short = jobconfig.JobConfig.from_dict(sample_config(feedback={"directory": "/f"}))
    assert short.feedback == jobconfig.FeedbackSource("/f", 0.2, None)


def test_a_segment_name_says_when_it_was_written(tmp_path):
    path = fb.write_segment(tmp_path, "r", 0, 1_700_000_000_123, [record()])
    assert fb.written_at(path) == 1_700_000_000_123
    with pytest.raises(fb.SegmentError, match="not a segment name"):
        fb.written_at(tmp_path / "notes.txt")


def test_feedback_is_off_by_default_and_absent_from_the_wire():
    cfg = jobconfig.JobConfig.from_dict(sample_config())
    assert cfg.feedback is None and "feedback" not in cfg.to_dict()


@pytest.mark.parametrize("value, field", [({"maxShare": 0.2}, "feedback.directory"),
                                          ({"directory": "/f", "maxShare": 0.95}, "feedback.maxShare"),
                                          ({"directory": "", "maxShare": 0.2}, "feedback.directory"),
                                          ({"directory": "/f", "writtenBefore": "now"}, "feedback.writtenBefore"),
                                          ("yes", "feedback")])
def test_a_bad_feedback_source_names_the_field(value, field):
    with pytest.raises(jobconfig.ConfigError, match=field.replace(".", r"\.")):
        jobconfig.JobConfig.from_dict(sample_config(feedback=value))
