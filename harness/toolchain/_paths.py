"""Where the toolchain cache lives."""

from __future__ import annotations

from pathlib import Path

from harness import settings

HOME_VARIABLE = settings.HOME.variable


def repo_root() -> Path | None:
    """The checkout holding this harness package, or None when it is installed elsewhere."""
    # harness/ is a namespace package (no __file__): count up from this module instead.
    root = Path(__file__).resolve().parents[2]
    pyproject = root / "pyproject.toml"
    try:
        # A site-packages directory may hold someone else's pyproject.toml; ours names us.
        if 'name = "hftchaos"' in pyproject.read_text(encoding="utf-8"):
            return root
    except OSError:
        pass
    return None


def cache_home() -> Path:
    """$HFTCHAOS_HOME, else <repo root>/.cache/hftchaos, else ~/.cache/hftchaos."""
    configured = settings.HOME.read()
    if configured:
        return Path(configured).expanduser().resolve()
    root = repo_root()
    if root is not None:
        return root / ".cache" / "hftchaos"
    return Path.home() / ".cache" / "hftchaos"


def staging_root(home: Path) -> Path:
    """Half-finished installs live here until they are renamed into place."""
    return home / "tmp"
