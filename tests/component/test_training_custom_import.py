"""A custom module that the training image cannot import: the report says what to do, and names what is missing."""
from __future__ import annotations

import pytest
from modelops_contracts import report
from test_training_bad_input import assert_failed_cleanly
from training_fixtures import job_config

from modelops_training.train import train

pytestmark = pytest.mark.component


def test_a_module_missing_from_the_image_says_to_build_on_the_training_image(tmp_path):
    config = job_config(tmp_path / "store", model={"template": "custom", "customModule": "mypkg.churn"})
    assert_failed_cleanly(config, train(config), report.EXIT_BAD_CONFIG,
                          "model.customModule: cannot import 'mypkg.churn' in the training image",
                          "FROM the modelops training image", "spec.training.image")


def test_a_module_whose_dependency_is_missing_names_the_dependency(tmp_path, monkeypatch):
    (tmp_path / "needs_xgb.py").write_text("import xgboost_not_installed\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    config = job_config(tmp_path / "store", model={"template": "custom", "customModule": "needs_xgb"})
    assert_failed_cleanly(config, train(config), report.EXIT_BAD_CONFIG,
                          "'needs_xgb' imports 'xgboost_not_installed', which the training image lacks")
