"""deblur.core.failures: a failure's one line names what went wrong (out of memory is memory, not a bug)."""

from __future__ import annotations


def test_opencv_running_out_of_memory_is_named_as_memory_not_a_bug():
    import cv2 as opencv

    from deblur.core.failures import failure_line

    exc = opencv.error("OpenCV(5.0.0) alloc.cpp:73: error: (-4:Insufficient memory) Failed to allocate 120000000000 "
                       "bytes in function 'OutOfMemoryError'")
    assert failure_line(exc).startswith("out of memory")
