"""Comparing the recovery figures of two releases: statistics, verdicts and the HTML page."""
