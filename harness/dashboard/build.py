"""Build the static dashboard site into a directory, all at once.

The site is written to a temporary sibling directory and swapped in with renames, so a reader
(or a browser left open on it) sees the old site or the new one, never a half-written one, and
a build that fails leaves the previous site untouched. Links are relative to the final
directory, not the temporary one, so the site works when opened straight from disk.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.catalog import Catalog, RunEntry
from harness.dashboard.pages import Site, index_page, releases_page, scenario_page
from harness.dashboard.suites import read_suite_runs
from harness.dashboard.trends import slo_limits
from harness.errors import InputError, SummaryError
from harness.store.summary import SUMMARY_FILE, load_summary

DASHBOARD_DIR = "dashboard"
# Written into every site: only a directory holding it may be replaced by a new build, so
# `--output` pointed at the wrong directory fails instead of deleting it.
MARKER_FILE = ".hftchaos-dashboard"


@dataclass(frozen=True)
class BuiltSite:
    directory: Path
    pages: list[Path]
    runs: int
    suite_runs: int
    problems: list[str] = field(default_factory=list)  # what was left out, one line each

    @property
    def index(self) -> Path:
        return self.directory / "index.html"


def default_output(results_root: Path) -> Path:
    return results_root / DASHBOARD_DIR


def build_dashboard(
    catalog: Catalog,
    output: Path | None = None,
    progress: Callable[[str], None] = lambda _message: None,
) -> BuiltSite:
    results_root = catalog.results_root
    output = (output or default_output(results_root)).resolve()
    _check_replaceable(output)
    entries, problems = _existing_runs(catalog.runs())
    suite_runs, suite_problems = read_suite_runs(results_root)
    problems += suite_problems
    site = Site(directory=output, entries=entries, suite_runs=suite_runs)
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}-building-", dir=output.parent))
    try:
        pages = _write_pages(site, staging, results_root, progress)
        _swap_in(staging, output)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return BuiltSite(
        directory=output,
        pages=[output / page.name for page in pages],
        runs=len(entries),
        suite_runs=len(suite_runs),
        problems=problems,
    )


def _existing_runs(entries: Sequence[RunEntry]) -> tuple[list[RunEntry], list[str]]:
    """Catalog rows whose run directory was deleted since it was indexed would be dead links."""
    kept = [entry for entry in entries if (entry.path / SUMMARY_FILE).exists()]
    gone = len(entries) - len(kept)
    problems = [f"{gone} catalogued run(s) no longer on disk were left out"] if gone else []
    return kept, problems


def _write_pages(
    site: Site, staging: Path, results_root: Path, progress: Callable[[str], None]
) -> list[Path]:
    written = []

    def write(name: str, html: str) -> None:
        path = staging / name
        path.write_text(html, encoding="utf-8")
        written.append(path)

    (staging / MARKER_FILE).write_text("built by `hftchaos dashboard`; replaced by each build\n")
    write("index.html", index_page(site))
    write("releases.html", releases_page(site))
    for scenario in site.scenarios:
        progress(f"scenario {scenario}")
        write(site.scenario_file(scenario), scenario_page(site, scenario, _limits(site, scenario)))
    return written


def _limits(site: Site, scenario: str) -> dict[str, float]:
    """The SLO limits of the scenario as its newest run judged them."""
    newest = site.runs_of(scenario)[0]
    try:
        return slo_limits(load_summary(newest.path))
    except SummaryError:
        return {}  # the trends are drawn without a limit line


def _check_replaceable(output: Path) -> None:
    if not output.exists():
        return
    if not output.is_dir():
        raise InputError(f"--output {output}: is a file, not a directory")
    if (output / MARKER_FILE).exists() or not any(output.iterdir()):
        return
    raise InputError(
        f"--output {output}: not empty and not a dashboard built by hftchaos; "
        "choose a new or empty directory"
    )


def _swap_in(staging: Path, output: Path) -> None:
    staging.chmod(0o755)  # mkdtemp makes it private; the site is meant to be shared
    if not output.exists():
        staging.rename(output)
        return
    retired = output.with_name(f".{output.name}-old-{staging.name.rsplit('-', 1)[-1]}")
    output.rename(retired)
    staging.rename(output)
    shutil.rmtree(retired, ignore_errors=True)
