"""Losing LOG_STATE_DIR re-reads every file, but the re-derived ids make the resend harmless."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.unit.log_sidecar.conftest import MakeHarness
from tests.unit.log_sidecar.harness import FakeSink


def test_a_lost_checkpoint_resends_under_the_same_ids(make_harness: MakeHarness, logs: Path, tmp_path: Path) -> None:
    log = logs / "app.log"
    log.write_text("first\n")  # established while the file holds a single line
    sink = FakeSink()
    first = make_harness(sink)
    first.pump(3)
    with log.open("a") as out:
        out.write("second\nthird\n")
    first.pump(3)
    first.close()
    assert sink.messages() == ["first", "second", "third"]

    shutil.rmtree(tmp_path / "state")  # an emptyDir recreated, a volume wiped
    again = make_harness(sink)
    again.pump(5)
    assert sink.messages() == ["first", "second", "third"], "the resend was stored again under new ids"
    assert again.metric("log_sidecar_documents_total", result="duplicate") == 3
