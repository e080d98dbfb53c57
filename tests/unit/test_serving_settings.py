"""The server's settings: flags, the environment variables the Deployment sets, and their docs."""
import os
import re
from pathlib import Path

import pytest

from modelops_serving.settings import default_interpreters, env_names, parse_settings

DOCS = Path(__file__).resolve().parents[2] / "docs" / "serving.md"


def test_environment_variables_configure_the_server():
    s = parse_settings([], {"MODELOPS_MODEL_DIR": "/models/v3", "MODELOPS_MODEL_NAME": "house",
                            "MODELOPS_PORT": "9000", "MODELOPS_MAX_BATCH_SIZE": "64", "MODELOPS_MAX_LATENCY_MS": "2.5",
                            "MODELOPS_MAX_QUEUE": "10", "MODELOPS_MAX_BODY_BYTES": "4096",
                            "MODELOPS_MAX_INSTANCES": "7", "MODELOPS_INTERPRETERS": "3"})
    assert (s.model_dir, s.model_name, s.port, s.max_batch_size, s.max_latency_ms) == ("/models/v3", "house", 9000, 64, 2.5)
    assert (s.max_queue, s.max_body_bytes, s.max_instances, s.interpreter_count) == (10, 4096, 7, 3)


def test_a_flag_wins_over_its_environment_variable():
    s = parse_settings(["--model-dir", "/a", "--model-name", "m", "--port", "81"], {"MODELOPS_PORT": "9000"})
    assert s.port == 81 and s.host == "127.0.0.1"


def test_interpreters_default_to_the_usable_cpus():
    assert parse_settings(["--model-dir", "/a", "--model-name", "m"], {}).interpreter_count >= 1


@pytest.mark.parametrize("env, named", [
    ({"MODELOPS_PORT": "eighty"}, "MODELOPS_PORT"),
    ({"MODELOPS_MAX_QUEUE": "-1"}, "MODELOPS_MAX_QUEUE"),
    ({"MODELOPS_MAX_BATCH_SIZE": "0"}, "max-batch-size"),
    ({"MODELOPS_POD_IP": "my-pod.local"}, "MODELOPS_POD_IP"),
    ({"MODELOPS_FEEDBACK_FLUSH_S": "0"}, "feedback-flush-s"),
    ({"MODELOPS_FEEDBACK_MAX_BYTES": "lots"}, "MODELOPS_FEEDBACK_MAX_BYTES"),
])
def test_a_bad_value_is_refused_naming_the_setting(env, named, capsys):
    with pytest.raises(SystemExit) as exit_:
        parse_settings([], {"MODELOPS_MODEL_DIR": "/a", "MODELOPS_MODEL_NAME": "m", **env})
    assert exit_.value.code == 2
    assert named in capsys.readouterr().err


def test_model_dir_and_name_are_required(capsys):
    with pytest.raises(SystemExit):
        parse_settings([], {})
    assert "--model-dir" in capsys.readouterr().err


def test_the_documented_environment_variables_are_exactly_the_ones_read():
    documented = set(re.findall(r"`(MODELOPS_[A-Z_]+)`", DOCS.read_text()))
    assert documented == set(env_names())


def test_a_pod_cpu_limit_caps_the_default_interpreter_count(tmp_path):
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text("150000 100000\n")          # limits.cpu: 1500m
    assert default_interpreters(str(cpu_max)) == min(2, len(os.sched_getaffinity(0)))
    cpu_max.write_text("max 100000\n")
    assert default_interpreters(str(cpu_max)) == len(os.sched_getaffinity(0))
