"""The index templates Elasticsearch 8 installs on its own (``stack.templates.enabled``, on by default).

Each has priority 100 and ``data_stream: {}``, so the first write to a name matching
``logs-*-*`` (``logs-app-2026.11.26`` included), ``metrics-*-*`` or ``synthetics-*-*``
creates a **data stream**, not an index: a hidden backing index
``.ds-<name>-<yyyy.MM.dd>-000001`` behind the name, writes with ``op_type: create`` only,
``@timestamp`` required. A user template only wins with a higher priority (Elastic's advice:
above 500). The bodies keep what clients read (patterns, priority, data_stream, composed_of,
_meta); the mappings and settings behind ``composed_of`` (ECS dynamic mappings,
``ignore_malformed``) are not emulated.
"""

from __future__ import annotations

from typing import Any

BUILT_IN_PRIORITY = 100


def _template(kind: str, composed_of: list[str]) -> dict[str, Any]:
    return {
        "index_patterns": [f"{kind}-*-*"],
        "composed_of": composed_of,
        "priority": BUILT_IN_PRIORITY,
        "version": 12,
        "_meta": {"description": f"default {kind} template installed by x-pack", "managed": True},
        "data_stream": {"hidden": False, "allow_custom_routing": False},
        "allow_auto_create": True,
        "ignore_missing_component_templates": [f"{kind}@custom"],
    }


def built_in_templates() -> dict[str, dict[str, Any]]:
    """The built-in composable templates by name, fresh copies each call."""
    return {
        "logs": _template("logs", ["logs@mappings", "logs@settings", "logs@custom", "ecs@mappings"]),
        "metrics": _template(
            "metrics", ["metrics@mappings", "data-streams@mappings", "metrics@settings", "metrics@custom"]
        ),
        "synthetics": _template("synthetics", ["synthetics@mappings", "synthetics@settings", "synthetics@custom"]),
    }
