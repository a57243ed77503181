"""The web UI: one module per tab; `app.build_app` assembles the page."""

import os

from frontend.web import fast_import as _fast_import

# Before any tab module imports gradio: no analytics calls on a closed network, and no
# stub generation at import (see fast_import for the measured reason).
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
_fast_import.install()
