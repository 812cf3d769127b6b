"""Hostile input, round 3, continued (issue 20): a model file is data, not code; data cannot change under
a training unnoticed; a resumed evaluation proves what it covers; one bad file of a batch costs that
file only; exports that do not match their sidecar or model fail in one line.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import test_eval_resume as resume_tests
from conftest import cli_error, invoke, smooth_image, write_png
from deblur.core.errors import DataError, DeblurError
from deblur.evaluation.evaljournal import PARTIAL_NAME
from deblur.restore.engines import graphcheck

BATCH, eval_config = resume_tests.BATCH, resume_tests.eval_config  # the journal tests' split (a fixture)

# --------------------------------------------------------------------------------------------------
# 2. A model file is data, not code


def _saved_model(folder: Path, body: str, target: Path | None = None) -> Path:
    """A tiny SavedModel (tf.Module + tf.function) whose serving function does `body` before returning
    its input: what a hostile export would hide in an image restorer."""
    import tensorflow as tf

    class Hostile(tf.Module):
        @tf.function
        def inner(self, x: tf.Tensor) -> tf.Tensor:  # a nested function: found in the function library
            if body == "loop":
                tf.while_loop(lambda i: i >= 0, lambda i: i + 1, [tf.constant(0)])
            elif body == "py_func":
                tf.py_function(lambda: 0.0, [], tf.float32)
            elif body == "print":
                tf.print("hello")
            return x

        @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
        def __call__(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
            if body == "write":
                tf.io.write_file(str(target), "pwned")
            return {"out": self.inner(x)}

    module = Hostile()
    tf.saved_model.save(module, str(folder), signatures={"serving_default": module.__call__})
    return folder


@pytest.fixture
def image(tmp_path: Path, rng: np.random.Generator) -> Path:
    path = tmp_path / "in" / "a.png"
    write_png(path, smooth_image(rng, 32, 32))
    return path


def test_a_saved_model_that_writes_a_file_is_refused_before_it_runs(tmp_path: Path, image: Path):
    target = tmp_path / "outside.txt"
    model = _saved_model(tmp_path / "sm", "write", target)
    line = cli_error(invoke("predict", image, "-c", model, "-o", tmp_path / "out"))
    assert "WriteFile" in line and "--trust-model" in line
    assert not target.exists()  # was written, rc 0
    # the user may vouch for a model: then it runs (and writes, as it was made to)
    result = invoke("predict", image, "-c", model, "-o", tmp_path / "out2", "--trust-model")
    assert result.exit_code == 0, result.output
    assert target.read_text() == "pwned"


@pytest.mark.parametrize(("body", "op"), [("loop", "While"), ("py_func", "PyFunc"), ("print", "Print")])
def test_a_saved_model_with_a_loop_python_or_print_in_a_nested_function_is_refused(tmp_path: Path, body: str,
                                                                                    op: str):
    model = _saved_model(tmp_path / "sm", body)
    with pytest.raises(graphcheck.UntrustedModel, match=op):  # an endless while_loop hung for ever
        graphcheck.check_saved_model(model)


def test_deblurs_own_saved_model_export_passes_the_allow_list(model_file: Path, tmp_path: Path, image: Path):
    out = tmp_path / "sm"
    assert invoke("export", model_file, "-f", "saved_model", "-o", out).exit_code == 0
    graphcheck.check_saved_model(out)
    result = invoke("predict", image, "-c", out, "-o", tmp_path / "restored")
    assert result.exit_code == 0, result.output


def test_a_tf1_saved_model_is_refused(tmp_path: Path):
    from tensorflow.core.protobuf import saved_model_pb2

    folder = tmp_path / "tf1"
    folder.mkdir()
    model = saved_model_pb2.SavedModel()
    model.meta_graphs.add().graph_def.node.add(name="w", op="WriteFile")
    (folder / "saved_model.pb").write_bytes(model.SerializeToString())
    with pytest.raises(graphcheck.UntrustedModel, match="TensorFlow 1"):
        graphcheck.check_saved_model(folder)


def _varint(n: int) -> bytes:
    out = b""
    while True:
        byte, n = n & 0x7F, n >> 7
        out += bytes([byte | (0x80 if n else 0)])
        if not n:
            return out


def _field(number: int, payload: bytes | int) -> bytes:
    if isinstance(payload, int):
        return _varint(number << 3) + _varint(payload)
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _onnx_node(op: str, domain: str = "", subgraph: bytes | None = None) -> bytes:
    node = _field(4, op.encode()) + (_field(7, domain.encode()) if domain else b"")
    if subgraph is not None:
        node += _field(5, _field(1, b"body") + _field(6, subgraph))  # AttributeProto name, g
    return node


def _onnx(*nodes: bytes, initializer: bytes = b"") -> bytes:
    graph = b"".join(_field(1, n) for n in nodes) + initializer
    return _field(1, 8) + _field(7, graph)  # ir_version, graph


@pytest.mark.parametrize(("nodes", "named"), [
    ((_onnx_node("Conv"), _onnx_node("Loop", subgraph=_field(1, _onnx_node("Add")))), "Loop"),
    ((_onnx_node("Conv"), _onnx_node("If", subgraph=_field(1, _onnx_node("Scan")))), "Scan"),  # nested deeper
    ((_onnx_node("Relu"), _onnx_node("MyOp", "com.evil")), "com.evil:MyOp"),
])
def test_onnx_control_flow_and_custom_ops_are_refused_from_the_file(tmp_path: Path, nodes: tuple, named: str):
    path = tmp_path / "m.onnx"
    path.write_bytes(_onnx(*nodes))
    with pytest.raises(graphcheck.UntrustedModel, match=named):  # a Loop of 1e15 iterations hung for ever
        graphcheck.check_onnx(path)


def test_onnx_of_image_ops_passes_and_external_weights_or_garbage_do_not(tmp_path: Path):
    path = tmp_path / "m.onnx"
    path.write_bytes(_onnx(_onnx_node("Transpose"), _onnx_node("Conv"), _onnx_node("Relu"), _onnx_node("Add")))
    graphcheck.check_onnx(path)
    path.write_bytes(_onnx(_onnx_node("Conv"), initializer=_field(5, _field(14, 1))))
    with pytest.raises(graphcheck.UntrustedModel, match="external"):
        graphcheck.check_onnx(path)
    path.write_bytes(b"\xff" * 64)
    with pytest.raises(DeblurError, match="not an ONNX model"):
        graphcheck.check_onnx(path)


def test_openvino_loops_and_unknown_layers_are_refused(tmp_path: Path):
    path = tmp_path / "m.xml"
    layers = '<layer id="0" type="Parameter"/><layer id="1" type="Convolution"/><layer id="2" type="Result"/>'
    path.write_text(f'<net name="m" version="11"><layers>{layers}</layers></net>')
    graphcheck.check_openvino(path)
    loop = '<layer id="3" type="Loop"><body><layers><layer id="0" type="Add"/></layers></body></layer>'
    path.write_text(f'<net name="m" version="11"><layers>{layers}{loop}</layers></net>')
    with pytest.raises(graphcheck.UntrustedModel, match="Loop"):
        graphcheck.check_openvino(path)
    path.write_text("<net><layers>")
    with pytest.raises(DeblurError, match="does not parse"):
        graphcheck.check_openvino(path)


def test_litert_while_and_flex_ops_are_refused():
    class Interpreter:  # what the LiteRT interpreter reports once it has read a file (nothing has run)
        def __init__(self, ops: list[str]) -> None:
            self.ops = ops

        def _get_ops_details(self) -> list[dict]:
            return [{"op_name": op} for op in self.ops]

    graphcheck.check_litert(Path("m.tflite"), Interpreter(["CONV_2D", "ADD", "RELU"]))
    for bad in ("WHILE", "FlexWriteFile"):
        with pytest.raises(graphcheck.UntrustedModel, match=bad):
            graphcheck.check_litert(Path("m.tflite"), Interpreter(["CONV_2D", bad]))


def test_litert_check_on_real_files(model_file: Path, tmp_path: Path):
    """With TensorFlow's own LiteRT interpreter: deblur's export passes, a converted while_loop does not."""
    import warnings

    import keras
    import tensorflow as tf

    from deblur.restore.loading import load_model

    warnings.simplefilter("ignore", UserWarning)  # tf.lite.Interpreter's deprecation notice
    ours = tmp_path / "ours.tflite"
    load_model(model_file).export(str(ours), format="litert", verbose=False,
                                  input_signature=[keras.InputSpec(shape=(None, None, None, 3), dtype="float32")])
    graphcheck.check_litert(ours, tf.lite.Interpreter(model_path=str(ours)))

    @tf.function(input_signature=[tf.TensorSpec([1, 8, 8, 3], tf.float32)])
    def looping(x: tf.Tensor) -> tf.Tensor:
        return tf.while_loop(lambda i, y: i < 10, lambda i, y: (i + 1, y * 0.5), [tf.constant(0), x])[1]

    hostile = tmp_path / "loop.tflite"
    hostile.write_bytes(tf.lite.TFLiteConverter.from_concrete_functions(
        [looping.get_concrete_function()], looping).convert())
    with pytest.raises(graphcheck.UntrustedModel, match="WHILE"):
        graphcheck.check_litert(hostile, tf.lite.Interpreter(model_path=str(hostile)))


# --------------------------------------------------------------------------------------------------
# 5. A resumed evaluation proves what it covers


@pytest.fixture
def interrupted(tmp_path: Path, eval_config: Path, model_file: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The journal of an evaluation stopped after 2 of its 6 batches (24 items, 4 a batch)."""
    out = tmp_path / "part"
    with monkeypatch.context() as m:
        resume_tests._interrupt_after(m, 2)
        assert invoke("eval", model_file, "--config", eval_config, "--output", out).exit_code == 130
    return out / PARTIAL_NAME


