"""Elasticsearch's error objects, shaped exactly as a client parses them.

A whole request fails with ``{"error": {"root_cause": [...], "type", "reason", ...}, "status": n}``;
a bulk item fails with just the inner ``{"type", "reason", ..., "caused_by"?}`` next to its
``status``. Reasons copy the wording of Elasticsearch 8 so a client matching on them behaves
the same against the emulator and the real thing.
"""

from __future__ import annotations

from typing import Any

# Bulk items report these types for each injected status (what a real cluster answers with).
_ITEM_FAULT_TYPES: dict[int, str] = {
    400: "illegal_argument_exception",
    404: "index_not_found_exception",
    409: "version_conflict_engine_exception",
    429: "es_rejected_execution_exception",
    500: "exception",
    502: "exception",
    503: "unavailable_shards_exception",
    504: "process_cluster_event_timeout_exception",
}

# Whole-request errors for each injected status.
_REQUEST_FAULT_TYPES: dict[int, tuple[str, str]] = {
    429: (
        "es_rejected_execution_exception",
        "rejected execution of coordinating operation [coordinating_and_primary_bytes=0, replica_bytes=0, "
        "all_bytes=0, coordinating_operation_bytes=0, max_coordinating_and_primary_bytes=0]",
    ),
    503: ("cluster_block_exception", "blocked by: [SERVICE_UNAVAILABLE/2/no master];"),
    500: ("exception", "emulated internal server error"),
    502: ("exception", "emulated bad gateway"),
    504: ("process_cluster_event_timeout_exception", "failed to process cluster event within 30s"),
    400: ("illegal_argument_exception", "emulated bad request"),
    401: ("security_exception", "emulated authentication failure"),
    403: ("security_exception", "emulated authorization failure"),
    404: ("index_not_found_exception", "emulated missing index"),
    413: ("content_too_long_exception", "emulated request entity too large"),
}


def cause(type_: str, reason: str, **extra: Any) -> dict[str, Any]:
    """Return one error object: ``type`` and ``reason`` first, then any extra fields."""
    return {"type": type_, "reason": reason, **extra}


def request_error(status: int, error: dict[str, Any]) -> dict[str, Any]:
    """Wrap an error object into the body of a failed request, with its ``root_cause`` list."""
    root = {key: value for key, value in error.items() if key != "caused_by"}
    return {"error": {"root_cause": [root], **error}, "status": status}


def request_fault(status: int) -> dict[str, Any]:
    """Return the body a cluster under stress answers a whole request with, for ``status``."""
    type_, reason = _REQUEST_FAULT_TYPES.get(status, ("exception", f"emulated failure with status {status}"))
    return request_error(status, cause(type_, reason))


def item_fault(status: int, index: str, index_uuid: str) -> dict[str, Any]:
    """Return the error object of a bulk item failed with an injected ``status``."""
    type_ = _ITEM_FAULT_TYPES.get(status, "exception")
    if status == 429:
        reason = (
            f"rejected execution of primary operation [shard_detail=[{index}][0][C]] on "
            "EsThreadPoolExecutor[name = es-emulator/write, queue capacity = 10000, "
            "org.elasticsearch.common.util.concurrent.EsThreadPoolExecutor@1[Running, pool size = 2, "
            "active threads = 2, queued tasks = 10000, completed tasks = 0]]"
        )
        return cause(type_, reason)
    if status == 503:
        reason = f"[{index}][0] primary shard is not active Timeout: [1m], request: [BulkShardRequest [[{index}][0]]]"
        return cause(type_, reason, index_uuid=index_uuid, shard="0", index=index)
    return cause(type_, f"emulated item failure with status {status}", index_uuid=index_uuid, index=index)


def version_conflict(index: str, index_uuid: str, doc_id: str, current_version: int) -> dict[str, Any]:
    """Return the 409 a ``create`` gets when ``doc_id`` already exists in ``index``."""
    return cause(
        "version_conflict_engine_exception",
        f"[{doc_id}]: version conflict, document already exists (current version [{current_version}])",
        index_uuid=index_uuid,
        shard="0",
        index=index,
    )


def seq_no_conflict(
    index: str, index_uuid: str, doc_id: str, required: tuple[int, int], current: tuple[int, int] | None
) -> dict[str, Any]:
    """Return the 409 of an ``if_seq_no``/``if_primary_term`` write that lost the race."""
    if current is None:
        reason = (
            f"[{doc_id}]: version conflict, required seqNo [{required[0]}], primary term [{required[1]}]"
            " but no document was found"
        )
    else:
        reason = (
            f"[{doc_id}]: version conflict, required seqNo [{required[0]}], primary term [{required[1]}]."
            f" current document has seqNo [{current[0]}] and primary term [{current[1]}]"
        )
    return cause("version_conflict_engine_exception", reason, index_uuid=index_uuid, shard="0", index=index)


def document_parsing(doc_id: str, reason: str, caused_by: dict[str, Any] | None = None) -> dict[str, Any]:
    """Return the 400 of a source the mapper cannot take (the document is not stored)."""
    extra: dict[str, Any] = {"caused_by": caused_by} if caused_by else {}
    return cause("mapper_parsing_exception", f"failed to parse: {reason} in document with id '{doc_id}'", **extra)


def poisoned(field: str, doc_id: str) -> dict[str, Any]:
    """Return the 400 a document with the emulator's poison field gets, like a mapping clash."""
    return cause(
        "mapper_parsing_exception",
        f"failed to parse field [{field}] of type [long] in document with id '{doc_id}'. "
        f"Preview of field's value: 'poison'",
        caused_by=cause("illegal_argument_exception", 'For input string: "poison"'),
    )


def invalid_index_name(index: str, why: str) -> dict[str, Any]:
    """Return the 400 for an index name Elasticsearch refuses to create."""
    return cause("invalid_index_name_exception", f"Invalid index name [{index}], {why}", index_uuid="_na_", index=index)


def document_missing(index: str, index_uuid: str, doc_id: str) -> dict[str, Any]:
    """Return the 404 an ``update`` of a document that does not exist gets."""
    return cause(
        "document_missing_exception",
        f"[{doc_id}]: document missing",
        index_uuid=index_uuid,
        shard="0",
        index=index,
    )


def data_stream_needs_create(index: str) -> dict[str, Any]:
    """Return the 400 a non-``create`` write to a data stream gets."""
    return cause(
        "illegal_argument_exception",
        f"only write ops with an op_type of create are allowed in data streams (target [{index}])",
    )


def index_not_found(index: str) -> dict[str, Any]:
    """Return the 404 for a concrete index name that does not exist."""
    return cause(
        "index_not_found_exception",
        f"no such index [{index}]",
        **{"resource.type": "index_or_alias", "resource.id": index, "index_uuid": "_na_", "index": index},
    )


def matches_data_stream(expression: str) -> dict[str, Any]:
    """Return the 400 an index-only API (delete index) answers for a data stream's name."""
    return cause(
        "illegal_argument_exception",
        f"The provided expression [{expression}] matches a data stream, specify the corresponding concrete indices"
        " instead.",
    )
