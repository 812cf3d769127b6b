"""Any failure that reaches a command's boundary, as one line and an exit status.

A user's mistake is a DeblurError (exit 2, handled by the CLI before this). What is left is what the
machine could not do: a file system error (full, read-only, a file where a folder should be), memory
(NumPy's MemoryError, TensorFlow's ResourceExhaustedError, PyTorch's OutOfMemoryError, XLA's
RESOURCE_EXHAUSTED), or a bug. Each becomes one line that says what to do; exit status 1.
"""

from __future__ import annotations

from deblur.core.oserror import describe

MEMORY_HINT = ("use a smaller data.batch_size or data.eval_batch_size, smaller data.crop or data.resize, a smaller "
               "model, or a smaller --tile for predict")
_MEMORY_TYPES = ("ResourceExhaustedError", "OutOfMemoryError")
_MEMORY_WORDS = ("RESOURCE_EXHAUSTED", "out of memory", "OOM when allocating",
                 "Insufficient memory",  # OpenCV's cv2.error when an allocation fails
                 "Failed to allocate memory",  # onnxruntime's RUNTIME_EXCEPTION for a buffer it cannot get
                 "bad_alloc", "Cannot allocate memory")  # C++ runtimes (OpenVINO, LiteRT), ENOMEM in a message


def _first_line(exc: BaseException, limit: int = 300) -> str:
    text = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
    return text[:limit] + ("..." if len(text) > limit else "")


def is_out_of_memory(exc: BaseException) -> bool:
    """Out of memory, whichever library noticed (matched by name: no backend is imported to check)."""
    if isinstance(exc, MemoryError):
        return True
    names = {t.__name__ for t in type(exc).__mro__}
    return bool(names & set(_MEMORY_TYPES)) or any(w in str(exc)[:2000] for w in _MEMORY_WORDS)


def failure_line(exc: Exception) -> str:
    """What the `error:` line says about an exception that is not a DeblurError."""
    if isinstance(exc, OSError):
        return describe(exc)
    if is_out_of_memory(exc):
        detail = _first_line(exc, 160)
        return f"out of memory{f' ({detail})' if detail else ''}; {MEMORY_HINT}"
    detail = _first_line(exc)
    return (f"internal error: {type(exc).__name__}{f': {detail}' if detail else ''} (a bug in deblur; please "
            "report it with the command that caused it; DEBLUR_DEBUG=1 shows the traceback)")
