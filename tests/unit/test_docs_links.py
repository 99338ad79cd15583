"""Every file a doc or a comment cites exists: relative links (and anchors), repository paths, file names."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.citations import Repository, github_slug

ROOT = Path(__file__).resolve().parents[2]
REPOSITORY = Repository(ROOT)
MARKDOWN = [path for path in REPOSITORY.files if path.suffix == ".md"]


@pytest.mark.parametrize("markdown", MARKDOWN, ids=lambda path: str(path.relative_to(ROOT)))
def test_relative_links_resolve(markdown: Path) -> None:
    broken = REPOSITORY.broken_links(markdown)
    assert not broken, "broken links:\n" + "\n".join(map(str, broken))


def test_cited_paths_exist() -> None:
    broken = [problem for path in REPOSITORY.files for problem in REPOSITORY.broken_paths(path)]
    assert not broken, "cited files that do not exist:\n" + "\n".join(map(str, broken))


def test_the_checks_read_the_whole_repository() -> None:
    names = {path.relative_to(ROOT).as_posix() for path in REPOSITORY.files}
    assert {"README.md", "Makefile", "scripts/docker-bootstrap.sh", "docs/workshop/README.md"} <= names
    assert not any(name.startswith((".venv/", ".git/")) for name in names)


# The checks must be able to fail: a small repository with one defect of each kind.


@pytest.fixture
def repository(tmp_path: Path) -> Repository:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "guide.md").write_text("# The guide\n\n## Ports — and why\n")
    (tmp_path / "services" / "app" / "demo_app").mkdir(parents=True)
    (tmp_path / "services" / "app" / "demo_app" / "server.py").write_text('"""Serve."""\n')
    (tmp_path / ".gitignore").write_text("/bench/results/\nbuild/\n")
    return Repository(tmp_path)


def write(repository: Repository, relative: str, text: str) -> Path:
    path = repository.root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("link", "problem"),
    [
        ("[guide](docs/missing.md)", "no such file"),
        ("[guide](docs/guide.md#no-such-heading)", "no heading #no-such-heading"),
        ("[outside](../../elsewhere/design.md)", "points outside the repository"),
        ("[here](#nowhere)", "no heading #nowhere"),
        ("[ref]: docs/gone.md", "no such file"),
    ],
)
def test_a_broken_link_is_reported(repository: Repository, link: str, problem: str) -> None:
    readme = write(repository, "README.md", f"# Title\n\n{link} is here.\n")
    [broken] = repository.broken_links(readme)
    assert problem in broken.problem
    assert str(broken).startswith("README.md:3: ")


@pytest.mark.parametrize(
    "link",
    [
        "[guide](docs/guide.md)",
        "[ports](docs/guide.md#ports--and-why)",
        "[title](#title)",
        "[web](https://example.com/x.md)",
        "`[not a link](nowhere.md)`",
    ],
)
def test_a_good_link_passes(repository: Repository, link: str) -> None:
    readme = write(repository, "README.md", f"# Title\n\nSee {link}.\n")
    assert repository.broken_links(readme) == []


@pytest.mark.parametrize(
    ("relative", "text", "cited"),
    [
        ("services/app/demo_app/metrics.py", '"""Metric names are fixed in CONTRACTS.md."""\n', "CONTRACTS.md"),
        ("services/app/demo_app/x.py", "# see services/app/demo_app/board.py\n", "services/app/demo_app/board.py"),
        ("services/app/README.md", "Read `shared/design/ANCHORS.md` first.\n", "shared/design/ANCHORS.md"),
        ("services/app/README.md", "| `board.py` | the reload board |\n", "board.py"),
        ("mk/x.mk", "# renders k8s/overlays/gone (see docs/guide.md)\n", "k8s/overlays/gone"),
        ("config/schema.json", '{"description": "The config (see CONTRACTS.md)."}\n', "CONTRACTS.md"),
    ],
)
def test_a_cited_file_that_does_not_exist_is_reported(
    repository: Repository, relative: str, text: str, cited: str
) -> None:
    (repository.root / "k8s" / "overlays").mkdir(parents=True)
    path = write(repository, relative, text)
    assert [broken.citation.text for broken in repository.broken_paths(path)] == [cited]


@pytest.mark.parametrize(
    "text",
    [
        "# see docs/guide.md and services/app/demo_app/server.py\n",
        "# the module map: demo_app/server.py, server.py\n",
        "# results land in bench/results/exporter.json (generated)\n",
        "# glob: services/*/demo_app\n",
        "# `kubectl logs deploy/demo-app -c log-sidecar`\n",
        "# 98,065 docs/s\n",
        "# https://github.com/example/repo/blob/main/CONTRIBUTING.md\n",
        "# the container's /etc/app/gunicorn.conf.py\n",
    ],
)
def test_a_citation_that_resolves_passes(repository: Repository, text: str) -> None:
    path = write(repository, "mk/x.mk", text)
    assert repository.broken_paths(path) == []


def test_fenced_code_is_not_a_citation(repository: Repository) -> None:
    lab = write(repository, "docs/lab.md", "# Lab\n\n```bash\ncp docs/guide.md docs/copy.md\n```\n")
    assert repository.broken_paths(lab) == []


@pytest.mark.parametrize(
    ("heading", "slug"),
    [
        ("Lab 00 — setup: the pod on your laptop", "lab-00--setup-the-pod-on-your-laptop"),
        ("Admin endpoints (`ADMIN_PORT`, 8081)", "admin-endpoints-admin_port-8081"),
        ("[Links](x.md) keep their text", "links-keep-their-text"),
    ],
)
def test_heading_ids_follow_github(heading: str, slug: str) -> None:
    assert github_slug(heading) == slug