def _lines(journal: Path) -> list[str]:
    return journal.read_text().splitlines(keepends=True)


def _edited_psnr(lines: list[str]) -> list[str]:
    record = json.loads(lines[1])
    key = next(k for k in record["row"] if k.startswith("psnr_"))
    record["row"][key] = 99.0
    return [lines[0], json.dumps(record) + "\n", *lines[2:]]


def _commit_999(lines: list[str]) -> list[str]:
    commit = json.loads(lines[-1])
    commit["commit"] = 999
    return [*lines[:-1], json.dumps(commit) + "\n"]


@pytest.mark.parametrize(("tamper", "said"), [
    (_commit_999, "does not follow"),  # a report on 8 of 24 items, rc 0
    (lambda lines: [*lines, *lines[-(BATCH + 1):]], "does not follow"),  # a batch twice: 28 of 24 items
    (_edited_psnr, "changed since"),  # an edited score was reported
    (lambda lines: [*lines[:2], "[1, 2]\n", *lines[2:]], "not an item record"),  # internal error
    (lambda lines: [*lines[:2], "{not json\n", *lines[2:]], "not JSON"),
    (lambda lines: [*lines[:2], '{"batch": 0}\n', *lines[2:]], "not an item record"),
    (lambda lines: [*lines[:-1], '{"commit": "x"}\n'], "not a commit"),
])
def test_a_tampered_journal_is_refused_on_resume(interrupted: Path, eval_config: Path, model_file: Path,
                                                 tamper: Callable[[list[str]], list[str]], said: str):
    interrupted.write_text("".join(tamper(_lines(interrupted))))
    line = cli_error(invoke("eval", model_file, "--config", eval_config, "--output", interrupted.parent,
                            "--resume"))
    assert said in line and "--overwrite" in line
    assert not (interrupted.parent / "metrics.json").exists()


