"""The upstream pods' addresses: MESH_UPSTREAM_ADDRESSES resolved to the IPs Envoy's EDS needs.

EDS takes IP addresses only, so names (a Kubernetes Service, a compose service) are
resolved once, when the proxy starts. A Service's ClusterIP is fixed for the
Service's life, so this is enough in Kubernetes; an address that changes later
needs a restart of the proxy.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

from mesh_proxy.bootstrap import Endpoint
from mesh_proxy.settings import split_host_port


@dataclass(frozen=True)
class ResolveProblem:
    """A name that does not resolve (yet)."""

    address: str
    reason: str

    def __str__(self) -> str:
        return f"MESH_UPSTREAM_ADDRESSES: {self.address}: {self.reason}"


def resolve(addresses: tuple[str, ...]) -> list[Endpoint] | ResolveProblem:
    """Every IP of every address, in order, without duplicates; or the first name that does not resolve."""
    endpoints: list[Endpoint] = []
    for address in addresses:
        host, port = split_host_port(address)
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
        except (socket.gaierror, UnicodeError) as exc:
            return ResolveProblem(address, f"does not resolve ({exc})")
        for _family, _type, _proto, _name, sockaddr in infos:
            endpoint = Endpoint(str(sockaddr[0]), port)
            if endpoint not in endpoints:
                endpoints.append(endpoint)
    return endpoints
