"""deblur.data.skips: a file that breaks mid-run is skipped, named and counted per epoch."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from conftest import stream_cfg, truncate
from deblur.data.base import load_splits
from deblur.data.skips import SKIPS


@pytest.mark.parametrize("pipeline", ["tf_data", "keras"])
def test_file_broken_mid_run_is_skipped_named_and_counted(pipeline, photo_folder, caplog):
    cfg = stream_cfg("folder", photo_folder, val_split=0.0, test_split=0.0)
    splits = load_splits(cfg.data, cfg.seed)
    bad = Path(splits.train.sharp.label(2))
    truncate(bad)
    SKIPS.take()
    caplog.set_level(logging.WARNING, logger="deblur.data")
    if pipeline == "tf_data":
        from deblur.data.pipeline import train_dataset

        batches = list(train_dataset(splits.train, cfg.data, 0, paired=False).as_numpy_iterator())
        sizes = [len(b[0]) for b in batches]
    else:
        from deblur.data.sequence import TrainBatches

        seq = TrainBatches(splits.train, cfg.data, 0, False)
        sizes = [len(seq[i][1]) for i in range(seq.steps)]
    assert sum(sizes) == len(splits.train)  # every slot filled: another image stood in
    assert SKIPS.take() == 1
    named = [r.getMessage() for r in caplog.records if str(bad) in r.getMessage()]
    assert len(named) == 1 and "not a readable image" in named[0]


def test_skip_report_counts_per_epoch(capsys):
    from deblur.data.skips import skip_report

    report, logs = skip_report(), {}
    report.on_train_begin()
    SKIPS.record("/x/a.png", "/x/a.png: gone")
    SKIPS.record("/x/a.png", "/x/a.png: gone")
    report.on_epoch_end(0, logs)
    assert logs["skipped"] == 2 and "epoch 1: skipped 2 unreadable images" in capsys.readouterr().out
    report.on_epoch_end(1, logs)
    assert logs["skipped"] == 0
