"""The lab's own small certificate authority: one ECDSA P-256 root that signs SPIFFE workload certificates.

A workload certificate carries exactly one URI SAN, the workload's SPIFFE ID
``spiffe://<trust domain>/ns/<namespace>/sa/<service account>``, and is valid
for a short time (a day by default, like Istio's), so rotation is routine and
tested, not an emergency. The CA key stays in the CA directory: the workload
directory gets ``tls.crt``, ``tls.key`` and the CA's certificate only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from sidecar_common.durable import fsync_directory, write_file

TRUST_DOMAIN = "sidecar-lab.local"
CA_CERT = "ca.crt"
CA_KEY = "ca.key"
# Certificates are back-dated a little so a peer whose clock is slightly behind accepts them at once.
CLOCK_SKEW = timedelta(minutes=5)
_ORGANIZATION = "sidecar-lab"
# Kubernetes namespace and service-account names are DNS labels / subdomains.
_K8S_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_TRUST_DOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,253}[a-z0-9])?$")


class CaError(Exception):
    """The CA directory or a certificate cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class Authority:
    """The CA's certificate and private key."""

    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def certificate_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)


@dataclass(frozen=True)
class WorkloadCertificate:
    """An issued workload certificate, its private key and the CA certificate that verifies it (PEM)."""

    identity: str
    certificate: x509.Certificate
    key_pem: bytes
    ca_pem: bytes

    @property
    def certificate_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    @property
    def serial(self) -> int:
        return self.certificate.serial_number


def spiffe_id(namespace: str, service_account: str, trust_domain: str = TRUST_DOMAIN) -> str:
    """The SPIFFE ID of a workload; raise CaError for names Kubernetes would not accept."""
    if not _TRUST_DOMAIN.match(trust_domain):
        raise CaError(f"trust domain {trust_domain!r} is not a lower-case DNS name")
    for what, name in (("namespace", namespace), ("service account", service_account)):
        if not _K8S_NAME.match(name):
            raise CaError(f"{what} {name!r} is not a Kubernetes name (lower-case letters, digits, '-', '.')")
    return f"spiffe://{trust_domain}/ns/{namespace}/sa/{service_account}"


def create_authority(directory: Path, validity: timedelta, now: datetime) -> Authority:
    """Create a new CA in ``directory`` (``ca.crt``, ``ca.key`` 0600); never overwrite an existing one."""
    if validity <= timedelta(0):
        raise CaError(f"CA validity must be positive, got {validity}")
    for name in (CA_CERT, CA_KEY):
        if (directory / name).exists():
            raise CaError(f"{directory / name}: already exists; refusing to replace a CA")
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, _ORGANIZATION),
            x509.NameAttribute(NameOID.COMMON_NAME, "sidecar-lab mesh CA"),
        ]
    )
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    # The key first, exclusively: two concurrent `ca init` runs cannot both win.
    write_file(directory / CA_KEY, _key_pem(key), 0o600)
    write_file(directory / CA_CERT, certificate.public_bytes(serialization.Encoding.PEM), 0o644)
    fsync_directory(directory)
    return Authority(certificate, key)


def load_authority(directory: Path) -> Authority:
    """Read the CA from ``directory``; raise CaError naming the file that is missing or unusable."""
    cert_path, key_path = directory / CA_CERT, directory / CA_KEY
    certificate = load_certificate(cert_path)
    try:
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except FileNotFoundError:
        raise CaError(f"{key_path}: missing (run `python -m mesh_proxy ca init --dir {directory}`)") from None
    except (OSError, ValueError, TypeError) as exc:
        raise CaError(f"{key_path}: not a readable unencrypted PEM private key ({exc})") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise CaError(f"{key_path}: expected an EC private key, got {type(key).__name__}")
    public = certificate.public_key()
    if (
        not isinstance(public, ec.EllipticCurvePublicKey)
        or key.public_key().public_numbers() != public.public_numbers()
    ):
        raise CaError(f"{key_path}: does not belong to {cert_path}")
    return Authority(certificate, key)


def issue(authority: Authority, identity: str, validity: timedelta, now: datetime) -> WorkloadCertificate:
    """Sign a new key pair for ``identity`` (a SPIFFE ID), valid from ``now`` (back-dated) for ``validity``."""
    if validity <= timedelta(0):
        raise CaError(f"certificate validity must be positive, got {validity}")
    not_after = min(now + validity, authority.certificate.not_valid_after_utc)
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, _ORGANIZATION)]))
        .issuer_name(authority.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(not_after)
        # An X.509-SVID: exactly one URI SAN, the SPIFFE ID; no DNS names, not a CA.
        .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(identity)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(authority.key.public_key()),
            critical=False,
        )
        .sign(authority.key, hashes.SHA256())
    )
    return WorkloadCertificate(identity, certificate, _key_pem(key), authority.certificate_pem)


def load_certificate(path: Path) -> x509.Certificate:
    """Read the first PEM certificate of ``path``; raise CaError naming the file."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CaError(f"{path}: missing") from None
    except OSError as exc:
        raise CaError(f"{path}: unreadable ({exc.strerror})") from None
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError:
        raise CaError(f"{path}: not a PEM certificate") from None


def uri_sans(certificate: x509.Certificate) -> list[str]:
    """The URI SANs of ``certificate`` (a workload's SPIFFE ID)."""
    try:
        extension = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    return list(extension.value.get_values_for_type(x509.UniformResourceIdentifier))


def signed_by(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    """True if ``issuer``'s key signed ``certificate``."""
    try:
        certificate.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
