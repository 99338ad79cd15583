"""The lab checker must fail on a wrong lab, or "the labs cannot rot" is an empty promise."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from tests.labs.block_runner import BlockCheckError, BlockResult, check_block
from tests.labs.expectations import parse_expectation, parse_path
from tests.labs.markdown_blocks import Lab, LabFormatError, parse_lab
from tests.labs.running_pod import ROOT

pytestmark = pytest.mark.unit

LABS = sorted((ROOT / "docs" / "workshop").glob("[0-9][0-9]-*.md"))


def lab(text: str) -> str:
    return textwrap.dedent(text).lstrip()


def parse(text: str, name: str = "99-test.md") -> Lab:
    return parse_lab(Path(name), lab(text))


def run_single(text: str, tmp_path: Path) -> BlockResult:
    (block,) = parse(text).blocks
    return check_block(block, tmp_path, {"PATH": "/usr/bin:/bin"})


# --- the convention ---------------------------------------------------------------


def test_a_checked_block_keeps_its_target_options_expectations_and_sample() -> None:
    parsed = parse(
        """
        # Lab
        <!-- check: local eventually=20 timeout=5 needs=kubectl,perl
        expect: "greeting"
        expect-json: .version ~ ^[0-9a-f]+$
        exit: 3
        -->
        ```bash
        curl -s 127.0.0.1:${APP_PORT:-8080}/api/greeting
        ```

        ```text
        {"greeting": "hi"}
        ```
        """
    )
    (block,) = parsed.blocks
    assert block.target == "local"
    assert (block.eventually, block.timeout, block.exit_status) == (20.0, 5.0, 3)
    assert block.needs == ("kubectl", "perl")
    assert [str(e) for e in block.expectations] == ['expect: "greeting"', "expect-json: .version ~ ^[0-9a-f]+$"]
    assert block.script == "curl -s 127.0.0.1:${APP_PORT:-8080}/api/greeting\n"
    assert block.sample == '{"greeting": "hi"}\n'
    assert block.line == 7


def test_a_command_block_without_a_directive_is_an_error() -> None:
    with pytest.raises(LabFormatError, match="command block without"):
        parse(
            """
            Run this:

            ```bash
            make local
            ```
            """
        )


def test_no_check_needs_a_reason_and_is_recorded() -> None:
    parsed = parse(
        """
        <!-- no-check: needs kind -->
        ```bash
        kubectl get pods
        ```
        """
    )
    assert parsed.blocks == ()
    assert parsed.unchecked == ((2, "needs kind"),)
    with pytest.raises(LabFormatError, match="needs a reason"):
        parse("<!-- no-check: -->\n```bash\nls\n```\n")


@pytest.mark.parametrize(
    ("directive", "error"),
    [
        ("<!-- check: laptop -->", "needs a target"),
        ("<!-- check: local retries=3 -->", "unknown check option"),
        ("<!-- check: local\nexpect-json: .a == hello\n-->", "not a JSON literal"),
        ("<!-- check: local\nexpect-re: (\n-->", "bad regex"),
        ("<!-- check: local\nexpected: x\n-->", "unknown directive line"),
        ("<!-- check: local\nexit: zero\n-->", "exit needs an integer"),
    ],
)
def test_malformed_directives_are_errors(directive: str, error: str) -> None:
    with pytest.raises(LabFormatError, match=error):
        parse(f"{directive}\n```bash\ntrue\n```\n")


def test_indented_blocks_in_lists_are_found_and_dedented() -> None:
    parsed = parse(
        """
        1. Start it:

           <!-- check: offline -->
           ```sh
           echo one
             echo two
           ```
        """
    )
    assert parsed.blocks[0].script == "echo one\n  echo two\n"


def test_other_languages_need_no_directive() -> None:
    assert parse("```yaml\ngreeting: hi\n```\n```mermaid\nflowchart LR\n```\n").blocks == ()


# --- the matcher ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "output", "holds"),
    [
        ("expect: ready", '{"status": "ready"}', True),
        ("expect: ready", '{"status": "not yet"}', False),
        ("expect-not: Traceback", "all good", True),
        ("expect-not: Traceback", "Traceback (most recent call last)", False),
        ("expect-re: ^http_requests_total\\{.*\\} [1-9]", 'x\nhttp_requests_total{status="200"} 3.0', True),
        ("expect-re: ^http_requests_total\\{.*\\} [1-9]", 'http_requests_total{status="200"} 0.0', False),
        ("expect-json: .config.version", '{"config": {"version": "ab12"}}', True),
        ("expect-json: .config.version", '{"config": {"version": null}}', False),
        ("expect-json: .config.missing", '{"config": {}}', False),
        ('expect-json: .greeting == "hi"', 'make: ok\n{"greeting": "hi"}', True),
        ('expect-json: .greeting == "hi"', '{"greeting": "hello"}', False),
        ('expect-json: .["log.level"] != "error"', '{"log.level": "info"}', True),
        ("expect-json: .items[1].n >= 2", '{"items": [{"n": 0}, {"n": 2}]}', True),
        ("expect-json: .items[1].n > 2", '{"items": [{"n": 0}, {"n": 2}]}', False),
        ("expect-json: .count > 0", '{"count": "many"}', False),
        ("expect-json: .count > 0", "not json at all", False),
    ],
)
def test_expectations_hold_or_say_why(line: str, output: str, holds: bool) -> None:
    failure = parse_expectation(line).failure(output)
    assert (failure is None) == holds, failure


def test_json_paths() -> None:
    assert parse_path('.a.b[0].["c.d"][-1]') == ["a", "b", 0, "c.d", -1]
    with pytest.raises(ValueError, match="bad JSON path"):
        parse_path(".a..b")


# --- running blocks: a deliberately wrong lab must fail -----------------------------


def test_a_block_whose_output_matches_passes(tmp_path: Path) -> None:
    result = run_single(
        """
        <!-- check: offline
        expect: hello
        expect-json: .n == 2
        -->
        ```bash
        echo hello
        echo '{"n": 2}'
        ```
        """,
        tmp_path,
    )
    assert result.status == 0


def test_a_wrong_expectation_fails_with_the_block_and_its_output(tmp_path: Path) -> None:
    with pytest.raises(BlockCheckError) as failed:
        run_single(
            """
            <!-- check: offline
            expect: goodbye
            -->
            ```bash
            echo hello
            ```
            """,
            tmp_path,
        )
    message = str(failed.value)
    assert "99-test.md:4" in message
    assert "'goodbye' not in the output" in message
    assert "echo hello" in message
    assert "hello\n" in message


def test_a_failing_command_fails_the_block_even_if_later_lines_succeed(tmp_path: Path) -> None:
    with pytest.raises(BlockCheckError, match="exit status 1, the lab expects 0"):
        run_single("<!-- check: offline -->\n```bash\nfalse\necho fine\n```\n", tmp_path)


def test_an_expected_exit_status_is_asserted(tmp_path: Path) -> None:
    result = run_single("<!-- check: offline\nexit: 3\n-->\n```bash\nexit 3\n```\n", tmp_path)
    assert result.status == 3


def test_a_sample_output_that_contradicts_the_expectations_fails(tmp_path: Path) -> None:
    with pytest.raises(BlockCheckError, match="sample output after the block contradicts"):
        run_single(
            """
            <!-- check: offline
            expect: ready
            -->
            ```bash
            echo ready
            ```

            ```text
            not yet
            ```
            """,
            tmp_path,
        )


def test_eventually_reruns_until_the_expectation_holds(tmp_path: Path) -> None:
    # The third run prints "done": the block passes only because it is re-run.
    result = run_single(
        """
        <!-- check: offline eventually=30
        expect: done
        -->
        ```bash
        echo x >> runs
        if [ "$(wc -l < runs)" -ge 3 ]; then echo done; else echo waiting; fi
        ```
        """,
        tmp_path,
    )
    assert "done" in result.output
    assert (tmp_path / "runs").read_text().count("x") == 3


def test_eventually_gives_up_and_says_so(tmp_path: Path) -> None:
    with pytest.raises(BlockCheckError, match="still failing after eventually=1s"):
        run_single("<!-- check: offline eventually=1\nexpect: never\n-->\n```bash\necho no\n```\n", tmp_path)


def test_a_block_that_hangs_is_stopped_at_its_timeout(tmp_path: Path) -> None:
    with pytest.raises(BlockCheckError, match=r"timed out after 1s"):
        run_single("<!-- check: offline timeout=1 -->\n```bash\necho start\nsleep 30\n```\n", tmp_path)


# --- the real labs follow the convention -----------------------------------------------


@pytest.mark.parametrize("lab_path", LABS, ids=lambda path: path.stem)
def test_every_lab_follows_the_convention_and_checks_something(lab_path: Path) -> None:
    parsed = parse_lab(lab_path)
    assert parsed.blocks, f"{lab_path.name} has no checked block"
    for block in parsed.blocks:
        assert block.expectations or block.sample is None, (
            f"{block.where}: a block that shows sample output must also say what to assert in it"
        )


def test_the_index_links_every_lab() -> None:
    index = (ROOT / "docs" / "workshop" / "README.md").read_text()
    missing = [path.name for path in LABS if f"({path.name})" not in index]
    assert not missing, f"docs/workshop/README.md does not link {missing}"


def test_relative_links_in_the_workshop_resolve() -> None:
    link = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
    broken = []
    for page in sorted((ROOT / "docs" / "workshop").glob("*.md")):
        for target in link.findall(page.read_text()):
            if "://" not in target and not (page.parent / target).exists():
                broken.append(f"{page.name} -> {target}")
    assert not broken, f"broken links: {broken}"
