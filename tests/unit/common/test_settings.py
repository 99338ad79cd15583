from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from sidecar_common.settings import SettingsError, describe_settings, load_settings, parse_cli, setting


@dataclass(frozen=True)
class Example:
    port: int = setting("EX_PORT", 8080, "TCP port")
    ratio: float = setting("EX_RATIO", 0.5, "a fraction")
    enabled: bool = setting("EX_ENABLED", False, "switch")
    url: str | None = setting("EX_URL", None, "optional URL")
    paths: tuple[str, ...] = setting("EX_PATHS", ("/a/*.log",), "globs")
    state: Path = setting("EX_STATE", Path("/var/lib/x"), "state dir")
    password: str | None = setting("EX_PASSWORD", None, "secret", secret=True)


def test_defaults_apply_when_unset() -> None:
    s = load_settings(Example, {})
    assert s == Example()


def test_values_parse_by_annotation() -> None:
    s = load_settings(
        Example,
        {
            "EX_PORT": "9",
            "EX_RATIO": "0.25",
            "EX_ENABLED": "yes",
            "EX_URL": "http://x",
            "EX_PATHS": "a, b,",
            "EX_STATE": "/s",
        },
    )
    assert (s.port, s.ratio, s.enabled, s.url, s.paths, s.state) == (9, 0.25, True, "http://x", ("a", "b"), Path("/s"))


def test_empty_optional_means_unset() -> None:
    assert load_settings(Example, {"EX_URL": ""}).url is None


@pytest.mark.parametrize(("var", "value"), [("EX_PORT", "eighty"), ("EX_ENABLED", "maybe"), ("EX_RATIO", "x")])
def test_bad_value_names_the_variable(var: str, value: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(Example, {var: value})
    assert info.value.variable == var
    assert var in str(info.value)


def test_secret_value_is_not_echoed() -> None:
    @dataclass(frozen=True)
    class Secretive:
        token: int = setting("EX_TOKEN", 0, "secret number", secret=True)

    with pytest.raises(SettingsError) as info:
        load_settings(Secretive, {"EX_TOKEN": "hunter2"})
    assert "hunter2" not in str(info.value)


def test_help_lists_every_variable_with_default() -> None:
    text = describe_settings(Example)
    for var, default in [("EX_PORT", "8080"), ("EX_ENABLED", "false"), ("EX_URL", "(unset)"), ("EX_PATHS", "/a/*.log")]:
        line = next(line for line in text.splitlines() if var in line)
        assert default in line


def test_parse_cli_exits_2_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        parse_cli(Example, "ex", "demo", [], {"EX_PORT": "-x-"})
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "EX_PORT" in err[0]


@dataclass(frozen=True)
class Ruled:
    level: str = setting("EX_LEVEL", "INFO", "level", parse=str.upper, choices=("DEBUG", "INFO"))
    port: int = setting("EX_PORT", 80, "port", minimum=0, maximum=65535)
    interval: float = setting("EX_INTERVAL", 1.0, "seconds", exclusive_minimum=0)
    new_name: int = setting("EX_NEW", 1, "renamed", aliases=("EX_OLD",))
    token: str = setting("EX_TOKEN", "ab", "secret", secret=True, choices=("ab", "cd"))


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"EX_LEVEL": "verbose"}, "EX_LEVEL: must be one of DEBUG, INFO, got 'VERBOSE'"),
        ({"EX_PORT": "70000"}, "EX_PORT: must be <= 65535, got 70000"),
        ({"EX_PORT": "-1"}, "EX_PORT: must be >= 0, got -1"),
        ({"EX_INTERVAL": "0"}, "EX_INTERVAL: must be > 0, got 0.0"),
        ({"EX_OLD": "x"}, "EX_OLD: invalid value 'x'"),
        ({"EX_TOKEN": "zz-secret"}, "EX_TOKEN: invalid value (not shown: secret)"),
    ],
)
def test_declared_rules_name_the_variable_in_one_message(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(Ruled, env)
    assert str(caught.value).startswith(message)
    assert "zz-secret" not in str(caught.value)


def test_rules_accept_good_values_and_an_older_name_still_works() -> None:
    s = load_settings(Ruled, {"EX_LEVEL": "debug", "EX_PORT": "0", "EX_INTERVAL": "0.1", "EX_OLD": "7"})
    assert (s.level, s.port, s.interval, s.new_name) == ("DEBUG", 0, 0.1, 7)
    # The current name wins over the older one.
    assert load_settings(Ruled, {"EX_NEW": "3", "EX_OLD": "7"}).new_name == 3
    assert "(also read as EX_OLD)" in describe_settings(Ruled)