def test_a_forged_chain_beyond_the_split_is_refused(interrupted: Path, eval_config: Path, model_file: Path):
    """Even a journal whose chain was recomputed cannot claim batches the split does not have."""
    from deblur.evaluation.evaljournal import _commit_core, chain_digest

    lines = _lines(interrupted)
    first = json.loads(lines[BATCH + 1])
    records = [json.loads(x) | {"batch": 999} for x in lines[BATCH + 2:2 * BATCH + 2]]
    rows = "".join(json.dumps(r) + "\n" for r in records)
    chain = chain_digest(first["chain"], rows.encode() + _commit_core(999, 0, []))
    forged = json.dumps({"commit": 999, "prev": 0, "skipped": [], "chain": chain}) + "\n"
    interrupted.write_text("".join(lines[:BATCH + 2]) + rows + forged)
    line = cli_error(invoke("eval", model_file, "--config", eval_config, "--output", interrupted.parent,
                            "--resume"))
    assert "batch 999" in line and "split's 6" in line


def test_an_untampered_journal_still_resumes(interrupted: Path, eval_config: Path, model_file: Path):
    result = invoke("eval", model_file, "--config", eval_config, "--output", interrupted.parent, "--resume")
    assert result.exit_code == 0, result.output
    assert json.loads((interrupted.parent / "metrics.json").read_text())["resumed"] == {
        "items_scored_before": 8, "items_scored_now": 16}


