"""The service-mesh sidecar: real Envoy, the lab CA, and the outbound policy loaded by filesystem xDS."""

from mesh_proxy.bootstrap import Endpoint, render_bootstrap, render_endpoints, render_secrets, write_run_dir
from mesh_proxy.ca import Authority, CaError, WorkloadCertificate, create_authority, issue, load_authority, spiffe_id
from mesh_proxy.cert_dir import CertificateProblem
from mesh_proxy.check import PolicyProblem, check_policy
from mesh_proxy.settings import Settings

__all__ = [
    "Authority",
    "CaError",
    "CertificateProblem",
    "Endpoint",
    "PolicyProblem",
    "Settings",
    "WorkloadCertificate",
    "check_policy",
    "create_authority",
    "issue",
    "load_authority",
    "render_bootstrap",
    "render_endpoints",
    "render_secrets",
    "spiffe_id",
    "write_run_dir",
]
