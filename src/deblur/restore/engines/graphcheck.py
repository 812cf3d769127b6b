"""A model file is data, not code: the operations of an exported model are checked before it runs.

An exported model is a program for its runtime. A SavedModel can write files (`tf.io.write_file`),
run Python (`py_func`) or loop for ever (`while_loop`); an ONNX graph can `Loop` 1e15 times; an
OpenVINO IR can hold a `Loop` or `TensorIterator`; a `.tflite` file a `WHILE` or a TensorFlow
("Flex") op. An image restorer needs none of that: deblur's own exports are convolutions, pooling,
element-wise arithmetic and shape bookkeeping. So every operation in the file (every node of every
function and subgraph, found by reading the file, before its runtime loads or runs anything) must be
on the allow-list of its format below, else the model is refused in one line. A sidecar proves
nothing here (it can be copied next to any file); the operations are what runs.

`--trust-model` (`trust=True`) skips the check for a file whose origin the user vouches for. The
exports deblur itself makes and checks (`deblur export`'s check run, the cache of on-the-fly exports
of a `.keras` checkpoint) are loaded trusted: they are converted from a checkpoint that Keras loaded
in safe mode, and checking them again would only turn a converter's new operation into a refusal.

What the check does not bound: the time one tile takes. An operation running inside TensorFlow (or
any runtime, in this process) cannot be interrupted, so a real bound needs a worker process; without
loops a graph's work is fixed by its size, and a model too large for memory fails as out of memory.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from deblur.core.errors import DeblurError

TRUST_HINT = "pass --trust-model only if you trust where the file came from"
MAX_GRAPH_BYTES = 1 << 30  # a saved_model.pb / .onnx / .xml to read whole (deblur's are a few MiB at most)


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Element-wise, convolution, pooling, reduction and shape operations: what an image restorer is made of.
# TensorFlow names: all of those deblur's SavedModel exports of every built-in model use (measured: unet,
# conv_ae, dense_ae, nafnet, the built-in checkpoint), plus their near relatives a Keras layer may emit.
TF_OPS = _names("""
Abs Add AddN AddV2 AssignVariableOp AvgPool BatchMatMul BatchMatMulV2 BatchMatMulV3 BiasAdd Cast Ceil
ClipByValue ConcatV2 Const Conv2D Conv2DBackpropInput DepthToSpace DepthwiseConv2dNative DisableCopyOnRead
Elu Equal Erf Exp ExpandDims Fill Floor FloorDiv FloorMod FusedBatchNormV3 GatherV2 Greater GreaterEqual
Identity IdentityN LeakyRelu Less LessEqual Log Log1p LogicalAnd LogicalNot LogicalOr MatMul Max MaxPool
Maximum Mean Min Minimum MirrorPad Mul Neg NoOp OnesLike Pack Pad PadV2 PartitionedCall Placeholder Pow Prod
Range Rank ReadVariableOp RealDiv Reciprocal Relu Relu6 Reshape ResizeBilinear ResizeNearestNeighbor Round
Rsqrt Select SelectV2 Selu Shape ShapeN Sigmoid Sign Size Slice Softmax Softplus Softsign SpaceToDepth Split
SplitV Sqrt Square SquaredDifference Squeeze StatefulPartitionedCall StopGradient StridedSlice Sub Sum Tanh
Tile Transpose Unpack VarHandleOp VarIsInitializedOp ZerosLike
""")
# The checkpoint save and restore functions a SavedModel carries for TensorFlow 1's loader, which
# deblur never uses (TensorFlow 2's loader restores variables with its own operations): allowed
# only in functions that nothing TensorFlow 2 may call reaches.
TF_CHECKPOINT_OPS = _names("MergeV2Checkpoints RestoreV2 SaveV2 ShardedFilename StaticRegexFullMatch StringJoin")

# ONNX (default domain): what TensorFlow's ops above convert to with tf2onnx, and their relatives.
# No Loop, Scan, If or any node with a subgraph; no operator from another domain (a custom op library).
ONNX_OPS = _names("""
Abs Add And AveragePool BatchNormalization Cast Ceil Clip Concat Constant ConstantOfShape Conv ConvTranspose
DepthToSpace Div Dropout Einsum Elu Equal Erf Exp Expand Flatten Floor Gather GatherElements Gelu Gemm
GlobalAveragePool GlobalMaxPool Greater GreaterOrEqual HardSigmoid Identity InstanceNormalization
LayerNormalization LeakyRelu Less LessOrEqual Log MatMul Max MaxPool Mean Min Mod Mul Neg Not Or Pad Pow PRelu
Range Reciprocal ReduceMax ReduceMean ReduceMin ReduceProd ReduceSum ReduceSumSquare Relu Reshape Resize Round
Selu Shape Sigmoid Sign Size Slice Softmax Softplus Softsign SpaceToDepth Split Sqrt Squeeze Sub Sum Tanh Tile
Transpose Unsqueeze Where
""")

# OpenVINO IR layer types (any opset): the same operations; no Loop, TensorIterator or If.
OPENVINO_OPS = _names("""
Abs Add AvgPool BatchNormInference Broadcast Ceiling Clamp Concat Const Convert ConvertLike Convolution
ConvolutionBackpropData DepthToSpace Divide Einsum Elu Equal Erf Exp FakeQuantize Floor FloorMod Gather
GatherElements Gelu Greater GreaterEqual GroupConvolution GroupConvolutionBackpropData HSigmoid HSwish
Interpolate Less LessEqual Log LogicalAnd LogicalNot LogicalOr MVN MatMul MaxPool Maximum Minimum Mish Multiply
Negative NormalizeL2 PRelu Pad Parameter Power Range ReduceL2 ReduceMax ReduceMean ReduceMin ReduceProd ReduceSum
ReLU Relu Reshape Result Round Select Selu ShapeOf Sigmoid Sign Slice SoftMax Softmax SoftPlus SoftSign SpaceToDepth
Split Sqrt SquaredDifference Squeeze StridedSlice Subtract Swish Tanh Tile Transpose Unsqueeze VariadicSplit
""")

# LiteRT builtin operators (the names its interpreter reports): no WHILE, IF, CALL_ONCE or custom
# (TensorFlow "Flex") operators.
LITERT_OPS = _names("""
ABS ADD ADD_N AVERAGE_POOL_2D BATCH_MATMUL BROADCAST_TO CAST CEIL CONCATENATION CONV_2D DEPTHWISE_CONV_2D
DEPTH_TO_SPACE DEQUANTIZE DIV ELU EQUAL EXP EXPAND_DIMS FILL FLOOR FLOOR_DIV FLOOR_MOD FULLY_CONNECTED GATHER GELU
GREATER GREATER_EQUAL HARD_SWISH LEAKY_RELU LESS LESS_EQUAL LOG LOGICAL_AND LOGICAL_NOT LOGICAL_OR LOGISTIC
MAXIMUM MAX_POOL_2D MEAN MINIMUM MIRROR_PAD MUL NEG PACK PAD PADV2 POW PRELU QUANTIZE RANGE REDUCE_MAX
REDUCE_MIN REDUCE_PROD RELU RELU6 RELU_N1_TO_1 RESHAPE RESIZE_BILINEAR RESIZE_NEAREST_NEIGHBOR ROUND RSQRT SELECT
SELECT_V2 SHAPE SIGN SLICE SOFTMAX SPACE_TO_DEPTH SPLIT SPLIT_V SQRT SQUARE SQUARED_DIFFERENCE SQUEEZE
STRIDED_SLICE SUB SUM TANH TILE TRANSPOSE TRANSPOSE_CONV UNPACK ZEROS_LIKE
""")


class UntrustedModel(DeblurError):
    """A model file holds operations an image restorer never needs (file I/O, loops, Python...)."""


def refuse(path: Path, bad: Iterable[str], what: str = "operations") -> UntrustedModel:
    names = sorted(set(bad))
    shown = ", ".join(names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")
    return UntrustedModel(f"{path}: holds {what} an image restorer never needs ({shown}), so deblur will not run "
                          f"it; {TRUST_HINT}")


def _read(path: Path) -> bytes:
    from deblur.core.safefile import UnsafeFile, read_small

    try:
        return read_small(path, MAX_GRAPH_BYTES, "model graph")
    except UnsafeFile as exc:
        raise DeblurError(str(exc)) from None


# -- SavedModel --------------------------------------------------------------------------------------

def check_saved_model(folder: Path) -> None:
    """Every operation a TensorFlow 2 loader may run from this SavedModel is on TF_OPS: the functions
    its object graph holds (signatures, methods, restore functions, resource initialisers) and every
    function they call, through call operations or function-valued attributes, however deeply nested."""
    from google.protobuf.message import DecodeError
    from tensorflow.core.protobuf import saved_model_pb2

    model = saved_model_pb2.SavedModel()
    try:
        model.ParseFromString(_read(folder / "saved_model.pb"))
    except (DecodeError, RuntimeError, ValueError):
        raise DeblurError(f"{folder}: its saved_model.pb is not a SavedModel") from None
    bad: set[str] = set()
    for meta in model.meta_graphs:
        if not meta.object_graph_def.nodes:
            # TensorFlow 1's format: its loader runs the graph's init and restore operations as found
            raise UntrustedModel(f"{folder}: a TensorFlow 1 SavedModel (no object graph), which deblur does not "
                                 f"run; re-export it with `deblur export`, or {TRUST_HINT}")
        library = {f.signature.name: f for f in meta.graph_def.library.function}
        reached = _reachable(library, meta.object_graph_def.concrete_functions.keys(), bad)
        for name, function in library.items():
            allowed = TF_OPS if name in reached else TF_OPS | TF_CHECKPOINT_OPS
            bad |= {n.op for n in function.node_def if n.op not in allowed and n.op not in library}
        bad |= {n.op for n in meta.graph_def.node if n.op not in TF_OPS | TF_CHECKPOINT_OPS and n.op not in library}
    if bad:
        raise refuse(folder, bad)


def _reachable(library: dict[str, Any], roots: Iterable[str], bad: set[str]) -> set[str]:
    """The functions of `library` that `roots` call, directly or not; a call of a function the library
    does not hold is added to `bad`."""
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        if name not in library:
            bad.add(f"a call of the missing function {name}")
            continue
        seen.add(name)
        for node in library[name].node_def:
            if node.op in library:
                todo.append(node.op)
            for attr in node.attr.values():
                todo.extend(_functions(attr))
    return seen


def _functions(attr: Any) -> Iterator[str]:
    if attr.HasField("func"):
        yield attr.func.name
    if attr.HasField("list"):
        yield from (f.name for f in attr.list.func)


# -- ONNX ----------------------------------------------------------------------------------------------
# Read with a small protobuf wire-format reader, not the onnx package (the runtime alone is installed to
# run an export). Field numbers from onnx.proto: ModelProto graph=7, functions=25; GraphProto node=1,
# initializer=5; NodeProto op_type=4, attribute=5, domain=7; AttributeProto g=6, graphs=11;
# FunctionProto node=7; TensorProto data_location=14 (1: EXTERNAL).

def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def _fields(data: bytes) -> Iterator[tuple[int, int | bytes]]:
    """(field number, value) of one protobuf message: ints for varints and fixed widths, bytes for
    length-delimited fields (sub-messages, strings)."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
            yield number, value
        elif wire == 2:
            size, pos = _varint(data, pos)
            if pos + size > len(data):
                raise ValueError("truncated field")
            yield number, data[pos:pos + size]
            pos += size
        elif wire in (1, 5):
            width = 8 if wire == 1 else 4
            yield number, int.from_bytes(data[pos:pos + width], "little")
            pos += width
        else:
            raise ValueError(f"wire type {wire}")


