"""A bounded load loop that runs inside a pod (standard library only) against a model's Service.

Each request opens a new connection, so kube-proxy picks an endpoint every time, as a fleet of
short-lived clients would. Both bounds always apply: at most --max-requests requests and
--max-seconds seconds. With --until-version it also stops once that version has answered for
--settle-seconds in a row (a rollout is then complete from the clients' point of view).
The last line of stdout is a JSON summary: counts by outcome, versions seen, first errors.
"""
from __future__ import annotations

import argparse
import http.client
import json
import threading
import time
from collections import Counter


def _infer(host: str, port: int, path: str, body: bytes, timeout: float) -> tuple[str, str]:
    """One V2 infer request on a new connection: ("ok", version) or ("error", what went wrong)."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        payload = resp.read()
        if resp.status != 200:
            return "error", f"HTTP {resp.status}: {payload[:200]!r}"
        return "ok", json.loads(payload).get("model_version", "")
    except (OSError, http.client.HTTPException, ValueError) as exc:
        return "error", f"{type(exc).__name__}: {exc}"
    finally:
        conn.close()


class Load:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        row = json.loads(args.row)
        self.body = json.dumps({"inputs": [{"name": "features", "shape": [1, len(row)], "datatype": "FP32",
                                            "data": row}]}).encode()
        self.path = f"/v2/models/{args.model}/infer"
        self.lock = threading.Lock()
        self.sent = 0
        self.outcomes: Counter[str] = Counter()
        self.versions: Counter[str] = Counter()
        self.errors: list[str] = []
        self.target_since: float | None = None
        self.deadline = time.monotonic() + args.max_seconds

    def _take(self) -> bool:
        with self.lock:
            if self.sent >= self.args.max_requests or time.monotonic() >= self.deadline:
                return False
            if self.target_since is not None and time.monotonic() - self.target_since >= self.args.settle_seconds:
                return False
            self.sent += 1
            return True

    def _record(self, outcome: str, detail: str) -> None:
        with self.lock:
            self.outcomes[outcome] += 1
            if outcome == "ok":
                self.versions[detail] += 1
                if self.args.until_version and detail == self.args.until_version:
                    self.target_since = self.target_since or time.monotonic()
                else:
                    self.target_since = None
            elif len(self.errors) < 20:
                self.errors.append(detail)

    def worker(self) -> None:
        while self._take():
            self._record(*_infer(self.args.host, self.args.port, self.path, self.body, self.args.timeout))
            if self.args.pause_ms:
                time.sleep(self.args.pause_ms / 1000)

    def run(self) -> dict:
        started = time.monotonic()
        threads = [threading.Thread(target=self.worker) for _ in range(self.args.concurrency)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return {"sent": self.sent, "ok": self.outcomes["ok"], "failed": self.outcomes["error"],
                "versions": dict(self.versions), "errors": self.errors,
                "seconds": round(time.monotonic() - started, 2),
                "reachedVersion": self.target_since is not None}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--host", required=True)
    p.add_argument("--port", type=int, default=80)
    p.add_argument("--model", required=True)
    p.add_argument("--row", required=True, help="one feature row as a JSON list")
    p.add_argument("--max-requests", type=int, required=True)
    p.add_argument("--max-seconds", type=float, required=True)
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--timeout", type=float, default=10.0)
    p.add_argument("--pause-ms", type=float, default=0.0)
    p.add_argument("--until-version", default="")
    p.add_argument("--settle-seconds", type=float, default=10.0)
    args = p.parse_args()
    print(json.dumps(Load(args).run()), flush=True)


if __name__ == "__main__":
    main()
