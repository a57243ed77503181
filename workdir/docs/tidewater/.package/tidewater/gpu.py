"""The `gpu` extra, reduced to what runs without CuPy: availability check and ArrayStage's TW-1501 / CPU fallback."""

from __future__ import annotations

from typing import Any

from .config import load_config
from .errors import CudaUnavailableError
from .pipeline import Stage


def cuda_available() -> bool:
    """True when CuPy can see at least one CUDA device."""
    try:
        import cupy
    except ImportError:
        return False
    try:
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


class ArrayStage(Stage):
    """A stage meant for the GPU: TW-1501 when CUDA is missing, unless gpu.fallback_to_cpu is true."""

    def call(self, value: Any) -> Any:
        if not cuda_available() and not load_config()["gpu.fallback_to_cpu"]:
            raise CudaUnavailableError("GPU extra requested but CUDA unavailable; install a CUDA 12.x driver or set "
                                       "gpu.fallback_to_cpu = true", stage=self.name)
        return self.func(value)

    __call__ = call