def onnx_ops(data: bytes) -> tuple[set[str], bool]:
    """The op types of every node of an ONNX model (its graph, subgraphs, functions), as `domain:op`
    outside the default domain and `op*` for a node holding a subgraph; and whether a weight lives in
    an external file."""
    ops: set[str] = set()
    external = False

    def graph(message: bytes, depth: int) -> None:
        nonlocal external
        if depth > 64:
            raise ValueError("subgraphs nested too deeply")
        for number, value in _fields(message):
            if number == 1 and isinstance(value, bytes):
                node(value, depth)
            elif number == 5 and isinstance(value, bytes):
                external |= any(n == 14 and v == 1 for n, v in _fields(value))

    def node(message: bytes, depth: int) -> None:
        op, domain, nested = "", "", False
        for number, value in _fields(message):
            if number == 4 and isinstance(value, bytes):
                op = value.decode("utf-8", "replace")
            elif number == 7 and isinstance(value, bytes):
                domain = value.decode("utf-8", "replace")
            elif number == 5 and isinstance(value, bytes):
                for n, v in _fields(value):
                    if n in (6, 11) and isinstance(v, bytes):
                        nested = True
                        graph(v, depth + 1)
        name = op if domain in ("", "ai.onnx") else f"{domain}:{op}"
        ops.add(name + ("*" if nested else ""))

    for number, value in _fields(data):
        if number == 7 and isinstance(value, bytes):
            graph(value, 0)
        elif number == 25 and isinstance(value, bytes):  # a model-local function: its nodes run too
            for n, v in _fields(value):
                if n == 7 and isinstance(v, bytes):
                    node(v, 1)
    return ops, external


