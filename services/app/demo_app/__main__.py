"""``python -m demo_app`` / ``demo-app``: parse the environment, then run gunicorn with the app."""

from __future__ import annotations

from collections.abc import Sequence

from demo_app.server import GunicornServer
from demo_app.settings import Settings
from sidecar_common import parse_cli

DESCRIPTION = (
    "The sidecar-lab sample app: a Flask API on gunicorn (workers x threads) that reads its config "
    "from APP_CONFIG_DIR, logs ECS JSON to APP_LOG_FILE and stdout, and sends statsd over UDP."
)


def main(argv: Sequence[str] | None = None) -> None:
    settings, _ = parse_cli(Settings, "demo-app", DESCRIPTION, argv)
    GunicornServer(settings).run()


if __name__ == "__main__":
    main()
