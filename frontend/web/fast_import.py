"""Import gradio without its import-time stub generation.

gradio 6 re-derives a `.pyi` typing stub for every component class on each import
(`gradio.component_meta.create_or_modify_pyi`), which parses component sources with `ast`:
about 3 s of a 4 s `import gradio` on a 2-core machine. The stubs only serve IDEs and ship
with the wheel, so the workbench skips that step to start within its 5-second budget.
If a gradio version drops the function, this does nothing.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys

_TARGET = "gradio.component_meta"


class _SkipStubGeneration(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname != _TARGET:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        original_exec = spec.loader.exec_module

        def exec_module(module):
            original_exec(module)
            if hasattr(module, "create_or_modify_pyi"):
                module.create_or_modify_pyi = _no_stub

        spec.loader.exec_module = exec_module
        return spec


def _no_stub(*args, **kwargs) -> None:
    return None


def install() -> None:
    """Must run before the first `import gradio`; harmless if gradio is already imported."""
    if _TARGET in sys.modules or any(isinstance(f, _SkipStubGeneration) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _SkipStubGeneration())
