"""The ASGI application: routes of both protocols, metrics, feedback, and the model lifecycle.

A plain ASGI callable rather than a framework: the request path is the server's cost (the
model takes microseconds), so it does only what the protocols need. See docs/bench-serving.md.
"""
from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import socket
import time
from typing import Any, Awaitable, Callable

import numpy as np
import orjson

from modelops_contracts.feedback import FeedbackRecord
from modelops_contracts.live import LiveError, LiveFigures, aggregate

from . import grpc_service, peers, protocol_v1, protocol_v2
from .batching import Batcher, QueueFull, ShuttingDown
from .errors import HttpError, bad_request
from .feedback import Feedback
from .feedback_store import FeedbackStore
from .live import LiveMonitor
from .metrics import ServerMetrics
from .model import ServedModel
from .openapi import build_openapi
from .settings import ServerSettings
from .siblings import SIBLING_HEADER, Siblings, merge_expositions

log = logging.getLogger(__name__)

JSON = b"application/json"
Headers = list[tuple[bytes, bytes]]
Reply = tuple[int, bytes, Headers]
RETRY_AFTER_S = b"1"
_WANTED_HEADERS = {b"content-length", b"content-encoding", b"inference-header-content-length", peers.FORWARDED_HEADER,
                   SIBLING_HEADER}


class _Request:
    __slots__ = ("scope", "receive", "headers", "params", "predicts")

    def __init__(self, scope: dict, receive: Callable[[], Awaitable[dict]], params: dict[str, str]):
        self.scope, self.receive, self.params = scope, receive, params
        self.headers = {k: v.decode("latin-1") for k, v in scope["headers"] if k in _WANTED_HEADERS}
        self.predicts = False     # set by a handler whose route is not a prediction route but predicted

    @property
    def pod_wide(self) -> bool:
        """Not a sibling worker's question: the answer is the whole server's (see siblings.py)."""
        return SIBLING_HEADER not in self.headers


