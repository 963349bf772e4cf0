"""The koji-kabi benchmark: corpus generator (corpus.py) and scenarios (run.py)."""
