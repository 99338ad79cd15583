"""A workload's certificate directory: written like kubelet writes a Secret volume, checked before Envoy starts.

Layout (what a Kubernetes ``kubernetes.io/tls`` Secret with ``ca.crt`` looks like
when mounted)::

    tls.crt -> ..data/tls.crt      the workload certificate (SPIFFE ID in its URI SAN)
    tls.key -> ..data/tls.key      its private key (0600)
    ca.crt  -> ..data/ca.crt       the lab CA's certificate, to verify peers
    ..data  -> ..2024_05_01_10_00_00.123456789/

Re-issuing writes a new versioned directory and swaps ``..data``: that is a
rotation, and Envoy's SDS ``watched_directory`` on this directory picks it up
with no restart. The kubelet-style publish is the config sidecar's own publisher
(fsynced files, one atomic rename), not a copy of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from config_sidecar.publisher import Publisher, PublishError
from config_sidecar.source import ConfigFile, ConfigSet
from mesh_proxy.ca import CaError, WorkloadCertificate, load_certificate, signed_by, uri_sans

TLS_CERT = "tls.crt"
TLS_KEY = "tls.key"
CA_CERT = "ca.crt"


@dataclass(frozen=True)
class CertificateProblem:
    """Why the certificates cannot be used yet: the file and the reason."""

    file: Path
    reason: str

    def __str__(self) -> str:
        return f"{self.file}: {self.reason}"


def publish(cert_dir: Path, workload: WorkloadCertificate) -> Path:
    """Swap ``workload`` into ``cert_dir`` kubelet-style; return the new versioned directory."""
    files = {
        TLS_CERT: ConfigFile(workload.certificate_pem, 0o644),
        TLS_KEY: ConfigFile(workload.key_pem, 0o600),
        CA_CERT: ConfigFile(workload.ca_pem, 0o644),
    }
    try:
        # The version before stays until the next rotation, so a reader that resolved ..data
        # a moment before the swap still finds a matching certificate and key.
        return Publisher(cert_dir, keep_previous=True).publish(ConfigSet(files, layout="kubelet")).directory
    except PublishError as exc:
        raise CaError(str(exc)) from None


def check(cert_dir: Path, now: datetime) -> CertificateProblem | None:
    """None if Envoy can serve mTLS with ``cert_dir`` now; else the first problem found."""
    cert_path, key_path, ca_path = cert_dir / TLS_CERT, cert_dir / TLS_KEY, cert_dir / CA_CERT
    for path in (cert_path, key_path, ca_path):
        if not path.exists():
            return CertificateProblem(path, "missing (issue one: python -m mesh_proxy issue ...)")
    try:
        certificate = load_certificate(cert_path)
        authority = load_certificate(ca_path)
    except CaError as exc:
        return CertificateProblem(cert_path, str(exc).split(": ", 1)[-1])
    if now < certificate.not_valid_before_utc:
        return CertificateProblem(cert_path, f"not valid before {certificate.not_valid_before_utc.isoformat()}")
    if now >= certificate.not_valid_after_utc:
        return CertificateProblem(cert_path, f"expired at {certificate.not_valid_after_utc.isoformat()}")
    if now >= authority.not_valid_after_utc:
        return CertificateProblem(ca_path, f"expired at {authority.not_valid_after_utc.isoformat()}")
    if not uri_sans(certificate):
        return CertificateProblem(cert_path, "has no URI SAN (a SPIFFE ID)")
    if not signed_by(certificate, authority):
        return CertificateProblem(cert_path, f"not signed by the CA in {ca_path}")
    try:
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        return CertificateProblem(key_path, f"not a readable unencrypted PEM private key ({exc})")
    public = certificate.public_key()
    if not (
        isinstance(key, ec.EllipticCurvePrivateKey)
        and isinstance(public, ec.EllipticCurvePublicKey)
        and key.public_key().public_numbers() == public.public_numbers()
    ):
        return CertificateProblem(key_path, f"does not belong to {cert_path}")
    return None
