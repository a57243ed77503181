"""Torch-free evaluation: statistics of exam scores, coverage by training data, code answers and their sandbox."""
