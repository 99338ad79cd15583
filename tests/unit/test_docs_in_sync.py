"""The READMEs are part of the interface: their variable and target tables must match the code."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from sidecar_common.settings import describe_settings
from tests.support.service_settings import (
    SERVICE_PACKAGES,
    readme_rows,
    readme_table,
    settings_aliases,
    settings_class,
    settings_variables,
)

ROOT = Path(__file__).resolve().parents[2]


def help_defaults(cls: type[Any]) -> dict[str, str]:
    defaults = {}
    for line in describe_settings(cls).splitlines()[1:]:
        parts = line.split(None, 1)
        rest = parts[1].strip() if len(parts) > 1 else ""
        defaults[parts[0]] = rest
    return defaults


@pytest.mark.parametrize(("directory", "package"), sorted(SERVICE_PACKAGES.items()))
def test_readme_lists_every_variable_of_the_settings(directory: str, package: str) -> None:
    cls = settings_class(package)
    code_vars = settings_variables(package)
    readme = readme_table(directory)
    assert readme is not None, f"services/{directory}/README.md is missing"
    assert set(readme) == code_vars, (
        f"services/{directory}/README.md is out of sync with {package}.settings: "
        f"missing {sorted(code_vars - set(readme))}, stale {sorted(set(readme) - code_vars)}"
    )
    # Each README default must be how --help shows it (the table may add words, e.g. "8080 (tcp)").
    # An older name's row says which variable it stands for.
    shown = help_defaults(cls)
    for alias, variable in settings_aliases(package).items():
        assert f"`{variable}`" in readme_rows(directory)[alias], f"{alias}: the README should name {variable}"
    for var, default in readme.items():
        if var not in shown:
            continue  # an older name: no default of its own
        expected = shown[var].split("  ")[0]
        if expected in ("(unset)", "(required)", "(empty)", ""):
            continue
        assert expected in default, f"{var}: README says {default!r}, the code's default is {expected!r}"


def test_readme_lists_every_make_target() -> None:
    out = subprocess.run(["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    targets = {re.sub(r"\x1b\[[0-9;]*m", "", line).split()[0] for line in out.splitlines() if line.strip()}
    readme = (ROOT / "README.md").read_text()
    missing = sorted(t for t in targets if f"`make {t}" not in readme and f"`{t}`" not in readme)
    assert not missing, f"README.md's make target table lacks {missing}"
