"""Training: the run folder, callbacks and model.fit, distribution strategies, TensorBoard logs, the
Keras backend in use, learning-rate schedules. Never imports evaluation/ (its sibling)."""
