"""Reload the app with a signal (e.g. SIGHUP to gunicorn's master), found by name in /proc.

Needs ``shareProcessNamespace: true`` in Kubernetes (``pid: service:app`` in
compose) so the sidecar sees the app's processes. A signal carries no answer, so
delivery counts as acknowledgement; if no such process exists yet (the app is
still starting), the notifier retries, so the reload is not lost.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from pathlib import Path

from config_sidecar.notifier import ReloadError, ReloadRequest

COMM_LENGTH = 15  # the kernel truncates /proc/<pid>/comm to 15 characters


@dataclass(frozen=True)
class ProcessInfo:
    pid: int
    ppid: int
    comm: str
    argv: tuple[str, ...]

    def is_named(self, name: str) -> bool:
        """Match the command name or the program it runs (``gunicorn``, or ``demo_app`` in ``python -m demo_app``)."""
        return self.comm == name[:COMM_LENGTH] or name in self.programs()

    def programs(self) -> set[str]:
        """argv[0]'s basename and, for an interpreter, the script or ``-m`` module it runs (not any argument)."""
        if not self.argv:
            return set()
        names = {os.path.basename(self.argv[0])}
        if os.path.basename(self.argv[0]).startswith("python") and len(self.argv) > 1:
            args = self.argv[1:]
            if args[0] == "-m" and len(args) > 1:
                names.add(args[1])
            elif not args[0].startswith("-"):
                names.add(os.path.basename(args[0]))
        return names


def list_processes(proc_root: Path = Path("/proc")) -> list[ProcessInfo]:
    """Read every process visible in ``proc_root``; processes that exit meanwhile are skipped."""
    processes = []
    for entry in proc_root.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            comm = (entry / "comm").read_text().rstrip("\n")
            argv = tuple(arg.decode(errors="replace") for arg in (entry / "cmdline").read_bytes().split(b"\0") if arg)
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # exited while we looked, or not ours to read
        # The comm field in stat is parenthesised and may contain spaces: parse after the last ")".
        fields = stat[stat.rfind(")") + 2 :].split()
        processes.append(ProcessInfo(int(entry.name), int(fields[1]), comm, argv))
    return processes


def find_targets(name: str, processes: list[ProcessInfo], own_pid: int) -> list[int]:
    """PIDs named ``name`` whose parent is not also named so: gunicorn's master, not its workers."""
    matching = {p.pid: p for p in processes if p.pid != own_pid and p.is_named(name)}
    return sorted(pid for pid, p in matching.items() if p.ppid not in matching)


class SignalReloader:
    """Send ``signum`` to the top-most processes named ``process_name``."""

    def __init__(self, signum: signal.Signals, process_name: str, proc_root: Path = Path("/proc")) -> None:
        self.signum = signum
        self.process_name = process_name
        self.proc_root = proc_root

    def describe(self) -> str:
        return f"{self.signum.name} to {self.process_name!r}"

    def reload(self, request: ReloadRequest) -> str:
        targets = find_targets(self.process_name, list_processes(self.proc_root), os.getpid())
        if not targets:
            raise ReloadError(f"no process named {self.process_name!r} (app starting, or no shared PID namespace?)")
        delivered = 0
        for pid in targets:
            try:
                os.kill(pid, self.signum)
                delivered += 1
            except ProcessLookupError:
                continue  # exited between the scan and the kill
            except PermissionError:
                raise ReloadError(f"not allowed to signal pid {pid} (run as the app's user)") from None
        if delivered == 0:
            raise ReloadError(f"every process named {self.process_name!r} exited before the signal")
        return request.version
