"""``python -m mesh_proxy``: run Envoy as the pod's mesh sidecar, run the lab CA, or check a policy."""

from __future__ import annotations

import argparse
import logging
import sys
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from mesh_proxy import ca, cert_dir
from mesh_proxy.check import check_policy
from mesh_proxy.envoy import EnvoyMissingError, envoy_binary
from mesh_proxy.settings import Settings
from mesh_proxy.startup import Startup
from sidecar_common import EXIT_CONFIG, EXIT_FAILED, EXIT_OK, EXIT_UNAVAILABLE, StartupError, run_service

PROG = "mesh-proxy"
DESCRIPTION = (
    "The pod's service-mesh sidecar: real Envoy with mTLS (SPIFFE identities from the lab CA), RBAC, "
    "and outbound policy (timeouts, retries, faults, outlier ejection) from filesystem xDS. With no command, "
    "wait for usable certificates and policy, render the bootstrap into MESH_RUN_DIR and exec Envoy."
)
DEFAULT_CA_DAYS = 365.0
DEFAULT_CERT_DAYS = 1.0

logger = logging.getLogger("mesh_proxy")


def _add_commands(parser: argparse.ArgumentParser) -> None:
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("run", help="start the proxy (the default)")

    ca_parser = commands.add_parser("ca", help="the lab's certificate authority")
    ca_commands = ca_parser.add_subparsers(dest="ca_command", metavar="COMMAND", required=True)
    init = ca_commands.add_parser(
        "init", help="create the CA (ca.crt, ca.key) in DIR; an existing CA is kept", description="Create the CA."
    )
    init.add_argument("--dir", type=Path, required=True, metavar="CA_DIR", help="directory for ca.crt and ca.key")
    init.add_argument("--days", type=float, default=DEFAULT_CA_DAYS, help="validity in days (default %(default)s)")

    issue = commands.add_parser(
        "issue",
        help="issue (or rotate) a workload certificate into CERT_DIR, kubelet-style",
        description="Sign a new key pair whose URI SAN is spiffe://<trust domain>/ns/<NS>/sa/<SA> and swap "
        "tls.crt, tls.key and ca.crt into --out the way kubelet updates a Secret volume (..data swap). "
        "Running it again rotates the certificate; the CA key never leaves CA_DIR.",
    )
    issue.add_argument("--ca", type=Path, required=True, metavar="CA_DIR", help="directory made by `ca init`")
    issue.add_argument("--namespace", required=True, metavar="NS", help="Kubernetes namespace of the workload")
    issue.add_argument("--service-account", required=True, metavar="SA", help="its service account")
    issue.add_argument("--out", type=Path, required=True, metavar="CERT_DIR", help="the workload's MESH_CERT_DIR")
    issue.add_argument("--days", type=float, default=DEFAULT_CERT_DAYS, help="validity in days (default %(default)s)")
    issue.add_argument("--trust-domain", default=ca.TRUST_DOMAIN, help="SPIFFE trust domain (default %(default)s)")

    check = commands.add_parser(
        "check-policy",
        help="validate DIR/mesh/routes.yaml and DIR/mesh/clusters.yaml (JSON Schema, then envoy --mode validate)",
        description="Exit 0 if the policy in DIR (a MESH_POLICY_DIR) is valid, else 1 with one line naming the "
        "file and the problem.",
    )
    check.add_argument("dir", type=Path, metavar="DIR", help="policy directory (holding mesh/)")


def main(argv: Sequence[str] | None = None) -> int:
    return run_service(
        PROG,
        Settings,
        MeshProxy,
        description=DESCRIPTION,
        argv=argv,
        commands=_add_commands,
        run_command=_run_command,
    )


class MeshProxy:
    """The lifecycle every sidecar has, ending in an exec: once Envoy runs, this process is Envoy.

    ``start()`` finds the Envoy binary and checks MESH_RUN_DIR and the log volume (StartupError,
    exit 3); ``run(stop)`` waits for usable certificates, policy and upstream, then replaces
    itself with Envoy; stopped while waiting, it returns (exit 0) with nothing started.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._startup: Startup | None = None

    def start(self) -> None:
        try:
            envoy = envoy_binary()
        except EnvoyMissingError as exc:
            raise StartupError("envoy", str(exc)) from None
        startup = Startup(self.settings, envoy)
        startup.prepare()
        self._startup = startup

    def run(self, stop: threading.Event) -> None:
        assert self._startup is not None, "start() first"
        if self._startup.wait(stop):
            self._startup.exec()  # does not return; an OSError is a failure while running (exit 1)

    def close(self) -> None:
        """Nothing to release: no port is open before Envoy, and Envoy is this process."""


def _run_command(settings: Settings, args: argparse.Namespace) -> int | None:
    if args.command == "ca":
        return _ca_init(args.dir, args.days)
    if args.command == "issue":
        return _issue(args)
    if args.command == "check-policy":
        return _check_policy(args.dir, settings)
    return None  # no command, or `run`: the proxy


def _ca_init(directory: Path, days: float) -> int:
    now = datetime.now(UTC)
    if (directory / ca.CA_CERT).exists() or (directory / ca.CA_KEY).exists():
        try:
            existing = ca.load_authority(directory)
        except ca.CaError as exc:
            print(f"{PROG} ca init: {exc}", file=sys.stderr)
            return EXIT_UNAVAILABLE
        print(f"{directory}: CA exists, valid until {existing.certificate.not_valid_after_utc.isoformat()}")
        return EXIT_OK
    try:
        authority = ca.create_authority(directory, timedelta(days=days), now)
    except ca.CaError as exc:
        print(f"{PROG} ca init: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except OSError as exc:
        print(f"{PROG} ca init: {directory}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    print(f"{directory}: CA created, valid until {authority.certificate.not_valid_after_utc.isoformat()}")
    return EXIT_OK


def _issue(args: argparse.Namespace) -> int:
    try:
        identity = ca.spiffe_id(args.namespace, args.service_account, args.trust_domain)
        validity = timedelta(days=args.days)
        if validity <= timedelta(0):
            raise ca.CaError(f"--days must be positive, got {args.days}")
    except ca.CaError as exc:
        print(f"{PROG} issue: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        authority = ca.load_authority(args.ca)
        workload = ca.issue(authority, identity, validity, datetime.now(UTC))
        version = cert_dir.publish(args.out, workload)
    except ca.CaError as exc:
        print(f"{PROG} issue: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    print(
        f"{args.out}: ..data -> {version.name}: {identity}, serial {workload.serial:x}, "
        f"valid until {workload.certificate.not_valid_after_utc.isoformat()}"
    )
    return EXIT_OK


def _check_policy(directory: Path, settings: Settings) -> int:
    try:
        envoy = envoy_binary()
    except EnvoyMissingError as exc:
        print(f"{PROG} check-policy: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    problem = check_policy(directory, envoy, settings)
    if problem is not None:
        print(f"{PROG} check-policy: {problem}", file=sys.stderr)
        return EXIT_FAILED
    print(f"{directory}: mesh policy OK")
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
