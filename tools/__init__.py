"""The torch-free library, one subpackage per subject; `core/` is the foundation of every layer."""