class ServingApp:
    def __init__(self, model: ServedModel, settings: ServerSettings):
        self.model = model
        self.settings = settings
        self.batcher: Batcher | None = None
        self.grpc = None            # the gRPC server, when settings.grpc_port is set
        self.feedback: Feedback | None = None
        self.live: LiveMonitor | None = None
        self.store: FeedbackStore | None = None
        self.loaded = False
        self.draining = False
        self.replica = settings.replica or socket.gethostname()
        # Several workers: each keeps its own figures and feedback segments under its own name, and asks the
        # others for what is the pod's (live figures, metrics, readiness, the prediction an id names).
        self.siblings = (Siblings(settings.sibling_dir, settings.worker_index, settings.worker_count,
                                  settings.forward_timeout_s) if settings.sibling_dir else None)
        self.process_name = f"{self.replica}-w{settings.worker_index}" if self.siblings else self.replica
        self.metrics = ServerMetrics(model, lambda: self.feedback, lambda: self.batcher.depth if self.batcher else 0,
                                     live=lambda: self.live, store=lambda: self.store)
        self._ids = peers.PredictionIds(settings.pod_ip, settings.id_key)
        self._openapi: bytes | None = None
        self._background: set[asyncio.Task] = set()
        name = r"(?P<name>[^/:]+)"
        v2_model = rf"/v2/models/{name}(?:/versions/(?P<version>[^/]+))?"
        # (method, path pattern, handler, route label for metrics)
        table = [
            ("POST", rf"/v1/models/{name}:predict", self.v1_predict, "/v1/models/{name}:predict"),
            ("POST", rf"/v2/models/{name}(?:/versions/(?P<version>[^/]+))?/infer", self.v2_infer, "/v2/models/{name}/infer"),
            ("POST", rf"/v1/models/{name}:feedback", self.v1_feedback, "/v1/models/{name}:feedback"),
            ("GET", r"/v1/live", self.v1_live, "/v1/live"),
            ("GET", rf"/v1/models/{name}", self.v1_status, "/v1/models/{name}"),
            ("GET", r"/v2/health/live", self.v2_live, "/v2/health/live"),
            ("GET", r"/v2/health/ready", self.v2_ready, "/v2/health/ready"),
            ("GET", r"/v2", self.v2_server, "/v2"),
            ("GET", v2_model, self.v2_model, "/v2/models/{name}"),
            ("GET", v2_model + "/ready", self.v2_model_ready, "/v2/models/{name}/ready"),
            ("GET", r"/metrics", self.prometheus, "/metrics"),
            ("GET", r"/openapi.json", self.openapi, "/openapi.json"),
        ]
        self._routes = [(method, re.compile(pattern), handler, label) for method, pattern, handler, label in table]

    # --- lifecycle ---------------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return self.loaded and not self.draining

    @property
    def not_ready_reason(self) -> str:
        if self.draining:
            return "shutting down"
        return self.model.reason or "loading"

    def begin_drain(self) -> None:
        """SIGTERM: readiness goes false at once; requests keep being served until shutdown."""
        if not self.draining:
            log.info("draining: not ready, finishing accepted requests")
        self.draining = True

    async def _startup(self) -> None:
        s = self.settings
        self.batcher = Batcher(self.model.predict, workers=s.interpreter_count, max_batch_size=s.max_batch_size,
                               max_latency_ms=s.max_latency_ms, max_queue=s.max_queue,
                               on_batch=self.metrics.observe_batch)
        self.batcher.start()
        if s.grpc_port:
            self.grpc = await grpc_service.start(self)
        task = asyncio.get_running_loop().create_task(self._load())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _load(self) -> None:
        # Checksums and model loading read files: off the event loop, so probes answer meanwhile.
        if not await asyncio.to_thread(self.model.load):
            return
        m, s = self.model.manifest, self.settings
        names = [t.name for t in self.model.signature.inputs]
        self.feedback = Feedback(m.task, m.classes, window=s.feedback_window, memory_rows=s.prediction_memory,
                                 version=m.version, input_names=names)
        self.live = LiveMonitor(m, self.feedback, replica=self.process_name, window_s=s.live_window_s, rows=s.live_rows,
                                input_names=names)
        if s.feedback_dir:
            store = FeedbackStore(s.feedback_dir, self.process_name, segment_records=s.feedback_segment_records,
                                  flush_s=s.feedback_flush_s, buffer_records=s.feedback_buffer_records,
                                  max_bytes=s.feedback_max_bytes)
            try:
                store.start()
                self.store = store
            except OSError as e:    # storage is for the loop, not for serving: serve, and say it
                log.error("feedback: %s is not usable (%s); joined feedback will not be kept", s.feedback_dir, e)
        self.loaded = True

    async def _shutdown(self) -> None:
        self.begin_drain()
        if self.grpc:
            await self.grpc.stop(self.settings.graceful_timeout_s)   # refuses new calls, finishes accepted ones
        if self.batcher:
            await self.batcher.stop(self.settings.graceful_timeout_s)
        if self.store:
            await self.store.close()        # after the last request: its feedback is written too

    async def _lifespan(self, receive, send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self._startup()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self._shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    # --- ASGI entry --------------------------------------------------------------------------------

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _http(self, scope, receive, send) -> None:
        started = time.perf_counter()
        path, method = scope["path"], scope["method"]
        label, request = "other", None
        try:
            handler, label, params = self._route(method, path)
            request = _Request(scope, receive, params)
            status, body, headers = await handler(request)
        except HttpError as e:
            status, body, headers = e.status, orjson.dumps({"error": e.message}), list(e.headers)
        except Exception as e:  # a bug, not bad input: log it, keep the worker alive
            log.exception("internal error on %s %s", method, path)
            status, body, headers = 500, orjson.dumps({"error": f"internal error: {type(e).__name__}"}), []
        if not any(name == b"content-type" for name, _ in headers):
            headers.append((b"content-type", JSON))
        headers.append((b"content-length", str(len(body)).encode()))
        if self.draining:
            headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        self.metrics.observe_request(label, status, time.perf_counter() - started,
                                     predicted=request is not None and request.predicts)

    def _route(self, method: str, path: str):
        allowed = False
        for route_method, pattern, handler, label in self._routes:
            match = pattern.fullmatch(path)
            if match is None:
                continue
            if route_method == method:
                return handler, label, match.groupdict()
            allowed = True
        if allowed:
            raise HttpError(405, f"method {method} is not allowed on {path}")
        raise HttpError(404, f"no route {path}")

    # --- request helpers ---------------------------------------------------------------------------

    async def _body(self, request: _Request) -> bytes:
        limit = self.settings.max_body_bytes
        encoding = request.headers.get(b"content-encoding")
        if encoding not in (None, "identity"):
            raise HttpError(415, f"content-encoding {encoding!r} is not supported; send the body uncompressed")
        declared = request.headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise HttpError(413, f"body of {declared} bytes is over the limit of {limit} bytes")
        chunks, size = [], 0
        while True:
            message = await request.receive()
            if message["type"] == "http.disconnect":
                raise HttpError(499, "client disconnected")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise HttpError(413, f"body is over the limit of {limit} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def _json(self, request: _Request) -> Any:
        return self._loads(await self._body(request))

    @staticmethod
    def _loads(body: bytes) -> Any:
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as e:
            raise bad_request(f"body: malformed JSON ({e})") from None

    def _serving(self, request: _Request) -> ServedModel:
        """The model named in the path, if it is this server's and has loaded."""
        return self.serving_model(request.params.get("name"), request.params.get("version"))

    def serving_model(self, name: str | None, version: str | None) -> ServedModel:
        """The named model (and version, if given), if it is this server's and has loaded: both transports ask."""
        if name != self.model.name:
            raise HttpError(404, f"model {name!r} not found; this server serves {self.model.name!r}")
        if not self.loaded:
            raise HttpError(503, f"model {name!r} not ready: {self.not_ready_reason}")
        if version is not None and version != self.model.version:
            raise HttpError(404, f"model {name!r} version {version!r} not found; serving {self.model.version!r}")
        return self.model

    def remember(self, outputs: list[np.ndarray], inputs: list[np.ndarray]) -> str:
        """A new prediction id, remembered with its inputs and first output for feedback and drift."""
        prediction_id = self._ids.next()
        self.feedback.remember(prediction_id, outputs[0], inputs)
        self.live.observe_inputs(inputs)
        return prediction_id

    async def infer(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        try:
            return await self.batcher.predict(inputs)
        except QueueFull:
            raise HttpError(503, f"overloaded: more than {self.settings.max_queue} requests are waiting; retry later",
                            ((b"retry-after", RETRY_AFTER_S),)) from None
        except ShuttingDown:
            raise HttpError(503, "shutting down; retry on another replica", ((b"retry-after", RETRY_AFTER_S),)) from None

    def _parse_v1(self, body: Any) -> tuple[list[np.ndarray], str]:
        m = self.model
        return protocol_v1.parse_predict(body, signature=m.signature, max_rows=self.settings.max_instances,
                                         feature_names=m.manifest.feature_names)

    # --- TF Serving REST ---------------------------------------------------------------------------

    async def v1_predict(self, request: _Request) -> Reply:
        self._serving(request)
        raw = await self._body(request)
        rows = protocol_v1.rows_from_text(raw, signature=self.model.signature, max_rows=self.settings.max_instances)
        inputs, key = (rows, "predictions") if rows is not None else self._parse_v1(self._loads(raw))
        outputs = await self.infer(inputs)
        prediction_id = self.remember(outputs, inputs)
        reply = protocol_v1.encode_predict(key, self.model.signature, outputs)
        reply["id"] = prediction_id
        body = orjson.dumps(reply, option=orjson.OPT_SERIALIZE_NUMPY)
        return 200, body, [(b"x-prediction-id", prediction_id.encode())]

    async def v1_feedback(self, request: _Request) -> Reply:
        self._serving(request)
        body = await self._body(request)
        prediction_id, instances, truth = protocol_v1.parse_feedback(self._loads(body))
        if prediction_id is None:   # rows with their truth: a prediction, joined at once
            request.predicts = True
            inputs, _ = self._parse_v1(instances)
            outputs = await self.infer(inputs)
            self.live.observe_inputs(inputs)
            record = self.feedback.join_outputs(self._ids.next(), inputs, outputs[0], truth)
        else:
            if not self.feedback.knows(prediction_id) and request.pod_wide:
                elsewhere = await self._feedback_elsewhere(request, body, prediction_id, truth)
                if elsewhere is not None:
                    return elsewhere
            record = self.feedback.join_id(prediction_id, truth)
        self._keep(record)
        fb = self.feedback
        return 200, orjson.dumps({"joined": record.rows, "pairs": fb.pairs, "metrics": fb.live_metrics()}), []

    async def _feedback_elsewhere(self, request: _Request, body: bytes, prediction_id: str, truth: Any) -> Reply | None:
        """Feedback for an id this worker does not remember: another pod's (forwarded there), or another worker's
        of this pod (asked in turn); None when neither, and this worker answers (a 404 naming the id)."""
        owner = self._ids.owner(prediction_id)
        if owner and owner != str(self._ids.address) and peers.FORWARDED_HEADER not in request.headers:
            return await self._forward_feedback(owner, request.scope["path"], body, prediction_id, truth)
        if self.siblings:
            answer = await self.siblings.first_to_know(request.scope["path"], body)
            if answer is not None:
                return answer[0], answer[1], []
        return None

    async def _forward_feedback(self, owner: str, path: str, body: bytes, prediction_id: str, truth: Any) -> Reply:
        """Feedback for a prediction another replica made: that replica joins it. If it is gone (or
        answers 5xx), the truth is kept unjoined: the client's call still succeeds, and says so."""
        answer = await peers.forward(owner, self.settings.port, path, body, self.settings.forward_timeout_s)
        if answer is not None and answer[0] < 500:
            return answer[0], answer[1], []
        record = self.feedback.unjoined(prediction_id, truth)
        self._keep(record)
        why = "did not answer" if answer is None else f"answered {answer[0]}"
        kept = "kept unjoined in the feedback store" if self.store else "not kept (no feedback store)"
        return 202, orjson.dumps({"joined": 0, "unjoined": record.rows, "message": (
            f"the replica that made prediction {prediction_id!r} ({owner}) {why}; the truth is {kept} "
            f"and counts in no live metric")}), []

    def _keep(self, record: FeedbackRecord) -> None:
        if self.store:
            self.store.add(record)

    async def v1_live(self, request: _Request) -> Reply:
        if not self.loaded:
            raise HttpError(503, f"model {self.model.name!r} not ready: {self.not_ready_reason}")
        figures = self.live.figures()
        if self.siblings and request.pod_wide:
            figures = await self._pod_figures(figures)
        return 200, orjson.dumps(figures.to_dict()), []

    async def _pod_figures(self, own: LiveFigures) -> LiveFigures:
        """Every worker's figures as the pod's: summed, under the pod's name. A worker that does not answer
        (restarting) is left out; its requests are missing from the sums until it is back."""
        figures = [own]
        for body in (await self.siblings.answered("/v1/live")).values():
            try:
                figures.append(LiveFigures.from_dict(orjson.loads(body)))
            except (LiveError, orjson.JSONDecodeError):
                continue
        return dataclasses.replace(aggregate(figures), replica=self.replica)

    async def v1_status(self, request: _Request) -> Reply:
        name = request.params["name"]
        if name != self.model.name:
            raise HttpError(404, f"model {name!r} not found; this server serves {self.model.name!r}")
        state = "AVAILABLE" if self.ready else ("END" if self.draining else "LOADING")
        message = "" if self.ready else self.not_ready_reason
        status = {"version": self.model.version, "state": state,
                  "status": {"error_code": "OK" if self.ready else "UNAVAILABLE", "error_message": message}}
        return 200, orjson.dumps({"model_version_status": [status]}), []

    # --- Open Inference Protocol -------------------------------------------------------------------

    async def v2_live(self, request: _Request) -> Reply:
        return 200, b'{"live":true}', []

    async def v2_ready(self, request: _Request) -> Reply:
        reason = self.not_ready_reason if not self.ready else await self._siblings_not_ready(request)
        if not reason:
            return 200, b'{"ready":true}', []
        return 503, orjson.dumps({"ready": False, "reason": reason}), []

    async def _siblings_not_ready(self, request: _Request) -> str:
        """Why a sibling worker is not ready ('' when all are): the kernel gives any of them the next connection."""
        if not self.siblings or not request.pod_wide:
            return ""
        for index, answer in sorted((await self.siblings.ask("GET", "/v2/health/ready")).items()):
            if answer is None or answer[0] != 200:
                return f"worker {index} is not ready" + (f" ({answer[1].decode(errors='replace')})" if answer else "")
        return ""

    async def v2_server(self, request: _Request) -> Reply:
        return 200, orjson.dumps({"name": "modelops-serving", "version": "0.1.0", "extensions": ["binary_tensor_data"]}), []

    async def v2_model(self, request: _Request) -> Reply:
        m = self._serving(request)
        return 200, orjson.dumps(protocol_v2.metadata(m.name, m.version, m.runtime.platform, m.signature)), []

    async def v2_model_ready(self, request: _Request) -> Reply:
        m = self._serving(request)
        if self.ready:
            return 200, orjson.dumps({"name": m.name, "ready": True}), []
        return 503, orjson.dumps({"name": m.name, "ready": False, "reason": self.not_ready_reason}), []

    async def v2_infer(self, request: _Request) -> Reply:
        m = self._serving(request)
        body = await self._body(request)
        parsed = protocol_v2.parse_infer(body, request.headers.get(b"inference-header-content-length"),
                                         signature=m.signature, max_rows=self.settings.max_instances)
        outputs = await self.infer(parsed.inputs)
        prediction_id = self.remember(outputs, parsed.inputs)
        payload, header_length = protocol_v2.encode_infer(m.name, m.version, parsed.id or prediction_id,
                                                          m.signature, outputs, parsed.outputs, prediction_id)
        headers = [(b"x-prediction-id", prediction_id.encode())]
        if header_length is not None:
            headers = [(b"content-type", b"application/octet-stream"),
                       (b"inference-header-content-length", str(header_length).encode())] + headers
        return 200, payload, headers

    # --- operations --------------------------------------------------------------------------------

    async def prometheus(self, request: _Request) -> Reply:
        text = self.metrics.render()
        if self.siblings and request.pod_wide:
            text = merge_expositions({self.settings.worker_index: text, **await self.siblings.answered("/metrics")})
        return 200, text, [(b"content-type", b"text/plain; version=0.0.4; charset=utf-8")]

    async def openapi(self, request: _Request) -> Reply:
        if self._openapi is None or not self.loaded:
            self._openapi = orjson.dumps(build_openapi(self.model.name, self.model.signature if self.loaded else None))
        return 200, self._openapi, []


def create_app(model: ServedModel, settings: ServerSettings) -> ServingApp:
    return ServingApp(model, settings)
