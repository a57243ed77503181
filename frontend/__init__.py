"""Every way in for a person or a program: the web page (`web/`), the command line (`cli/`) and the
OpenAI-compatible HTTP API (`api/`). Nothing below this layer imports it."""
