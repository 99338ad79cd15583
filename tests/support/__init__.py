"""Helpers shared by the test layers: polling with a deadline, free ports, processes."""

from tests.support.polling import wait_until
from tests.support.ports import free_tcp_port, free_udp_port
from tests.support.processes import ServiceProcess

__all__ = ["ServiceProcess", "free_tcp_port", "free_udp_port", "wait_until"]
