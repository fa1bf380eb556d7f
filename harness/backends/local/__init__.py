"""The embedded local backend: what only processes on this machine need. The process
supervisor (`backend.py`) and the kernel-level network faults on loopback addresses
(`network.py`); the iptables rules themselves (`harness/faults/netfilter.py`) and libfaketime
(`harness/faults/clock.py`) serve the Docker backend too, inside each container's namespace."""

from harness.backends.local.backend import LocalBackend

__all__ = ["LocalBackend"]