def check_onnx(path: Path) -> None:
    try:
        ops, external = onnx_ops(_read(path))
    except ValueError:
        raise DeblurError(f"{path}: not an ONNX model (its protobuf does not parse)") from None
    bad = {op for op in ops if op not in ONNX_OPS}
    if bad:
        raise refuse(path, bad)
    if external:  # weights read from a path the file names, anywhere on this machine
        raise UntrustedModel(f"{path}: reads its weights from external files, which deblur's exports never do; "
                             f"{TRUST_HINT}")


# -- OpenVINO ------------------------------------------------------------------------------------------

def check_openvino(path: Path) -> None:
    """Every `<layer type=...>` of the IR, those in a `<body>` (a Loop's) included, is on OPENVINO_OPS."""
    try:
        root = ElementTree.fromstring(_read(path))  # expat refuses entity expansion bombs
    except ElementTree.ParseError as exc:
        raise DeblurError(f"{path}: not an OpenVINO model (its XML does not parse: {exc})") from None
    bad = {str(layer.get("type")) for layer in root.iter("layer") if layer.get("type") not in OPENVINO_OPS}
    if root.find(".//body") is not None:
        bad.add("a subgraph body")
    if bad:
        raise refuse(path, bad)


# -- LiteRT --------------------------------------------------------------------------------------------

