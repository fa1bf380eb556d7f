"""`python -m harness.toolchain`: provision the toolchain (what `hftchaos setup` does)."""

from __future__ import annotations

import sys
import time

from harness.errors import HarnessError
from harness.toolchain import cache_home, ensure_toolchain


def main() -> int:
    started_ns = time.monotonic_ns()
    print(f"toolchain cache: {cache_home()}", flush=True)
    try:
        ensure_toolchain(lambda item, message: print(f"{item:>12}: {message}", flush=True))
    except HarnessError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("interrupted: nothing half-installed was left in the cache", file=sys.stderr)
        return 130
    print(f"ready in {(time.monotonic_ns() - started_ns) / 1e9:.2f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
