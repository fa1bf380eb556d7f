"""The static dashboard site built from the results catalog and the suite runs
(`hftchaos dashboard`): trends of recovery across releases, links to every run's report."""

from harness.dashboard.build import BuiltSite, build_dashboard, default_output

__all__ = ["BuiltSite", "build_dashboard", "default_output"]