def check_litert(path: Path, interpreter: Any) -> None:
    """The interpreter's operators (read from the file; nothing has run yet) are on LITERT_OPS."""
    details = getattr(interpreter, "_get_ops_details", None)
    if details is None:
        raise UntrustedModel(f"{path}: this LiteRT cannot list the model's operators, so deblur cannot check them; "
                             f"{TRUST_HINT}")
    names = {str(op.get("op_name", "?")) for op in details()}
    bad = {name for name in names if name not in LITERT_OPS}
    count = getattr(interpreter, "num_subgraphs", None)  # more than one: bodies of WHILE, IF or CALL_ONCE
    subgraphs = int(count()) if callable(count) else 1
    if subgraphs > 1:
        bad.add(f"{subgraphs} subgraphs")
    if bad:
        raise refuse(path, bad)


CHECKS = {"saved_model": check_saved_model, "onnx": check_onnx, "openvino": check_openvino}


def check_model(kind: str, path: Path) -> None:
    """Refuse `path` (a model of engine `kind`) holding an operation outside its format's allow-list.
    LiteRT is checked by its engine, from the interpreter that has read the file; Keras checkpoints
    are loaded in Keras's safe mode by deblur.restore.loading."""
    check = CHECKS.get(kind)
    if check is not None:
        check(Path(path))
