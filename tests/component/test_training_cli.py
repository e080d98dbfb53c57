"""The console scripts the image runs: train, then compress, through files and exit codes only."""
from __future__ import annotations

import gzip
import http.server
import sys
import threading
from pathlib import Path

import pytest
from modelops_contracts import manifest as mf
from modelops_contracts import report
from training_fixtures import job_config, write_config

from modelops_training import sources
from modelops_training.train import train

pytestmark = pytest.mark.component
BIN = Path(sys.executable).parent


def run(script: str, config_path: Path, *args: str):
    import subprocess
    return subprocess.run([str(BIN / script), "--config", str(config_path), *args], capture_output=True,
                          text=True, timeout=180)


def test_train_then_compress_from_the_command_line(tmp_path):
    config = job_config(tmp_path / "store", metric="mse", model={"name": "line", "template": "linear-regression"},
                        data={"uri": "builtin:linear"}, training={"epochs": 3, "learningRate": 0.05},
                        compression={"method": "dynamic-range"})
    path = write_config(tmp_path / "job.json", config)

    trained = run("modelops-train", path)
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert report.decode(trained.stdout) == report.decode(Path(config.report_path).read_text())
    assert "epoch 3/3" in trained.stderr and "samples/s=" in trained.stderr and "eta=" in trained.stderr

    compressed = run("modelops-compress", path, "--report-path", str(tmp_path / "compress.json"))
    assert compressed.returncode == 0, compressed.stderr[-3000:]
    result = report.decode((tmp_path / "compress.json").read_text())
    assert result.stage == "compress" and result.compression["method"] == "dynamic-range"
    assert len(compressed.stdout.encode()) <= report.MAX_BYTES
    assert mf.verify(config.version_dir).servables["tflite"] == "model.tflite"


class CsvObjectHandler(http.server.BaseHTTPRequestHandler):
    """Answers S3 GetObject (path-style) for one object; enough for boto3, not an S3 implementation."""
    objects: dict[str, bytes] = {}

    def do_GET(self):
        body = self.objects.get(self.path.split("?")[0])
        self.send_response(200 if body is not None else 404)
        self.send_header("Content-Length", str(len(body or b"")))
        self.end_headers()
        self.wfile.write(body or b"")

    def log_message(self, *args):
        pass


@pytest.fixture
def s3_endpoint(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), CsvObjectHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)


def test_s3_data_is_read_through_the_configured_endpoint(tmp_path, s3_endpoint):
    raw, _ = sources.read_bytes("builtin:diabetes")
    CsvObjectHandler.objects = {"/datasets/diabetes.csv.gz": gzip.compress(raw)}
    config = job_config(tmp_path, metric="mse", model={"name": "diabetes", "template": "linear-regression"},
                        data={"uri": "s3://datasets/diabetes.csv.gz", "s3Endpoint": s3_endpoint},
                        training={"epochs": 2, "learningRate": 0.1})
    result = train(config)
    assert result.succeeded, result.message
    assert mf.verify(config.version_dir).feature_names[:3] == ["age", "sex", "bmi"]

    missing = job_config(tmp_path, data={"uri": "s3://datasets/absent.csv", "s3Endpoint": s3_endpoint})
    failed = train(missing)
    assert failed.reason == "BadData" and "cannot read s3://datasets/absent.csv" in failed.message
