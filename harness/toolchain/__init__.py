"""`hftchaos setup`: the third-party programs a run needs, provisioned into one cache directory.

Cache: $HFTCHAOS_HOME, else `<repo root>/.cache/hftchaos/` in a checkout, else
`~/.cache/hftchaos/`. Each item can instead point at an existing install:

    item              where                        installed by                 override
    toxiproxy server  bin/toxiproxy-server         go install (Toxiproxy 2.12)  TOXIPROXY_BIN
    Kafka jars        kafka/libs/ (+ .pom.sha256)  mvn, from kafka/pom.xml      KAFKA_HOME
    libfaketime       the PyPI package's .so.1     pip (a dependency)           HFTCHAOS_LIBFAKETIME
    java              JAVA_HOME or PATH            apt (openjdk-17)             JAVA_HOME

Installs are staged in `<cache>/tmp/` and renamed into place, so an interrupted setup leaves
nothing half-written where `locate_toolchain` looks. `python -m harness.toolchain` runs setup.
"""

from harness.toolchain._paths import cache_home
from harness.toolchain._process import find_java
from harness.toolchain._setup import Report, Toolchain, ensure_toolchain, locate_toolchain

__all__ = [
    "Report",
    "Toolchain",
    "cache_home",
    "ensure_toolchain",
    "find_java",
    "locate_toolchain",
]
