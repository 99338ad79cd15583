"""The emulated REST API: Elasticsearch's endpoints plus the ``/_emulator`` control endpoints.

Transport-free: takes a decoded ``Request``, returns a ``Reply`` (or None to hang up without
answering, which is what the ``down`` fault does). The HTTP handler owns sockets and bodies.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote

from . import errors
from .auth import Credentials, challenge_headers
from .bulk import BulkExecutor, BulkOutcome, BulkRequestError, parse_bulk
from .faults import FaultPlan, Faults, FaultsError
from .filter_path import parse_filter_path
from .index_names import index_name_problem
from .stats import BulkRequestRecord, StatsRecorder
from .store import DocumentStore

logger = logging.getLogger("sink_emulators.elasticsearch")

CLUSTER_NAME = "sidecar-lab"
CLUSTER_UUID = "c3lkZWNhci1sYWItZW11bGF0b3I"
VERSION = {
    "number": "8.15.0",
    "build_flavor": "default",
    "build_type": "docker",
    "build_hash": "es-emulator",
    "build_date": "2024-08-05T10:05:34.233336849Z",
    "build_snapshot": False,
    "lucene_version": "9.11.1",
    "minimum_wire_compatibility_version": "7.17.0",
    "minimum_index_compatibility_version": "7.0.0",
}
# Media types Elasticsearch parses as JSON (NDJSON for _bulk); anything else is a 406.
_JSON_MEDIA_TYPES = (
    "application/json",
    "application/x-ndjson",
    "application/vnd.elasticsearch+json",
    "application/vnd.elasticsearch+x-ndjson",
)


@dataclass(frozen=True)
class Request:
    """One decoded HTTP request: ``path`` without the query, header names lower-cased, body decompressed."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    wire_bytes: int


@dataclass
class Reply:
    """What to answer: status, body and its media type, extra headers; a proxy's answer lacks Elasticsearch's header."""

    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)
    from_elasticsearch: bool = True


def json_reply(status: int, payload: Any, pretty: bool = False) -> Reply:
    """Serialize ``payload`` compactly (or indented for ``?pretty``) into a JSON reply."""
    if pretty:
        return Reply(status, json.dumps(payload, indent=2).encode() + b"\n")
    return Reply(status, json.dumps(payload, separators=(",", ":")).encode())


def proxy_error_page(status: int) -> Reply:
    """The HTML error page a proxy or ingress in front of Elasticsearch answers with (nginx's wording)."""
    try:
        title = f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        title = str(status)
    page = (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n"
        "<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
    )
    return Reply(status, page.encode(), "text/html", from_elasticsearch=False)


def _method_not_allowed(path: str, method: str, allowed: list[str]) -> Reply:
    message = f"Incorrect HTTP method for uri [{path}] and method [{method}], allowed: [{', '.join(sorted(allowed))}]"
    return json_reply(405, {"error": message, "status": 405})


Handler = Callable[[Request, list[str]], Reply | None]


