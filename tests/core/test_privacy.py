"""deblur.core.privacy: runtimes are imported with their telemetry off; the OpenVINO telemetry stand-in is
silent and has no dunders."""

from __future__ import annotations


def test_the_telemetry_stand_in_has_no_dunders_so_sys_modules_can_be_walked(monkeypatch):
    """deblur's openvino-telemetry stand-in answered `__file__` with a class: hypothesis (and any tool
    walking sys.modules) then failed in every later test of the process, once an export had run."""
    import sys

    from deblur.core import privacy

    for name in [n for n in sys.modules if n.startswith(privacy.TELEMETRY_MODULE)]:
        monkeypatch.delitem(sys.modules, name)
    privacy.silence_telemetry()
    stub = sys.modules[privacy.TELEMETRY_MODULE]
    assert getattr(stub, "__file__", None) is None and stub.Telemetry is privacy._Silent
    assert all(isinstance(getattr(m, "__file__", None), str | None) for m in list(sys.modules.values()))


def test_openvino_telemetry_is_a_silent_stand_in(monkeypatch):
    """OpenVINO's converter reports usage through openvino-telemetry (default on, files under ~/intel/)."""
    import importlib
    import sys

    from deblur.core import privacy

    for name in [n for n in sys.modules if n.startswith(privacy.TELEMETRY_MODULE)]:
        monkeypatch.delitem(sys.modules, name)
    privacy.silence_telemetry()
    for name in (privacy.TELEMETRY_MODULE, f"{privacy.TELEMETRY_MODULE}.backend.backend_ga4"):
        monkeypatch.setitem(sys.modules, name, sys.modules[name])  # removed again after the test
    tm = importlib.import_module(privacy.TELEMETRY_MODULE)
    from openvino_telemetry.backend import backend_ga4  # noqa: F401 - what OpenVINO's converter imports

    telemetry = tm.Telemetry(tid="G-X", app_name="ovc", app_version="1", backend="ga4", enable_opt_in_dialog=False)
    telemetry.start_session("ovc")
    telemetry.send_event("ovc", "framework", "keras")
    assert telemetry.consent is False

    sent: list[str] = []

    class Real:  # an openvino_telemetry imported before deblur: its class is silenced
        consent = True

        def send_event(self, *args: object, **kwargs: object) -> None:
            sent.append("event")

    real = type(sys)("openvino_telemetry")
    real.Telemetry = Real
    monkeypatch.setitem(sys.modules, privacy.TELEMETRY_MODULE, real)
    privacy.silence_telemetry()
    Real().send_event("ovc", "x", "y")
    assert sent == []


def test_runtimes_are_imported_with_their_telemetry_off(monkeypatch):
    import sys

    from deblur.core import privacy
    from deblur.restore.engines.base import require

    calls: list[str] = []
    fake = type(sys)("onnxruntime")
    fake.disable_telemetry_events = lambda: calls.append("off")
    monkeypatch.setitem(sys.modules, "onnxruntime", fake)
    monkeypatch.setattr(privacy, "silence_telemetry", lambda: calls.append("silenced"))
    assert require("onnxruntime", "onnx", "onnx") is fake
    assert calls == ["silenced", "off"]
