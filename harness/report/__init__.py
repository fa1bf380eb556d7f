"""HTML reports: shared page building blocks (`html`), headless-browser checks (`browser`) and
the per-run report (`run_report`)."""
