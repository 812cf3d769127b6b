"""deblur.restore.engines.graphcheck: a model file is data, not code (SavedModel, ONNX, OpenVINO and LiteRT
graphs checked before they run)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import hostile_saved_model
from deblur.core.errors import DeblurError
from deblur.restore.engines import graphcheck


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


@pytest.mark.parametrize(("body", "op"), [("loop", "While"), ("py_func", "PyFunc"), ("print", "Print")])
def test_a_saved_model_with_a_loop_python_or_print_in_a_nested_function_is_refused(tmp_path: Path, body: str,
                                                                                    op: str):
    model = hostile_saved_model(tmp_path / "sm", body)
    with pytest.raises(graphcheck.UntrustedModel, match=op):  # an endless while_loop hung for ever
        graphcheck.check_saved_model(model)


def test_a_tf1_saved_model_is_refused(tmp_path: Path):
    from tensorflow.core.protobuf import saved_model_pb2

    folder = tmp_path / "tf1"
    folder.mkdir()
    model = saved_model_pb2.SavedModel()
    model.meta_graphs.add().graph_def.node.add(name="w", op="WriteFile")
    (folder / "saved_model.pb").write_bytes(model.SerializeToString())
    with pytest.raises(graphcheck.UntrustedModel, match="TensorFlow 1"):
        graphcheck.check_saved_model(folder)


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
