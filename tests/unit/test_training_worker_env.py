"""The env contract that places a training process in its multi-worker cluster (no TensorFlow needed)."""
import json

import pytest

from modelops_training.errors import BadConfig
from modelops_training.worker_env import (epochs_between_backups, indexed_job_hosts, is_chief, task_label,
                                         tf_config_from_env, worker_count)


def test_no_worker_environment_means_a_single_process():
    assert tf_config_from_env({}) is None
    assert is_chief(None) and worker_count(None) == 1


def test_worker_hosts_and_the_completion_index_place_this_worker():
    config = tf_config_from_env({"MODELOPS_WORKER_HOSTS": "a:2222, b:2222", "JOB_COMPLETION_INDEX": "1"})
    assert config == {"cluster": {"worker": ["a:2222", "b:2222"]}, "task": {"type": "worker", "index": 1}}
    assert not is_chief(config) and worker_count(config) == 2 and task_label(config) == "worker 1/2"


def test_indexed_job_names_behind_the_headless_service():
    config = tf_config_from_env({"MODELOPS_JOB_NAME": "house-train-v3", "MODELOPS_SERVICE_NAME": "house-workers",
                                 "MODELOPS_WORKERS": "3", "MODELOPS_WORKER_PORT": "5000",
                                 "JOB_COMPLETION_INDEX": "0"})
    assert config["cluster"]["worker"] == ["house-train-v3-0.house-workers:5000", "house-train-v3-1.house-workers:5000",
                                           "house-train-v3-2.house-workers:5000"]
    assert is_chief(config)
    assert indexed_job_hosts("j", "s", 1) == ["j-0.s:2222"]


def test_an_explicit_tf_config_wins():
    given = {"cluster": {"chief": ["c:1"], "worker": ["w:1"]}, "task": {"type": "worker", "index": 0}}
    config = tf_config_from_env({"TF_CONFIG": json.dumps(given), "MODELOPS_WORKER_HOSTS": "x:1",
                                 "JOB_COMPLETION_INDEX": "0"})
    assert config == given
    assert not is_chief(config) and worker_count(config) == 2


@pytest.mark.parametrize("env, message", [
    ({"MODELOPS_WORKER_HOSTS": "a:1,b:1"}, "JOB_COMPLETION_INDEX: required"),
    ({"MODELOPS_WORKER_HOSTS": "a:1,b:1", "JOB_COMPLETION_INDEX": "2"}, "2 is outside the 2 worker hosts"),
    ({"MODELOPS_WORKER_HOSTS": "a:1", "JOB_COMPLETION_INDEX": "zero"}, "expected an integer, got 'zero'"),
    ({"MODELOPS_JOB_NAME": "j", "JOB_COMPLETION_INDEX": "0"}, "MODELOPS_SERVICE_NAME, MODELOPS_WORKERS: required"),
    ({"TF_CONFIG": "{not json"}, "TF_CONFIG: not JSON"),
])
def test_an_incomplete_worker_environment_is_a_config_error(env, message):
    with pytest.raises(BadConfig, match=message):
        tf_config_from_env(env)


@pytest.mark.parametrize("env, steps_per_epoch, expected", [
    ({}, 44, 12),                                        # default: at least 500 steps between backups
    ({}, 1000, 1),                                       # long epochs: every epoch
    ({"MODELOPS_BACKUP_EVERY_STEPS": "1"}, 44, 1),
    ({"MODELOPS_BACKUP_EVERY_STEPS": "100"}, 44, 3),
])
def test_backups_are_spaced_by_a_minimum_number_of_training_steps(env, steps_per_epoch, expected):
    assert epochs_between_backups(steps_per_epoch, env) == expected


def test_backup_spacing_must_be_a_positive_integer():
    with pytest.raises(BadConfig, match="MODELOPS_BACKUP_EVERY_STEPS: must be at least 1"):
        epochs_between_backups(10, {"MODELOPS_BACKUP_EVERY_STEPS": "0"})