# --------------------------------------------------------------------------------------------------
# 4. Data cannot change under a training unnoticed


def _packed(tmp_path: Path, photo_folder: Path) -> tuple[Path, object]:
    from deblur.data import packed

    out = tmp_path / "pack"
    result = invoke("pack", photo_folder, out)
    assert result.exit_code == 0, result.output
    return out, packed.load(out, "folder", seed=0, val_split=0.0, test_split=0.0)


@pytest.mark.parametrize("keep_mtime", [False, True])
def test_a_shard_rewritten_with_zeros_mid_training_is_never_read(tmp_path: Path, photo_folder: Path,
                                                                 keep_mtime: bool):
    import os

    out, splits = _packed(tmp_path, photo_folder)
    train = splits.train.sharp
    assert train[0].any()  # verified and read once: the checksum was checked on first read only
    shard = next(out.glob("shard-*.npy"))
    st = shard.stat()
    with open(shard, "r+b") as f:  # same size, same header, every pixel zero
        f.seek(128)
        f.write(bytes(st.st_size - 128))
    if keep_mtime:  # a rewrite that sets the mtime back still changes ctime
        os.utime(shard, ns=(st.st_atime_ns, st.st_mtime_ns))
    with pytest.raises(DataError, match="changed since the training started"):
        train[1]  # read zeros, and trained to PSNR 60


def test_a_shard_replaced_by_the_same_bytes_still_reads(tmp_path: Path, photo_folder: Path):
    out, splits = _packed(tmp_path, photo_folder)
    first = splits.train.sharp[0]
    shard = next(out.glob("shard-*.npy"))
    data = shard.read_bytes()
    shard.unlink()
    shard.write_bytes(data)  # a new inode, the same content: hashed again, and accepted
    assert np.array_equal(splits.train.sharp[0], first)


def test_pack_overwrite_is_refused_while_a_training_reads_the_pack(tmp_path: Path, photo_folder: Path):
    import gc

    out, splits = _packed(tmp_path, photo_folder)
    line = cli_error(invoke("pack", photo_folder, out, "--overwrite"))  # the training died: UnknownError
    assert "in use by another deblur process" in line
    assert splits.train.sharp[0].any()
    del splits
    gc.collect()  # the training is over: its lock went with it
    assert invoke("pack", photo_folder, out, "--overwrite").exit_code == 0


def test_a_manifest_item_in_the_shards_header_room_is_refused_before_training(tmp_path: Path, photo_folder: Path):
    from deblur.data import packed

    out, splits = _packed(tmp_path, photo_folder)
    del splits
    manifest = json.loads((out / "pack.json").read_text())
    shard = manifest["shards"][0]
    item = manifest["items"][0]["sharp"]
    size = item["shape"][0] * item["shape"][1] * item["shape"][2]
    item["offset"] = shard["bytes"] - size  # within the file's size, but past the data (the header is 128 bytes)
    (out / "pack.json").write_text(json.dumps(manifest))
    with pytest.raises(DataError, match="the shard disagree"):
        packed.load(out, "folder", seed=0, val_split=0.0, test_split=0.0)


# --------------------------------------------------------------------------------------------------
# 8. Exports that do not match their sidecar or their model fail in one line


@pytest.fixture
def odd_image(tmp_path: Path, rng: np.random.Generator) -> Path:
    path = tmp_path / "odd" / "a.png"
    write_png(path, smooth_image(rng, 43, 45))
    return path


def _export(keras_file: Path, out: Path) -> Path:
    result = invoke("export", keras_file, "-f", "saved_model", "-o", out)
    assert result.exit_code == 0, result.output
    return out


def _edit_sidecar(export: Path, **changes: object) -> None:
    from deblur.restore.exported import sidecar_path

    path = sidecar_path(export)
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


def test_a_sidecar_with_the_wrong_multiple_is_one_line(model_file: Path, tmp_path: Path, odd_image: Path):
    export = _export(model_file, tmp_path / "sm")
    _edit_sidecar(export, multiple=1)  # the model pools once: 45x43 cannot go through it
    line = cli_error(invoke("predict", odd_image, "-c", export, "-o", tmp_path / "out"))
    assert "the model failed on a 1x43x45x3 input" in line and "multiple of 1" in line  # was: internal error


