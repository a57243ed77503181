"""The OpenAI-compatible HTTP API over the loaded model, served beside the page or alone (`serve`)."""
