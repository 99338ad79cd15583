"""The JSON source: at scrape time, GET the app's stats and turn them into metrics with JSONPath rules.

Fetched per scrape, never cached (Prometheus' "Writing exporters"), within a
deadline derived from the scrape timeout. A rule that matches nothing, a value
that is not a number, or two matches with the same labels are counted per rule
and skipped — they never fail the scrape (json_exporter #230).
"""

from __future__ import annotations

import http.client
import json
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from prometheus_client.metrics_core import Metric

from metrics_exporter.jsonpath import JsonPath
from metrics_exporter.sources import SourceError
from metrics_exporter.templates import Template

logger = logging.getLogger(__name__)

# The app's /stats is a few KiB; a body this large is a misconfigured URL, not stats.
MAX_BODY_BYTES = 16 << 20
READ_CHUNK_BYTES = 64 << 10
LOG_EVERY_SECONDS = 60.0


class JsonMetricType(StrEnum):
    GAUGE = "gauge"
    COUNTER = "counter"
    # A string becomes a label of a constant-1 series: app_config_info{version="..."} 1.
    INFO = "info"


class RuleErrorReason(StrEnum):
    """Why a rule produced no sample for (part of) a document; label of ``exporter_json_rule_errors_total``."""

    NO_MATCH = "no_match"
    NULL = "null"
    NOT_A_NUMBER = "not_a_number"
    NEGATIVE_COUNTER = "negative_counter"
    DUPLICATE_SERIES = "duplicate_series"


@dataclass(frozen=True)
class JsonRule:
    """One metric made from the values a path finds; labels may use ``$1``.. (wildcard keys) and ``$value``."""

    name: str
    path: JsonPath
    metric_type: JsonMetricType = JsonMetricType.GAUGE
    help: str = ""
    labels: tuple[tuple[str, Template], ...] = ()
    value_map: Mapping[str, float] = field(default_factory=dict)

    @property
    def family_name(self) -> str:
        if self.metric_type is JsonMetricType.COUNTER:
            return self.name.removesuffix("_total")
        if self.metric_type is JsonMetricType.INFO:
            return self.name.removesuffix("_info")
        return self.name


class JsonFetcher(Protocol):
    def fetch(self, timeout: float) -> Any:
        """Return the parsed document, or raise SourceError, within ``timeout`` seconds."""
        ...


