"""``kubelet-swap``: update a directory the way kubelet updates a ConfigMap volume, for labs and demos.

Editing files in ``config/`` of a compose bind mount exercises the plain-directory
path only. This copies a plain directory into a kubelet-style layout with the
sidecar's own publisher (new ``..<timestamp>`` dir, ``..data`` swap, old dir
deleted at once, like kubelet), so the real ``..data``-swap path can be tried
without a cluster. Nothing is validated: pushing a broken file is part of the lab.
"""

from __future__ import annotations

from pathlib import Path

from config_sidecar.publisher import Publisher, PublishResult
from config_sidecar.source import NameFilter, SourceReader


def kubelet_swap(source: Path, target: Path, name_filter: NameFilter) -> PublishResult | None:
    """Publish ``source``'s files into ``target``; return None when the content there is the same."""
    config = SourceReader(source, name_filter).read()
    publisher = Publisher(target, keep_previous=False)  # kubelet deletes the old version right away
    current = publisher.published()
    if current is not None and current.fingerprint == config.fingerprint:
        return None
    return publisher.publish(config)
