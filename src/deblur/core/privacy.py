"""Nothing leaves the machine: the usage reporting of third-party runtimes deblur runs, switched off.

Of the runtimes deblur imports, two report usage:
- OpenVINO's model conversion (`openvino.convert_model`, which Keras's OpenVINO export calls) sends
  usage events to Google Analytics through the `openvino-telemetry` package, by default unless the
  user has run `opt_in_out --opt_out`, and writes a client id and a usage count under `~/intel/`.
  Opting out that way would itself write there, so deblur installs a silent stand-in for the
  package before OpenVINO imports it (OpenVINO's converter falls back to its own stub without the
  package, so it needs nothing from it); where the real one is already imported, its sending and
  its files are switched off on the class.
- onnxruntime collects platform telemetry (Windows ETW events); `onnxruntime.disable_telemetry_events()`
  is its documented switch, called as soon as deblur imports it.
TensorFlow, Keras, JAX, PyTorch, tf2onnx, LiteRT, scikit-image and OpenCV send nothing.
"""

from __future__ import annotations

import importlib.machinery
import sys
import types
from typing import Any

TELEMETRY_MODULE = "openvino_telemetry"


class _Silent:
    """Takes any arguments, does nothing, and answers every attribute with itself (a no-op callable)."""

    consent = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __call__(self, *args: Any, **kwargs: Any) -> _Silent:
        return self

    def __getattr__(self, name: str) -> _Silent:
        return self


def _stub(name: str) -> types.ModuleType:
    module = types.ModuleType(name, "deblur's silent stand-in for openvino-telemetry: nothing is sent or written")
    module.__path__ = []  # a package: `from openvino_telemetry.backend import backend_ga4` resolves too
    module.__spec__ = importlib.machinery.ModuleSpec(name, None, is_package=True)  # find_spec() finds it
    module.__getattr__ = _stub_attribute  # type: ignore[method-assign]
    return module


def _stub_attribute(name: str) -> type[_Silent]:
    """Every name of the package is the no-op class; its dunders are not there, as in a real module
    (a `__file__` answered with a class broke tools that walk sys.modules, e.g. hypothesis)."""
    if name.startswith("__") and name.endswith("__"):
        raise AttributeError(name)
    return _Silent


_SILENCED = ("init", "send_event", "start_session", "end_session", "send_error", "send_stack_trace",
             "send_opt_in_event", "get_stats", "force_shutdown")


def silence_telemetry() -> None:
    """Before OpenVINO is imported (or converts a model): no usage event is sent, no file written."""
    real = sys.modules.get(TELEMETRY_MODULE)
    if real is None:
        for name in (TELEMETRY_MODULE, f"{TELEMETRY_MODULE}.backend", f"{TELEMETRY_MODULE}.backend.backend_ga4"):
            sys.modules.setdefault(name, _stub(name))
        return
    telemetry = getattr(real, "Telemetry", None)
    if isinstance(telemetry, type) and not getattr(telemetry, "_deblur_silenced", False):
        def nothing(self: Any, *args: Any, **kwargs: Any) -> None:
            self.consent = False

        for method in _SILENCED:
            if hasattr(telemetry, method):
                setattr(telemetry, method, nothing)
        telemetry._deblur_silenced = True  # type: ignore[attr-defined]


def after_import(module: types.ModuleType) -> None:
    """Switch off what a runtime collects once imported (onnxruntime's documented call)."""
    if module.__name__ == "onnxruntime":
        disable = getattr(module, "disable_telemetry_events", None)
        if callable(disable):
            disable()