class HttpJsonFetcher:
    """GET a URL with a hard overall deadline (connect, headers and every body read share it)."""

    def __init__(self, url: str, max_body_bytes: int = MAX_BODY_BYTES) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self.url = url
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.max_body_bytes = max_body_bytes

    def fetch(self, timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        connection_class = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        connection = connection_class(self._host, self._port, timeout=timeout)
        response: http.client.HTTPResponse | None = None
        try:
            connection.request("GET", self._target, headers={"Accept": "application/json"})
            sock = connection.sock  # kept: the response owns it once the server says "Connection: close"
            _arm(sock, deadline)
            response = connection.getresponse()
            if response.status != 200:
                raise SourceError("http_status", f"{self.url} answered {response.status}")
            body = bytearray()
            while not response.isclosed():  # the response closes the socket once the body is complete
                _arm(sock, deadline)
                chunk = response.read(READ_CHUNK_BYTES)
                if not chunk:
                    break
                body += chunk
                if len(body) > self.max_body_bytes:
                    raise SourceError("too_large", f"body over {self.max_body_bytes} bytes")
            return json.loads(body)
        except TimeoutError:
            raise SourceError("timeout", f"{self.url} did not answer within {timeout:.3f}s") from None
        except (http.client.HTTPException, ConnectionError) as exc:
            raise SourceError("connection", f"{self.url}: {exc!r}") from None
        except OSError as exc:
            raise SourceError("connection", f"{self.url}: {exc}") from None
        except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError; or nested too deep
            raise SourceError("invalid_json", f"{self.url}: {exc}") from None
        finally:
            if response is not None:
                response.close()  # it may own the socket (Connection: close)
            connection.close()


def _arm(sock: Any, deadline: float) -> None:
    """Give the next socket operation only what is left of the deadline."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError
    if sock is not None and sock.fileno() != -1:
        sock.settimeout(remaining)


class FileJsonFetcher:
    """Read a JSON sample from a file (the ``check`` command's stand-in for the app)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fetch(self, timeout: float) -> Any:
        try:
            return json.loads(self.path.read_bytes())
        except OSError as exc:
            raise SourceError("connection", f"{self.path}: {exc.strerror}") from None
        except (ValueError, RecursionError) as exc:
            raise SourceError("invalid_json", f"{self.path}: {exc}") from None


class JsonSource:
    """Fetch the document at scrape time and apply the JSON rules of the current mapping."""

    name = "json"

    def __init__(
        self,
        fetcher: JsonFetcher,
        rules: tuple[JsonRule, ...] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.fetcher = fetcher
        self._rules = rules
        self._clock = clock
        self._lock = threading.Lock()
        self._errors: dict[tuple[str, RuleErrorReason], int] = {}
        self._last_logged: dict[tuple[str, RuleErrorReason], float] = {}

    @property
    def rules(self) -> tuple[JsonRule, ...]:
        return self._rules

    def set_rules(self, rules: tuple[JsonRule, ...]) -> None:
        self._rules = rules  # one reference swap: a concurrent scrape uses either the old or the new set

    def rule_errors(self) -> dict[tuple[str, RuleErrorReason], int]:
        with self._lock:
            return dict(self._errors)

    def collect(self, timeout: float) -> list[Metric]:
        return self.evaluate(self.fetcher.fetch(timeout))

    def evaluate(self, document: Any) -> list[Metric]:
        """Apply every rule to ``document``; problems are counted per rule, never raised."""
        families: dict[str, Metric] = {}
        seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
        for rule in self._rules:
            matches = rule.path.find(document)
            if not matches:
                self._count(rule, RuleErrorReason.NO_MATCH, rule.path.text)
                continue
            for match in matches:
                value, text = _convert(match.value, rule)
                if isinstance(value, RuleErrorReason):
                    self._count(rule, value, f"{rule.path.text} -> {match.value!r}"[:200])
                    continue
                named = {"value": text}
                labels = {label: template.expand(match.captures, named) for label, template in rule.labels}
                identity = (rule.name, tuple(sorted(labels.items())))
                if identity in seen:  # keep the first, count the rest
                    self._count(rule, RuleErrorReason.DUPLICATE_SERIES, str(labels))
                    continue
                seen.add(identity)
                family = families.get(rule.name)
                if family is None:
                    family = families[rule.name] = Metric(
                        rule.family_name, rule.help or f"{rule.path.text} from the JSON stats", rule.metric_type.value
                    )
                family.add_sample(rule.name, labels, value)
        return list(families.values())

    def _count(self, rule: JsonRule, reason: RuleErrorReason, detail: str) -> None:
        key = (rule.name, reason)
        now = self._clock()
        with self._lock:
            self._errors[key] = self._errors.get(key, 0) + 1
            last = self._last_logged.get(key)
            if last is not None and now - last < LOG_EVERY_SECONDS:
                return
            self._last_logged[key] = now
        logger.info("json rule produced no sample", extra={"rule": rule.name, "reason": reason.value, "detail": detail})


def _convert(raw: Any, rule: JsonRule) -> tuple[float | RuleErrorReason, str]:
    """Turn a JSON value into a sample value and its text for ``$value`` (or the reason it cannot)."""
    if raw is None:
        return RuleErrorReason.NULL, ""
    if isinstance(raw, bool):
        text = "true" if raw else "false"
    elif isinstance(raw, int | float | str):
        text = str(raw)
    else:
        return RuleErrorReason.NOT_A_NUMBER, ""
    if rule.metric_type is JsonMetricType.INFO:
        return 1.0, text
    value: float
    if isinstance(raw, str):
        mapped = rule.value_map.get(raw)
        if mapped is not None:
            value = mapped
        else:
            try:
                value = float(raw)
            except ValueError:
                return RuleErrorReason.NOT_A_NUMBER, text
    else:
        mapped = rule.value_map.get(text)
        try:
            value = float(raw) if mapped is None else mapped
        except OverflowError:  # an integer too large for a float
            return RuleErrorReason.NOT_A_NUMBER, text
    if not math.isfinite(value):
        return RuleErrorReason.NOT_A_NUMBER, text
    if rule.metric_type is JsonMetricType.COUNTER and value < 0:
        return RuleErrorReason.NEGATIVE_COUNTER, text
    return value, text