def test_a_deep_model_exported_without_its_sidecar_is_one_line(tmp_path: Path, odd_image: Path):
    from deblur.models import MODELS
    from deblur.restore.exported import sidecar_path

    keras_file = tmp_path / "deep.keras"
    MODELS.get("unet")(3, depth=5, base_filters=2).save(keras_file)  # needs a multiple of 32
    export = _export(keras_file, tmp_path / "sm")
    sidecar_path(export).unlink()
    line = cli_error(invoke("predict", odd_image, "-c", export, "-o", tmp_path / "out"))
    assert "the model failed on a 1x48x48x3 input" in line and "deblur export" in line


@pytest.mark.parametrize(("changes", "said"), [({"fixed_size": [1, 1]}, "only 1x1 images"),
                                               ({"multiple": 10**9}, "size multiple of 1,000,000,000")])
def test_a_sidecar_that_contradicts_the_model_is_refused_at_load(model_file: Path, tmp_path: Path, odd_image: Path,
                                                                 changes: dict, said: str):
    export = _export(model_file, tmp_path / "sm")
    _edit_sidecar(export, **changes)
    line = cli_error(invoke("predict", odd_image, "-c", export, "-o", tmp_path / "out"))
    assert said in line


class _Failing:
    """An engine whose runtime raises `error` (what onnxruntime and OpenVINO raise are RuntimeErrors)."""

    name, channels, multiple, fixed_size, source = "onnx", 3, 8, None, Path("m.onnx")

    def __init__(self, error: Exception) -> None:
        self.error = error

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        raise self.error


def test_a_runtime_failure_is_one_line_and_out_of_memory_stays_out_of_memory():
    from deblur.core.failures import failure_line
    from deblur.restore.predict import ModelRunError, run_engine

    batch = np.zeros((1, 8, 8, 3), np.float32)
    with pytest.raises(ModelRunError, match=r"m\.onnx: the model failed on a 1x8x8x3 input .*Non-zero status code"):
        run_engine(_Failing(RuntimeError("[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : Non-zero status code")), batch)
    oom = RuntimeError("[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : Failed to allocate memory for requested buffer "
                       "of size 68719476736")
    with pytest.raises(RuntimeError) as err:
        run_engine(_Failing(oom), batch)
    assert failure_line(err.value).startswith("out of memory")  # was: internal error (a bug in deblur)
    assert failure_line(RuntimeError("std::bad_alloc")).startswith("out of memory")


# --------------------------------------------------------------------------------------------------
# 7. An error on one file of a batch costs that file only


@pytest.fixture
def long_named(tmp_path: Path, rng: np.random.Generator) -> Path:
    """Three images, the middle one named so long that its output's temporary name is too long."""
    folder = tmp_path / "in"
    for name in ("a", "m" * 245, "z"):
        write_png(folder / f"{name}.png", smooth_image(rng, 32, 32))
    return folder


@pytest.mark.parametrize("command", ["predict", "blur"])
def test_a_name_too_long_to_write_costs_that_file_only(model_file: Path, long_named: Path, tmp_path: Path,
                                                        command: str):
    out = tmp_path / "out"
    extra = ("-c", model_file) if command == "predict" else ()
    result = invoke(command, long_named, "-o", out, *extra)
    assert result.exit_code == 1, result.output  # was: exit 2, z.png never written
    assert "Traceback" not in result.output and "File name too long" in result.output
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == ["a.png", "z.png"]
    assert "2 image(s)" in result.output and "1 failed" in result.output


def test_out_of_memory_on_one_image_costs_that_image_only(model_file: Path, long_named: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch):
    from deblur.restore import predict

    (long_named / f"{'m' * 245}.png").unlink()
    original = predict.restore_image

    def restore(engine: object, image: np.ndarray, *args: object) -> np.ndarray:
        if restore.calls == 0:  # the first image is too large for this machine
            restore.calls += 1
            raise MemoryError("Unable to allocate 64.0 GiB")
        return original(engine, image, *args)

    restore.calls = 0
    monkeypatch.setattr(predict, "restore_image", restore)
    out = tmp_path / "out"
    result = invoke("predict", long_named, "-o", out, "-c", model_file)
    assert result.exit_code == 1, result.output  # was: out of memory, the batch stopped at its first image
    assert "out of memory restoring this 32x32 image" in result.output
    assert (out / "z.png").is_file() and not (out / "a.png").exists()
