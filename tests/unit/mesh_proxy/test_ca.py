"""The lab CA: SPIFFE workload certificates, kubelet-style certificate directories, rotation."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509

from mesh_proxy import ca, cert_dir

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def authority(tmp_path: Path) -> ca.Authority:
    return ca.create_authority(tmp_path / "ca", timedelta(days=30), NOW)


def test_spiffe_id_of_a_workload() -> None:
    assert ca.spiffe_id("sidecar-lab", "web") == "spiffe://sidecar-lab.local/ns/sidecar-lab/sa/web"


@pytest.mark.parametrize(("namespace", "account"), [("Sidecar", "web"), ("ns", "we_b"), ("", "web"), ("ns", "-web")])
def test_names_kubernetes_would_refuse_are_refused(namespace: str, account: str) -> None:
    with pytest.raises(ca.CaError, match="is not a Kubernetes name"):
        ca.spiffe_id(namespace, account)


def test_a_workload_certificate_is_an_x509_svid(authority: ca.Authority) -> None:
    workload = ca.issue(authority, ca.spiffe_id("sidecar-lab", "web"), timedelta(hours=2), NOW)
    cert = workload.certificate
    assert ca.uri_sans(cert) == ["spiffe://sidecar-lab.local/ns/sidecar-lab/sa/web"]
    assert (
        cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
        == []
    )
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert cert.not_valid_after_utc == NOW + timedelta(hours=2)
    assert cert.not_valid_before_utc < NOW  # back-dated for peers whose clock is a little behind
    assert ca.signed_by(cert, authority.certificate)


def test_a_certificate_never_outlives_its_ca(authority: ca.Authority) -> None:
    workload = ca.issue(authority, ca.spiffe_id("sidecar-lab", "web"), timedelta(days=365), NOW)
    assert workload.certificate.not_valid_after_utc == authority.certificate.not_valid_after_utc


def test_an_existing_ca_is_never_replaced(tmp_path: Path, authority: ca.Authority) -> None:
    with pytest.raises(ca.CaError, match="already exists"):
        ca.create_authority(tmp_path / "ca", timedelta(days=1), NOW)
    assert ca.load_authority(tmp_path / "ca").certificate == authority.certificate
    assert (tmp_path / "ca" / ca.CA_KEY).stat().st_mode & 0o777 == 0o600


def test_a_ca_key_that_does_not_match_is_named(tmp_path: Path, authority: ca.Authority) -> None:
    other = ca.create_authority(tmp_path / "other", timedelta(days=1), NOW)
    (tmp_path / "ca" / ca.CA_KEY).write_bytes((tmp_path / "other" / ca.CA_KEY).read_bytes())
    with pytest.raises(ca.CaError, match=r"ca\.key: does not belong to"):
        ca.load_authority(tmp_path / "ca")
    assert other.certificate != authority.certificate


def test_publish_writes_a_kubelet_style_directory_without_the_ca_key(tmp_path: Path, authority: ca.Authority) -> None:
    out = tmp_path / "certs"
    workload = ca.issue(authority, ca.spiffe_id("sidecar-lab", "web"), timedelta(hours=1), NOW)
    cert_dir.publish(out, workload)
    assert os.readlink(out / "tls.crt") == "..data/tls.crt"
    assert (out / "..data").is_symlink()
    assert sorted(p.name for p in (out / "..data").iterdir()) == ["ca.crt", "tls.crt", "tls.key"]
    assert (out / "tls.key").stat().st_mode & 0o777 == 0o600
    key_pem = (tmp_path / "ca" / ca.CA_KEY).read_bytes()
    assert all(key_pem not in path.read_bytes() for path in out.rglob("*") if path.is_file())


def test_reissuing_rotates_by_a_data_swap(tmp_path: Path, authority: ca.Authority) -> None:
    out = tmp_path / "certs"
    first = ca.issue(authority, ca.spiffe_id("sidecar-lab", "web"), timedelta(hours=1), NOW)
    cert_dir.publish(out, first)
    before = os.readlink(out / "..data")
    second = ca.issue(authority, ca.spiffe_id("sidecar-lab", "web"), timedelta(hours=1), NOW)
    cert_dir.publish(out, second)
    assert os.readlink(out / "..data") != before
    assert ca.load_certificate(out / "tls.crt").serial_number == second.serial != first.serial