class ElasticsearchApi:
    """Route requests to the store, the bulk executor, the fault plan and the statistics."""

    def __init__(self, store: DocumentStore, plan: FaultPlan, stats: StatsRecorder, credentials: Credentials) -> None:
        self.store = store
        self.plan = plan
        self.stats = stats
        self.credentials = credentials
        self.stopping = threading.Event()  # set on stop so an injected delay never holds shutdown
        self._executor = BulkExecutor(store, plan)
        # (path shape, {method: handler}); None in a shape matches an index expression.
        self._routes: list[tuple[tuple[str | None, ...], dict[str, Handler]]] = [
            ((), {"GET": self._info, "HEAD": self._info}),
            (("_bulk",), {"POST": self._bulk, "PUT": self._bulk}),
            ((None, "_bulk"), {"POST": self._bulk, "PUT": self._bulk}),
            (("_cluster", "health"), {"GET": self._health}),
            (("_cluster", "health", None), {"GET": self._health}),
            (("_cat", "health"), {"GET": self._cat_health}),
            (("_count",), {"GET": self._count, "POST": self._count}),
            ((None, "_count"), {"GET": self._count, "POST": self._count}),
            (("_search",), {"GET": self._search, "POST": self._search}),
            ((None, "_search"), {"GET": self._search, "POST": self._search}),
            (("_refresh",), {"GET": self._refresh, "POST": self._refresh}),
            ((None, "_refresh"), {"GET": self._refresh, "POST": self._refresh}),
            (
                ("_index_template", None),
                {"PUT": self._put_template, "POST": self._put_template, "GET": self._get_template},
            ),
            (("_data_stream",), {"GET": self._get_data_streams}),
            (
                ("_data_stream", None),
                {"GET": self._get_data_streams, "PUT": self._create_data_stream, "DELETE": self._delete_data_stream},
            ),
            (
                (None,),
                {
                    "PUT": self._create_index,
                    "HEAD": self._index_exists,
                    "GET": self._get_index,
                    "DELETE": self._delete_index,
                },
            ),
        ]

    def handle(self, request: Request) -> Reply | None:
        """Answer ``request``; None means close the connection without a word (the ``down`` fault)."""
        segments = [unquote(part) for part in request.path.strip("/").split("/")] if request.path.strip("/") else []
        if segments and segments[0] == "_emulator":
            return self._control(request, segments[1:])
        faults = self.plan.faults
        if faults.down:
            return None
        if (
            faults.max_body_bytes is not None
            and segments[-1:] == ["_bulk"]
            and request.wire_bytes > faults.max_body_bytes
        ):
            return proxy_error_page(413)  # refused in front of Elasticsearch: it never sees the request
        refusal = self.credentials.check(request.headers.get("authorization"), request.path)
        if refusal is not None:
            reply = json_reply(401, refusal)
            reply.headers.extend(challenge_headers())
            return reply
        if request.body and not _is_json(request.headers.get("content-type", "")):
            content_type = request.headers.get("content-type", "")
            return json_reply(406, {"error": f"Content-Type header [{content_type}] is not supported", "status": 406})
        for shape, methods in self._routes:
            params = _match(shape, segments)
            if params is None:
                continue
            handler = methods.get(request.method)
            if handler is None:
                return _method_not_allowed(request.path, request.method, list(methods))
            return handler(request, params)
        message = f"no handler found for uri [{request.path}] and method [{request.method}]"
        return json_reply(400, {"error": message, "status": 400})

    # Elasticsearch endpoints.

    def _info(self, request: Request, params: list[str]) -> Reply:
        payload = {
            "name": "es-emulator",
            "cluster_name": CLUSTER_NAME,
            "cluster_uuid": CLUSTER_UUID,
            "version": VERSION,
            "tagline": "You Know, for Search",
        }
        return json_reply(200, payload, "pretty" in request.query)

    def _health(self, request: Request, params: list[str]) -> Reply:
        shards = len(self.store.names())
        payload = {
            "cluster_name": CLUSTER_NAME,
            "status": "green",
            "timed_out": False,
            "number_of_nodes": 1,
            "number_of_data_nodes": 1,
            "active_primary_shards": shards,
            "active_shards": shards,
            "relocating_shards": 0,
            "initializing_shards": 0,
            "unassigned_shards": 0,
            "delayed_unassigned_shards": 0,
            "number_of_pending_tasks": 0,
            "number_of_in_flight_fetch": 0,
            "task_max_waiting_in_queue_millis": 0,
            "active_shards_percent_as_number": 100.0,
        }
        return json_reply(200, payload, "pretty" in request.query)

    def _cat_health(self, request: Request, params: list[str]) -> Reply:
        now = time.time()
        shards = len(self.store.names())
        row = {
            "epoch": str(int(now)),
            "timestamp": time.strftime("%H:%M:%S", time.gmtime(now)),
            "cluster": CLUSTER_NAME,
            "status": "green",
            "node.total": "1",
            "node.data": "1",
            "shards": str(shards),
            "pri": str(shards),
            "relo": "0",
            "init": "0",
            "unassign": "0",
            "pending_tasks": "0",
            "max_task_wait_time": "-",
            "active_shards_percent": "100.0%",
        }
        if request.query.get("format") == "json":
            return json_reply(200, [row])
        text = " ".join(row.values()) + "\n"
        if "v" in request.query:
            text = " ".join(row) + "\n" + text
        return Reply(200, text.encode(), "text/plain; charset=UTF-8")

    def _bulk(self, request: Request, params: list[str]) -> Reply | None:
        received = time.time()
        started = time.perf_counter()
        injected = self.plan.take_request_failure()
        if injected is not None:
            status, error_body, outcome = injected, errors.request_fault(injected), None
        else:
            status, error_body, outcome = self._run_bulk(request.body, params[0] if params else None)
        record = BulkRequestRecord(
            received_at=received,
            status=status,
            items=len(outcome.statuses) if outcome else 0,
            item_errors=outcome.item_errors if outcome else 0,
            bytes=request.wire_bytes,
            seconds=time.perf_counter() - started,
        )
        self.stats.record(record, len(request.body), outcome.statuses if outcome else [])
        delay = self.plan.faults.delay_seconds
        if delay > 0:
            self.stopping.wait(delay)
        pretty = "pretty" in request.query
        if injected is not None:
            faults = self.plan.faults
            reply = proxy_error_page(status) if faults.request_status_html else json_reply(status, error_body, pretty)
            if faults.retry_after_seconds is not None:
                reply.headers.append(("Retry-After", str(faults.retry_after_seconds)))
            return reply
        if outcome is None:
            return json_reply(status, error_body, pretty)
        if self.plan.take_dropped_response():
            logger.info("dropping the answer to a stored bulk request", extra={"items": len(outcome.statuses)})
            self.stats.dropped()
            return None  # stored, but the client never hears so
        if "filter_path" in request.query:
            filtered = outcome.filtered(parse_filter_path(request.query["filter_path"]))
            return json_reply(status, filtered, pretty)
        return json_reply(status, outcome.body(), pretty=True) if pretty else Reply(status, outcome.render())

    def _run_bulk(self, body: bytes, default_index: str | None) -> tuple[int, dict[str, Any], BulkOutcome | None]:
        """Return (HTTP status, error body if refused, outcome if the items were applied)."""
        try:
            items = parse_bulk(body, default_index)
        except BulkRequestError as exc:
            return exc.status, exc.body, None
        return 200, {}, self._executor.execute(items)

    def _resolve(self, expression: str) -> tuple[list[str], Reply | None]:
        names, missing = self.store.resolve(expression)
        if missing:
            return [], json_reply(404, errors.request_error(404, errors.index_not_found(missing[0])))
        return names, None

    def _match_all_only(self, request: Request) -> tuple[dict[str, Any], Reply | None]:
        if not request.body:
            return {}, None
        try:
            body = json.loads(request.body)
        except ValueError as exc:
            return {}, json_reply(400, errors.request_error(400, errors.cause("parse_exception", str(exc))))
        if not isinstance(body, dict):
            return {}, json_reply(400, errors.request_error(400, errors.cause("parse_exception", "expected an object")))
        query = body.get("query", {"match_all": {}})
        if not (isinstance(query, dict) and list(query) == ["match_all"]):
            why = errors.cause("parsing_exception", "the emulator supports only the match_all query")
            return {}, json_reply(400, errors.request_error(400, why))
        return body, None

    def _count(self, request: Request, params: list[str]) -> Reply:
        _, problem = self._match_all_only(request)
        if problem is not None:
            return problem
        names, problem = self._resolve(params[0] if params else "_all")
        if problem is not None:
            return problem
        shards = {"total": len(names), "successful": len(names), "skipped": 0, "failed": 0}
        return json_reply(200, {"count": self.store.count_exact(names), "_shards": shards}, "pretty" in request.query)

    def _search(self, request: Request, params: list[str]) -> Reply:
        body, problem = self._match_all_only(request)
        if problem is not None:
            return problem
        names, problem = self._resolve(params[0] if params else "_all")
        if problem is not None:
            return problem
        try:
            size = int(request.query.get("size", body.get("size", 10)))
            start = int(request.query.get("from", body.get("from", 0)))
        except (TypeError, ValueError):
            why = errors.cause("illegal_argument_exception", "[size] and [from] must be integers")
            return json_reply(400, errors.request_error(400, why))
        total, hits = self.store.hits(names, max(start, 0), max(size, 0))
        payload = {
            "took": 1,
            "timed_out": False,
            "_shards": {"total": len(names), "successful": len(names), "skipped": 0, "failed": 0},
            "hits": {"total": {"value": total, "relation": "eq"}, "max_score": 1.0 if hits else None, "hits": hits},
        }
        return json_reply(200, payload, "pretty" in request.query)

    def _refresh(self, request: Request, params: list[str]) -> Reply:
        names, problem = self._resolve(params[0] if params else "_all")
        if problem is not None:
            return problem
        return json_reply(200, {"_shards": {"total": len(names), "successful": len(names), "failed": 0}})

    def _create_index(self, request: Request, params: list[str]) -> Reply:
        name = params[0]
        problem = index_name_problem(name)
        if problem is not None:
            return json_reply(400, errors.request_error(400, errors.invalid_index_name(name, problem)))
        created = self.store.create_index(name)
        if created is None:
            existing = self.store.existing(name)
            uuid = existing.uuid if existing else "_na_"
            why = errors.cause(
                "resource_already_exists_exception",
                f"index [{name}/{uuid}] already exists",
                index_uuid=uuid,
                index=name,
            )
            return json_reply(400, errors.request_error(400, why))
        return json_reply(200, {"acknowledged": True, "shards_acknowledged": True, "index": name})

    def _index_exists(self, request: Request, params: list[str]) -> Reply:
        names, missing = self.store.resolve(params[0])
        return Reply(200 if names and not missing else 404)

    def _get_index(self, request: Request, params: list[str]) -> Reply:
        names, problem = self._resolve(params[0])
        if problem is not None:
            return problem
        payload: dict[str, Any] = {}
        for name in names:
            index = self.store.existing(name)
            if index is None:
                continue
            settings = {
                "number_of_shards": "1",
                "number_of_replicas": "0",
                "uuid": index.uuid,
                "provided_name": name,
                "creation_date": str(int(index.created * 1000)),
            }
            entry: dict[str, Any] = {"aliases": {}, "mappings": {}, "settings": {"index": settings}}
            if index.data_stream:
                settings["hidden"] = "true"
                entry["data_stream"] = name
            payload[index.write_name] = entry
        return json_reply(200, payload, "pretty" in request.query)

    def _delete_index(self, request: Request, params: list[str]) -> Reply:
        # The delete index API does not take data streams: named, it refuses; through a
        # wildcard, it skips them. DELETE /_data_stream/<name> deletes one with its backing index.
        for part in params[0].split(","):
            if not any(char in part for char in "*?[") and self.store.data_streams(part):
                why = errors.matches_data_stream(part)
                return json_reply(400, errors.request_error(400, why))
        names, problem = self._resolve(params[0])
        if problem is not None:
            return problem
        streams = {index.name for index in self.store.data_streams(params[0])}
        self.store.delete_indices([name for name in names if name not in streams])
        return json_reply(200, {"acknowledged": True})

    def _get_data_streams(self, request: Request, params: list[str]) -> Reply:
        expression = params[0] if params else "*"
        streams = self.store.data_streams(expression)
        if not streams and params and not any(char in expression for char in "*?["):
            why = errors.cause("index_not_found_exception", f"no such index [{expression}]", index=expression)
            return json_reply(404, errors.request_error(404, why))
        payload = {
            "data_streams": [
                {
                    "name": index.name,
                    "timestamp_field": {"name": "@timestamp"},
                    "indices": [{"index_name": index.write_name, "index_uuid": index.uuid}],
                    "generation": 1,
                    "status": "GREEN",
                    "template": index.template,
                    "hidden": False,
                    "system": False,
                    "allow_custom_routing": False,
                    "replicated": False,
                }
                for index in streams
            ]
        }
        return json_reply(200, payload, "pretty" in request.query)

    def _create_data_stream(self, request: Request, params: list[str]) -> Reply:
        name = params[0]
        problem = index_name_problem(name)
        if problem is not None:
            return json_reply(400, errors.request_error(400, errors.invalid_index_name(name, problem)))
        if not self.store.is_data_stream(name):
            why = errors.cause(
                "illegal_argument_exception", f"no matching index template found for data stream [{name}]"
            )
            return json_reply(400, errors.request_error(400, why))
        if self.store.create_index(name) is None:
            why = errors.cause("resource_already_exists_exception", f"data_stream [{name}] already exists")
            return json_reply(400, errors.request_error(400, why))
        return json_reply(200, {"acknowledged": True})

    def _delete_data_stream(self, request: Request, params: list[str]) -> Reply:
        streams = self.store.data_streams(params[0])
        if not streams and not any(char in params[0] for char in "*?["):
            why = errors.cause("resource_not_found_exception", f"data_streams matching [{params[0]}] not found")
            return json_reply(404, errors.request_error(404, why))
        self.store.delete_indices([index.name for index in streams])
        return json_reply(200, {"acknowledged": True})

    def _put_template(self, request: Request, params: list[str]) -> Reply:
        try:
            body = json.loads(request.body) if request.body else None
        except ValueError as exc:
            return json_reply(400, errors.request_error(400, errors.cause("parse_exception", str(exc))))
        if not isinstance(body, dict) or not body.get("index_patterns"):
            why = errors.cause(
                "action_request_validation_exception", "Validation Failed: 1: index patterns are missing;"
            )
            return json_reply(400, errors.request_error(400, why))
        self.store.put_template(params[0], body)
        return json_reply(200, {"acknowledged": True})

    def _get_template(self, request: Request, params: list[str]) -> Reply:
        template = self.store.template(params[0])
        if template is None:
            why = errors.cause("resource_not_found_exception", f"index template matching [{params[0]}] not found")
            return json_reply(404, errors.request_error(404, why))
        return json_reply(200, {"index_templates": [{"name": template.name, "index_template": template.body}]})

    # Control endpoints (no authentication, never affected by faults).

    def _control(self, request: Request, segments: list[str]) -> Reply:
        route = (request.method, "/".join(segments))
        if route == ("GET", "docs"):
            docs = self.store.sources(request.query.get("index"))
            return json_reply(200, {"count": len(docs), "docs": docs})
        if route == ("GET", "stats"):
            payload = self.stats.snapshot().to_json()
            payload["documents"] = self.store.count()
            return json_reply(200, payload)
        if route == ("GET", "faults"):
            return json_reply(200, {"faults": self.plan.faults.to_json()})
        if route == ("POST", "faults"):
            try:
                faults = Faults.from_json(json.loads(request.body or b"{}"))
            except ValueError as exc:
                field_name = exc.field if isinstance(exc, FaultsError) else "body"
                return json_reply(400, {"error": str(exc), "field": field_name})
            self.plan.set(faults)
            logger.info("faults set", extra={"faults": faults.to_json()})
            return json_reply(200, {"faults": faults.to_json()})
        if route == ("DELETE", "faults"):
            self.plan.clear()
            logger.info("faults cleared")
            return json_reply(200, {"faults": self.plan.faults.to_json()})
        if route == ("POST", "reset"):
            self.reset()
            return json_reply(200, {"reset": True})
        return json_reply(404, {"error": f"no emulator endpoint {request.method} /_emulator/{route[1]}"})

    def reset(self) -> None:
        """Forget every index, template, fault and statistic."""
        self.store.clear()
        self.plan.clear()
        self.stats.reset()
        logger.info("emulator reset")


def _match(shape: tuple[str | None, ...], segments: list[str]) -> list[str] | None:
    """Return the index expressions captured by ``shape``, or None if ``segments`` do not fit it."""
    if len(shape) != len(segments):
        return None
    captured: list[str] = []
    for expected, segment in zip(shape, segments, strict=True):
        if expected is None:
            if not segment or (segment.startswith("_") and segment != "_all"):
                return None
            captured.append(segment)
        elif expected != segment:
            return None
    return captured


def _is_json(content_type: str) -> bool:
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type in _JSON_MEDIA_TYPES
