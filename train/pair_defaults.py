"""The defaults of pair building (train/pairs.py), in a module of their own: `main.py pairs --help` and the
command's parser read them without importing the model and quality code pair building needs."""

DEFAULT_SAMPLES = 3
DEFAULT_TEMPERATURE = 1.0
DEFAULT_MAX_NEW_TOKENS = 96
MAX_SAMPLES = 16
