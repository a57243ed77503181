"""The one LLM-run framework: client (the client layer), settings (the call settings and their ranges),
replies (reading a reply's JSON), runner (units, retries, correction, accounting, cancel; the background job)."""
