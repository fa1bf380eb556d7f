"""Every environment variable hftchaos reads or sets, declared once: its name, what it means
and its default. Modules read a variable through its `Setting`, never by a string of their own,
so that a renamed or new variable cannot be missed by the docs (README's table is checked
against `SETTINGS` by a test) or read twice with two defaults."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Setting:
    variable: str
    meaning: str
    default: str = ""  # what applies when the variable is unset or blank, as the docs say it
    set_by_harness: bool = False  # the harness sets it for the processes it starts

    def read(self, environ: Mapping[str, str] | None = None) -> str | None:
        """The value, stripped; None when unset or blank (a blank value means the default)."""
        value = (os.environ if environ is None else environ).get(self.variable, "").strip()
        return value or None

    def value(self, environ: Mapping[str, str] | None = None) -> str:
        """The value, else the default: for settings whose default is a literal value."""
        return self.read(environ) or self.default


HOME = Setting(
    "HFTCHAOS_HOME",
    "the toolchain cache (Toxiproxy, Kafka, Java) and `up` state",
    "<checkout>/.cache/hftchaos, else ~/.cache/hftchaos",
)
RESULTS = Setting("HFTCHAOS_RESULTS", "the results root: runs, catalog, suites", "./results")
BACKEND = Setting(
    "HFTCHAOS_BACKEND", "where topologies run when --backend is not given", "the topology's"
)
RUN_REGISTRY = Setting(
    "HFTCHAOS_RUN_REGISTRY",
    "where live runs register, so a later run can clean up after a killed one",
    "/run/lock/hftchaos-runs",
)
LIBFAKETIME = Setting("HFTCHAOS_LIBFAKETIME", "a libfaketime.so.1 to use", "the PyPI package's")
TOXIPROXY_BIN = Setting("TOXIPROXY_BIN", "a toxiproxy-server binary to use", "built into HOME")
KAFKA_HOME = Setting("KAFKA_HOME", "a Kafka installation to use (its libs/)", "fetched into HOME")
BASE_IMAGE = Setting(
    "HFTCHAOS_BASE_IMAGE",
    "the image the Docker backend's builds start from",
    "hftchaos/base:bookworm",
)
CHROMIUM = Setting("HFTCHAOS_CHROMIUM", "the Chromium that checks reports", "/usr/bin/chromium")
CHROMEDRIVER = Setting("HFTCHAOS_CHROMEDRIVER", "its driver", "/usr/bin/chromedriver")
LOAD_WORKERS = Setting(
    "HFTCHAOS_LOAD_WORKERS",
    "load workers the harness starts on this machine",
    "one per 1,000 requests/s of the schedule, at most one per core",
)
LOAD_REMOTE_WORKERS = Setting(
    "HFTCHAOS_LOAD_REMOTE_WORKERS", "load workers that join from other machines", "0"
)
LOAD_BIND = Setting(
    "HFTCHAOS_LOAD_BIND",
    "where the load's Locust master listens (host:port)",
    "a free loopback port",
)
RUN_MARK = Setting(
    "HFTCHAOS_RUN_MARK",
    "the run directory, on every process a run starts (how survivors are found)",
    set_by_harness=True,
)
SERVICE = Setting("HFTCHAOS_SERVICE", "the service's name, on each service", set_by_harness=True)
KAFKA_LIBS = Setting(
    "HFTCHAOS_KAFKA_LIBS", "the Kafka jars, for services that run Kafka", set_by_harness=True
)

SETTINGS = (
    HOME,
    RESULTS,
    BACKEND,
    RUN_REGISTRY,
    LIBFAKETIME,
    TOXIPROXY_BIN,
    KAFKA_HOME,
    BASE_IMAGE,
    CHROMIUM,
    CHROMEDRIVER,
    LOAD_WORKERS,
    LOAD_REMOTE_WORKERS,
    LOAD_BIND,
    RUN_MARK,
    SERVICE,
    KAFKA_LIBS,
)
