"""Knowing a dataset: checks without an LLM (checks.run_checks / check_dataset, the kinds table in
kinds.py, one module per check), redaction (redact.py) and the LLM judge (judge.py)."""
