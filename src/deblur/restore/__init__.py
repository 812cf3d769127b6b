"""Classical restoration: blind blur-kernel estimation, non-blind deconvolution and the do-no-harm
triage around them. NumPy, SciPy and OpenCV only: nothing here imports TensorFlow or Keras, so the
built-in restorer runs on a machine without a deep-learning runtime."""
