"""A small builder for hand-written ONNX graphs: one call per node, names made up, constants kept once.

The number reader's decoding is a few hundred plain operators; writing each node's output name by hand
buries the arithmetic, so `op` returns the name of what it computes and the code reads like numpy.
"""

import numpy as np
from onnx import TensorProto, helper, numpy_helper

FLOAT, INT64, BOOL = TensorProto.FLOAT, TensorProto.INT64, TensorProto.BOOL


class GraphBuilder:
    """Collects nodes and constant initializers under one name prefix."""

    def __init__(self, prefix):
        self.prefix = prefix
        self.nodes = []
        self.initializers = []
        self._constants = {}
        self._count = 0

    def name(self, hint):
        self._count += 1
        return f"{self.prefix}{hint}_{self._count}"

    def const(self, value, dtype):
        """A constant tensor (shared by every use of the same value and type)."""
        array = np.asarray(value, dtype=dtype)
        key = (array.dtype.str, array.shape, array.tobytes())
        if key not in self._constants:
            name = self.name("const")
            self.initializers.append(numpy_helper.from_array(array, name))
            self._constants[key] = name
        return self._constants[key]

    def op(self, op_type, *inputs, outputs=1, name=None, **attributes):
        """Add one node; returns its output name (or names, when `outputs` > 1 or a list of names)."""
        if isinstance(outputs, int):
            output_names = [name] if name and outputs == 1 else [self.name(op_type.lower()) for _ in range(outputs)]
        else:
            output_names = list(outputs)
        self.nodes.append(helper.make_node(op_type, list(inputs), output_names, **attributes))
        return output_names[0] if len(output_names) == 1 else output_names

    # Shorthands for the operators the decoders use most.
    def i64(self, *values):
        return self.const(list(values), np.int64)

    def f32(self, value):
        return self.const(value, np.float32)

    def cast(self, value, to):
        return self.op("Cast", value, to=to)

    def slice(self, value, start, end, axis=0):
        return self.op("Slice", value, self.i64(start), self.i64(end), self.i64(axis))

    def gather(self, value, index, axis=0):
        return self.op("Gather", value, index, axis=axis)

    def compress(self, value, mask, axis=0):
        return self.op("Compress", value, mask, axis=axis)

    def where(self, condition, yes, no):
        return self.op("Where", condition, yes, no)

    def column(self, value):
        """[N] -> [N, 1]."""
        return self.op("Unsqueeze", value, self.i64(1))

    def row(self, value):
        """[N] -> [1, N]."""
        return self.op("Unsqueeze", value, self.i64(0))

    def length(self, value):
        """[N] -> N as int64 [1]."""
        return self.op("Shape", value, start=0, end=1)

    def scalar(self, value):
        """[1] -> []."""
        return self.op("Squeeze", value, self.i64(0))

    def shifted_right(self, value, fill):
        """[N] -> [fill, value[0], ..., value[N-2]]: each element's left neighbour."""
        return self.op("Slice", self.op("Concat", fill, value, axis=0), self.i64(0), self.length(value))

    def shifted_left(self, value, fill):
        """[N] -> [value[1], ..., value[N-1], fill]: each element's right neighbour."""
        return self.slice(self.op("Concat", value, fill, axis=0), 1, 2 ** 62)

    def sum_where(self, mask_2d, axis):
        """Count the true cells of a bool matrix along `axis`, as int64."""
        return self.op("ReduceSum", self.cast(mask_2d, INT64), self.i64(axis), keepdims=0)
