"""Order-flow load: an open-loop Locust worker in its own process, and the driver that runs it.

Import `harness.load.driver` from the harness. Nothing here imports locust: only the worker
process (`python -m harness.load.worker`) does, because importing it monkey-patches the
standard library with gevent.
"""
