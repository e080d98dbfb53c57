"""Labeled traffic for a model's Service, from inside a pod (standard library only): each batch of rows is
predicted and joined with its truth in one feedback call (`{"instances", "truth"}`), so every row is one
labeled pair on the replica that answered. Bounded by the rows given and by --max-seconds.
Prints one JSON object: batches sent, their statuses, rows joined and the accuracy the client saw.
"""
from __future__ import annotations

import argparse
import http.client
import json
import time


def feedback(host: str, model: str, rows: list, truth: list) -> tuple[int, dict]:
    conn = http.client.HTTPConnection(host, 80, timeout=30)
    try:
        conn.request("POST", f"/v1/models/{model}:feedback", body=json.dumps({"instances": rows, "truth": truth}),
                     headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        raw = resp.read()
        return resp.status, (json.loads(raw) if raw else {})
    finally:
        conn.close()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--host", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--data", required=True, help='JSON {"rows": [[...], ...], "truth": [...]}')
    p.add_argument("--batch", type=int, default=20)
    p.add_argument("--max-seconds", type=float, default=120)
    args = p.parse_args()
    data = json.loads(args.data)
    rows, truth = data["rows"], data["truth"]
    deadline = time.monotonic() + args.max_seconds
    statuses: dict[str, int] = {}
    joined = 0
    for start in range(0, len(rows), args.batch):
        if time.monotonic() > deadline:
            break
        status, body = feedback(args.host, args.model, rows[start:start + args.batch], truth[start:start + args.batch])
        statuses[str(status)] = statuses.get(str(status), 0) + 1
        joined += int(body.get("joined") or 0)
    print(json.dumps({"statuses": statuses, "joined": joined, "rows": len(rows)}), flush=True)


if __name__ == "__main__":
    main()
