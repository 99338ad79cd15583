from __future__ import annotations

from tests.support import free_tcp_port, free_udp_port


def test_a_port_is_never_handed_out_twice() -> None:
    tcp = [free_tcp_port() for _ in range(300)]
    udp = [free_udp_port() for _ in range(300)]
    assert len(set(tcp)) == len(tcp)
    assert len(set(udp)) == len(udp)
