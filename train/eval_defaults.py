"""The defaults of evaluation (train/evaluation.py), in a module of their own: `main.py eval --help` and the
command's parser read them without importing the model code evaluation needs (half a second here)."""

DEFAULT_MAX_NEW_TOKENS = 128
