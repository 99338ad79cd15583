"""Every URL of the app or web tier that we print or link to is a real route of the app (never its 404 `/`)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from flask.testing import FlaskClient

from tests.support.make import make
from tests.support.stand_ins import stand_in

ROOT = Path(__file__).resolve().parents[3]
# Host ports that reach the app (api tier) or the web tier: compose's defaults and kind's NodePort.
APP_PORTS = {"8080", "8090", "30080"}
URL = re.compile(r"http://(?:127\.0\.0\.1|localhost):(\d+)(/[^\s`'\")|<>]*)?")
FENCE = re.compile(r"^\s*(`{3,}|~{3,})\s*(\S*)")


def app_urls(text: str) -> list[str]:
    """The app/web URLs in ``text``: the path after the port, `/` when the URL stops at the port."""
    # Sentence punctuation after a URL is not part of it.
    return [(match.group(2) or "/").rstrip(".,;:") for match in URL.finditer(text) if match.group(1) in APP_PORTS]


def documented_urls() -> list[tuple[str, str]]:
    """(file:line, path) of every app/web URL in the docs, outside sample-output (```text) blocks."""
    found = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md")), ROOT / "k8s" / "kind-cluster.yaml"]:
        in_sample = False
        fence = ""
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            opened = FENCE.match(line)
            if opened and not fence:
                fence, in_sample = opened.group(1), opened.group(2) == "text"
                continue
            if opened and line.strip() == fence:
                fence, in_sample = "", False
                continue
            if not in_sample:
                found += [(f"{path.relative_to(ROOT)}:{number}", url) for url in app_urls(line)]
    return found


def printed_by_make_up(tmp_path: Path) -> list[str]:
    """What `make up` prints, run with a stand-in for `docker compose` that maps ports as .env does."""
    compose = stand_in(
        tmp_path / "compose",
        "# port SERVICE PORT -> the host address compose would print; every other call succeeds silently.\n"
        "for arg; do if [[ $prev == port ]]; then service=$arg; fi; prev=$arg; done\n"
        'if [[ " $* " == *" port "* ]]; then\n'
        '  case $service in web) echo 127.0.0.1:8090 ;; *) echo "127.0.0.1:${@: -1}" ;; esac\n'
        "fi\n",
    )
    result = make("up", f"COMPOSE={compose}")
    assert result.returncode == 0, result.stdout + result.stderr
    return app_urls(result.stdout)


def printed_by_k8s_wait(tmp_path: Path) -> list[str]:
    """What scripts/k8s-wait.sh prints at the end of `make deploy`, run against a stand-in kubectl."""
    kubectl = stand_in(
        tmp_path / "kubectl",
        'case " $* " in\n'
        '  *" get deployments "*) echo deployment.apps/web ;;\n'
        '  *" get job "*) exit 1 ;;\n'
        '  *" service web "*jsonpath*) echo 30080 ;;\n'
        '  *" service kibana "*jsonpath*) echo 30561 ;;\n'
        '  *" service prometheus "*jsonpath*) echo 30090 ;;\n'
        "esac\n",
    )
    result = subprocess.run(
        [str(ROOT / "scripts" / "k8s-wait.sh"), "kind-test", "1s"],
        env={**os.environ, "KUBECTL": str(kubectl)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return app_urls(result.stdout)


def assert_routes(client: FlaskClient, paths: list[str]) -> None:
    missing = [path for path in paths if client.get(urlsplit(path).path).status_code == 404]
    assert missing == [], f"{missing} are 404 in the app"


def test_make_up_prints_real_routes(client: FlaskClient, tmp_path: Path) -> None:
    paths = printed_by_make_up(tmp_path)
    assert "/api/greeting" in paths, paths  # the web tier's entry point
    assert_routes(client, paths)


def test_make_deploy_prints_real_routes(client: FlaskClient, tmp_path: Path) -> None:
    paths = printed_by_k8s_wait(tmp_path)
    assert "/api/greeting" in paths, paths
    assert_routes(client, paths)


@pytest.mark.parametrize(("where", "path"), documented_urls())
def test_documented_url_is_a_real_route(client: FlaskClient, where: str, path: str) -> None:
    assert client.get(urlsplit(path).path).status_code != 404, f"{where}: {path} is a 404 in the app"


def test_the_checks_catch_a_bare_port(client: FlaskClient) -> None:
    assert app_urls("open http://127.0.0.1:30080 in a browser") == ["/"]
    assert client.get("/").status_code == 404
