"""Dataset generation: slices x rounds sent to a provider concurrently, items appended as they arrive."""
