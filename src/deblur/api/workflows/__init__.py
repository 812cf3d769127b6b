"""deblur's workflows as Python functions: what each `deblur` command does, without the printing.

    import deblur
    run = deblur.train("configs/quickstart.yaml", overrides=["train.epochs=3"])
    print(run.scores.table())                               # best.keras on the test split
    print(deblur.compare(["runs/a", "runs/b"]).table())      # several runs, one table
    deblur.predict(["photo.jpg"], output="restored")        # the built-in restorer, or checkpoint=...
    deblur.export("runs/a/best.keras", fmt="onnx")

The command line parses its options, calls these and prints what they return. A mistake the caller
can fix raises `deblur.DeblurError`, naming the argument (`split`, `crop_border`) or config key;
Ctrl-C while training or scoring raises `deblur.core.errors.Stopped` (a KeyboardInterrupt) saying
what was kept and how to continue. Keras starts only inside the workflows that need it.
"""

from deblur.api.workflows.common import Scores, start_backend
from deblur.api.workflows.exporting import FormatBench, benchmark_formats, export
from deblur.api.workflows.restoring import predict
from deblur.api.workflows.running import Trained, train
from deblur.api.workflows.scoring import compare, evaluate

__all__ = ["FormatBench", "Scores", "Trained", "benchmark_formats", "compare", "evaluate", "export", "predict",
           "start_backend", "train"]
