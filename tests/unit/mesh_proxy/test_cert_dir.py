"""The start-up check of a certificate directory: each unusable state is named with its file."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mesh_proxy import ca, cert_dir

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
WEB = "spiffe://sidecar-lab.local/ns/sidecar-lab/sa/web"


@pytest.fixture
def authority(tmp_path: Path) -> ca.Authority:
    return ca.create_authority(tmp_path / "ca", timedelta(days=30), NOW)


@pytest.fixture
def certs(tmp_path: Path, authority: ca.Authority) -> Path:
    out = tmp_path / "certs"
    cert_dir.publish(out, ca.issue(authority, WEB, timedelta(hours=1), NOW))
    return out


def test_usable_certificates_pass(certs: Path) -> None:
    assert cert_dir.check(certs, NOW) is None


@pytest.mark.parametrize("name", ["tls.crt", "tls.key", "ca.crt"])
def test_a_missing_file_is_named(certs: Path, name: str) -> None:
    (certs / name).unlink()
    problem = cert_dir.check(certs, NOW)
    assert problem is not None
    assert problem.file == certs / name
    assert "missing" in problem.reason


def test_an_empty_directory_names_the_certificate(tmp_path: Path) -> None:
    problem = cert_dir.check(tmp_path / "nothing-yet", NOW)
    assert problem is not None
    assert problem.file.name == "tls.crt"


def test_an_expired_certificate_is_named_with_its_end(certs: Path) -> None:
    problem = cert_dir.check(certs, NOW + timedelta(hours=2))
    assert problem is not None
    assert problem.file == certs / "tls.crt"
    assert problem.reason.startswith("expired at 2026-05-01T13:00")


def test_a_certificate_from_another_ca_is_refused(tmp_path: Path, certs: Path) -> None:
    other = ca.create_authority(tmp_path / "other", timedelta(days=1), NOW)
    cert_dir.publish(certs, ca.issue(other, WEB, timedelta(hours=1), NOW))
    (certs / "..data" / "ca.crt").write_bytes((tmp_path / "ca" / "ca.crt").read_bytes())
    problem = cert_dir.check(certs, NOW)
    assert problem is not None
    assert "not signed by the CA" in problem.reason


def test_a_key_of_another_certificate_is_refused(tmp_path: Path, authority: ca.Authority, certs: Path) -> None:
    stray = ca.issue(authority, WEB, timedelta(hours=1), NOW)
    (certs / "..data" / "tls.key").write_bytes(stray.key_pem)
    problem = cert_dir.check(certs, NOW)
    assert problem is not None
    assert problem.file == certs / "tls.key"
    assert "does not belong to" in problem.reason


def test_garbage_is_not_a_certificate(certs: Path) -> None:
    (certs / "..data" / "tls.crt").write_text("not a certificate")
    problem = cert_dir.check(certs, NOW)
    assert problem is not None
    assert problem.reason == "not a PEM certificate"
