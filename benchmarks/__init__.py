"""Benchmarks: speed and memory figures of hftchaos and of what it does to the system under
test, written as JSON under results/bench/ by `nox -s bench`. Machines here are noisy, so each
benchmark reports ratios of figures measured in the same run, next to the raw figures."""
