"""Helpers shared by the test layers: polling with a deadline, free ports, processes, a fake clock."""

from tests.support.clock import FakeClock
from tests.support.polling import wait_until
from tests.support.ports import free_tcp_port, free_udp_port
from tests.support.processes import ServiceProcess

__all__ = ["FakeClock", "ServiceProcess", "free_tcp_port", "free_udp_port", "wait_until"]
