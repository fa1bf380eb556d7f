"""Where a run's results are kept, and the one way they are written (atomically)."""
