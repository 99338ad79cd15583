"""config_sidecar — watch a mounted ConfigMap, validate, publish atomically, make the app reload.

See services/config-sidecar/README.md. ``python -m config_sidecar`` runs it.
"""

from config_sidecar.app import ConfigSidecar
from config_sidecar.publisher import Publisher, PublishError, PublishResult
from config_sidecar.settings import Settings
from config_sidecar.source import ConfigFile, ConfigSet, NameFilter, SourceReader
from config_sidecar.sync import Syncer, SyncResult
from config_sidecar.validate import ConfigError, Validator

__all__ = [
    "ConfigError",
    "ConfigFile",
    "ConfigSet",
    "ConfigSidecar",
    "NameFilter",
    "PublishError",
    "PublishResult",
    "Publisher",
    "Settings",
    "SourceReader",
    "SyncResult",
    "Syncer",
    "Validator",
]
