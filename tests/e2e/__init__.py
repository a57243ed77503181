"""Browser tests: the workbench driven in headless Chromium (`pytest -m e2e`)."""
