"""The ttnn ops of the emulated n150.

Each function has the signature of the ttnn 0.81.1 op it replaces (names, order, defaults), checks
the rules the card's runtime checks, and computes in float32 from the stored values of its inputs.
Its outputs are rounded to the output data type by `round_to_dtype`. Keyword arguments that only
tune performance on silicon (program configs, core grids, compute kernel configs) are accepted and
have no effect. An argument whose behaviour is not modeled raises NotImplementedError that names it.
"""

import math

import torch
import ttnn

from ttnn_emulator.device import EmulatedDevice
from ttnn_emulator.install import ORIGINALS
from ttnn_emulator.tensor import (
    BLOCK_FLOAT_TYPES,
    FLOAT_TYPES,
    INTEGER_TYPES,
    TILE_SIZE,
    DeviceTensor,
    padded_shape_of,
)

TILE = ttnn.TILE_LAYOUT
ROW_MAJOR = ttnn.ROW_MAJOR_LAYOUT
MATMUL_TYPES = (ttnn.bfloat16, ttnn.bfloat8_b, ttnn.bfloat4_b, ttnn.float32)


# ---------------------------------------------------------------------------------------------
# Validation helpers
# ---------------------------------------------------------------------------------------------


def require_device_tensor(op_name, name, tensor, layouts=None, dtypes=None):
    """Check that `tensor` is an allocated tensor on an open emulated device and return it."""
    if isinstance(tensor, ttnn.Tensor):
        raise RuntimeError(
            f"{op_name}: {name} is a host tensor; move it to the device first with "
            "ttnn.to_device(tensor, device) or ttnn.from_torch(..., device=device)"
        )
    if not isinstance(tensor, DeviceTensor):
        raise TypeError(f"{op_name}: {name} must be a ttnn.Tensor, got {type(tensor).__name__}")
    if not tensor.allocated:
        raise RuntimeError(f"{op_name}: {name} was deallocated and can no longer be used")
    tensor.device_handle.check_open(op_name)
    if layouts is not None and tensor.layout not in layouts:
        expected = " or ".join(str(layout) for layout in layouts)
        raise RuntimeError(f"{op_name}: {name} must be in {expected}, got {tensor.layout}")
    if dtypes is not None and tensor.dtype not in dtypes:
        expected = ", ".join(str(dtype) for dtype in dtypes)
        raise RuntimeError(f"{op_name}: {name} must have dtype {expected}, got {tensor.dtype}")
    return tensor


def same_device(op_name, tensors):
    """Return the one device that all of `tensors` live on."""
    devices = {id(t.device_handle): t.device_handle for t in tensors if t is not None}
    if len(devices) != 1:
        raise RuntimeError(f"{op_name}: all input tensors must be on the same device")
    return next(iter(devices.values()))


def not_modeled(op_name, **arguments):
    """Raise NotImplementedError for the first argument that is set but not emulated."""
    for name, value in arguments.items():
        if value is None or value is False or (isinstance(value, (list, tuple)) and not value):
            continue
        raise NotImplementedError(
            f"{op_name}: the emulated n150 does not model {name}={value!r}; "
            "run without it or on a card"
        )


def output_memory_config(memory_config, default=None):
    return memory_config if memory_config is not None else (default or ttnn.DRAM_MEMORY_CONFIG)


def as_int_list(shape):
    return [int(d) for d in shape]


# ---------------------------------------------------------------------------------------------
# Host <-> device
# ---------------------------------------------------------------------------------------------


def from_torch(
    tensor,
    dtype=None,
    *,
    spec=None,
    tile=None,
    pad_value=None,
    layout=None,
    device=None,
    memory_config=None,
    mesh_mapper=None,
    cq_id=None,
    preserve_nan_values=False,
    col_tilize=False,
    enable_bfloat_opt=False,
):
    """Build the host tensor with the real ttnn code, then copy it to the emulated device."""
    if device is not None and not isinstance(device, EmulatedDevice):
        raise TypeError(f"ttnn.from_torch: device must be an opened device, got {device!r}")
    if device is not None:
        device.check_host_write("ttnn.from_torch")
    host_memory_config = None if device is not None else memory_config
    host = ORIGINALS["from_torch"](
        tensor,
        dtype,
        spec=spec,
        tile=tile,
        pad_value=pad_value,
        layout=layout,
        memory_config=host_memory_config,
        mesh_mapper=mesh_mapper,
        cq_id=cq_id,
        preserve_nan_values=preserve_nan_values,
        col_tilize=col_tilize,
        enable_bfloat_opt=enable_bfloat_opt,
    )
    if device is None or host is None:
        return host
    return to_device(host, device, memory_config)


def stored_value(host_tensor):
    """Return the values a real ttnn host tensor holds, as the emulator stores them."""
    value = host_tensor.to_torch()
    if host_tensor.dtype in INTEGER_TYPES:
        return value.to(torch.int64)
    if host_tensor.dtype in BLOCK_FLOAT_TYPES:
        return value.to(torch.float32)
    return value


def to_device(tensor, device, memory_config=None, *, queue_id=None):
    if isinstance(tensor, DeviceTensor):
        return tensor
    if not isinstance(device, EmulatedDevice):
        raise TypeError(f"ttnn.to_device: device must be an opened device, got {device!r}")
    device.check_host_write("ttnn.to_device")
    if memory_config is not None and memory_config.is_sharded():
        not_modeled("ttnn.to_device", sharded_memory_config=memory_config)
    return DeviceTensor(
        stored_value(tensor),
        tensor.dtype,
        tensor.layout,
        device,
        output_memory_config(memory_config),
    )


def from_device(tensor, blocking=True, *, queue_id=None):
    if not isinstance(tensor, DeviceTensor):
        return tensor
    require_device_tensor("ttnn.from_device", "tensor", tensor)
    tensor.device_handle.check_host_read("ttnn.from_device")
    if tensor.written_by_capture:
        raise RuntimeError(
            "ttnn.from_device: this tensor was written by a trace capture and contains no data "
            "until ttnn.execute_trace runs that trace"
        )
    value = tensor.value
    if tensor.dtype in INTEGER_TYPES:
        value = value.to(torch.int32)
    # The stored values are exactly representable, so the real packing reproduces them bit for bit.
    return ORIGINALS["from_torch"](value, tensor.dtype, layout=tensor.layout)


def is_tensor_storage_on_device(tensor):
    if isinstance(tensor, DeviceTensor):
        return True
    return ORIGINALS["is_tensor_storage_on_device"](tensor)


def copy_host_to_device_tensor(host_tensor, device_tensor, cq_id=None):
    op_name = "ttnn.copy_host_to_device_tensor"
    if not isinstance(host_tensor, ttnn.Tensor):
        raise TypeError(f"{op_name}: host_tensor must be a host ttnn.Tensor")
    target = require_device_tensor(op_name, "device_tensor", device_tensor)
    target.device_handle.check_host_write(op_name)
    if list(host_tensor.shape) != list(target.shape):
        raise RuntimeError(
            f"{op_name}: host and device tensors must have the same shape, got "
            f"{list(host_tensor.shape)} and {list(target.shape)}"
        )
    if host_tensor.dtype != target.dtype:
        raise RuntimeError(
            f"{op_name}: host and device tensors must have the same dtype, got "
            f"{host_tensor.dtype} and {target.dtype}"
        )
    if host_tensor.layout != target.layout:
        raise RuntimeError(
            f"{op_name}: host and device tensors must have the same layout, got "
            f"{host_tensor.layout} and {target.layout}"
        )
    target.value = stored_value(host_tensor)
    target.written_by_capture = False


def deallocate(tensor, force=True):
    if isinstance(tensor, DeviceTensor):
        tensor.allocated = False
        return
    ORIGINALS["deallocate"](tensor, force)


def to_layout(tensor, layout, dtype=None, memory_config=None, sub_core_grids=None, pad_value=0.0):
    if not isinstance(tensor, DeviceTensor):
        return ORIGINALS["to_layout"](
            tensor, layout, dtype, memory_config, sub_core_grids, pad_value
        )
    op_name = "ttnn.to_layout"
    require_device_tensor(op_name, "tensor", tensor)
    out_dtype = dtype if dtype is not None else tensor.dtype
    if layout == ROW_MAJOR and out_dtype in BLOCK_FLOAT_TYPES:
        raise RuntimeError(f"{op_name}: {out_dtype} exists only in TILE layout")
    spec = (out_dtype, layout, output_memory_config(memory_config, tensor.memory_config_value))
    return tensor.device_handle.launch(
        op_name, lambda x: x, [tensor], [spec], static_args=(layout, out_dtype)
    )[0]


def typecast(input_tensor, dtype, *, memory_config=None, output_tensor=None, sub_core_grids=None):
    op_name = "ttnn.typecast"
    if not isinstance(input_tensor, DeviceTensor):
        return ORIGINALS["typecast"](input_tensor, dtype)
    require_device_tensor(op_name, "input_tensor", input_tensor)
    not_modeled(op_name, output_tensor=output_tensor)
    if dtype in BLOCK_FLOAT_TYPES and input_tensor.layout != TILE:
        raise RuntimeError(f"{op_name}: casting to {dtype} needs a TILE tensor")
    spec = (dtype, input_tensor.layout, output_memory_config(memory_config))

    def kernel(x):
        if dtype in INTEGER_TYPES:
            x = x.to(torch.float64).trunc()
            if dtype == ttnn.uint32:
                # As ttnn 0.81.1's typecast golden function does: negatives become 0.
                x = x.clamp(0, 2**32 - 1)
            return x
        return x.to(torch.float32)

    return input_tensor.device_handle.launch(
        op_name, kernel, [input_tensor], [spec], static_args=(dtype,)
    )[0]


# ---------------------------------------------------------------------------------------------
# Data movement
# ---------------------------------------------------------------------------------------------


def reshape(
    input_tensor,
    shape,
    *,
    memory_config=None,
    pad_value=None,
    reshape_tile_mode=ttnn.TileReshapeMapMode.CACHE,
    sub_core_grids=None,
    skip_padding_fill=False,
):
    if not isinstance(input_tensor, DeviceTensor):
        return ORIGINALS["reshape"](input_tensor, shape)
    op_name = "ttnn.reshape"
    require_device_tensor(op_name, "input_tensor", input_tensor)
    new_shape = as_int_list(shape)
    volume = input_tensor.value.numel()
    if -1 in new_shape:
        known = math.prod(d for d in new_shape if d != -1)
        new_shape[new_shape.index(-1)] = volume // known if known else 0
    if math.prod(new_shape) != volume:
        raise RuntimeError(
            f"{op_name}: cannot reshape {list(input_tensor.shape)} ({volume} elements) "
            f"to {as_int_list(shape)}"
        )
    spec = (input_tensor.dtype, input_tensor.layout, output_memory_config(memory_config))
    return input_tensor.device_handle.launch(
        op_name,
        lambda x: x.reshape(new_shape),
        [input_tensor],
        [spec],
        static_args=tuple(new_shape),
    )[0]


def slice_(
    input_tensor,
    slice_start,
    slice_end,
    slice_step=None,
    *,
    memory_config=None,
    output_tensor=None,
    pad_value=None,
    sub_core_grids=None,
):
    # The parameters are those of the overload that ttnn.slice's docstring documents.
    op_name = "ttnn.slice"
    require_device_tensor(op_name, "input_tensor", input_tensor)
    not_modeled(op_name, output_tensor=output_tensor)
    starts = as_int_list(slice_start)
    ends = as_int_list(slice_end)
    steps = as_int_list(slice_step) if slice_step is not None else [1] * len(starts)
    rank = input_tensor.value.dim()
    if not len(starts) == len(ends) == len(steps) == rank:
        raise RuntimeError(
            f"{op_name}: slice_start, slice_end and slice_step need {rank} entries each"
        )
    index = tuple(slice(s, e, st) for s, e, st in zip(starts, ends, steps))
    spec = (input_tensor.dtype, input_tensor.layout, output_memory_config(memory_config))
    return input_tensor.device_handle.launch(
        op_name,
        lambda x: x[index],
        [input_tensor],
        [spec],
        static_args=(tuple(starts), tuple(ends), tuple(steps)),
    )[0]


def getitem(tensor, key):
    """Slice a device tensor with Python indexing, as ttnn.Tensor.__getitem__ does (ttnn.slice)."""
    if not isinstance(key, tuple):
        key = (key,)
    shape = list(tensor.value.shape)
    if len(key) > len(shape) or any(not isinstance(k, slice) for k in key):
        raise NotImplementedError(
            "the emulated n150 supports tensor[...] with slices only, one per dimension at most"
        )
    key = key + (slice(None),) * (len(shape) - len(key))
    starts, ends, steps = [], [], []
    for k, size in zip(key, shape):
        start, end, step = k.indices(size)
        starts.append(start)
        ends.append(end)
        steps.append(step)
    return slice_(tensor, starts, ends, steps)


def concat(
    tensors, dim=0, *, memory_config=None, output_tensor=None, groups=1, sub_core_grids=None
):
    op_name = "ttnn.concat"
    tensors = [require_device_tensor(op_name, f"tensors[{i}]", t) for i, t in enumerate(tensors)]
    not_modeled(op_name, output_tensor=output_tensor, groups=None if groups == 1 else groups)
    if not tensors:
        raise RuntimeError(f"{op_name}: needs at least one tensor")
    device = same_device(op_name, tensors)
    first = tensors[0]
    rank = first.value.dim()
    axis = dim % rank
    for i, t in enumerate(tensors[1:], start=1):
        if t.layout != first.layout or t.dtype != first.dtype:
            raise RuntimeError(f"{op_name}: all tensors must have the same layout and dtype")
        if t.value.dim() != rank:
            raise RuntimeError(f"{op_name}: all tensors must have the same rank")
        for d in range(rank):
            if d != axis and t.value.shape[d] != first.value.shape[d]:
                raise RuntimeError(
                    f"{op_name}: tensors[{i}] has shape {list(t.shape)}, which differs from "
                    f"{list(first.shape)} outside dim {dim}"
                )
    spec = (first.dtype, first.layout, output_memory_config(memory_config))
    return device.launch(
        op_name,
        lambda *xs: torch.cat([x.to(torch.float32) for x in xs], dim=axis),
        tensors,
        [spec],
        static_args=(axis,),
    )[0]


def transpose(input_tensor, dim1, dim2, *, memory_config=None, pad_value=0.0):
    op_name = "ttnn.transpose"
    require_device_tensor(op_name, "input_tensor", input_tensor)
    rank = input_tensor.value.dim()
    pair = sorted((dim1 % rank, dim2 % rank))
    out_dtype = input_tensor.dtype
    # Only the WH and CN kernels keep block-float data; other dims go through bfloat16.
    if out_dtype == ttnn.bfloat8_b and pair not in ([rank - 2, rank - 1], [0, 1]):
        out_dtype = ttnn.bfloat16
    spec = (out_dtype, input_tensor.layout, output_memory_config(memory_config))
    return input_tensor.device_handle.launch(
        op_name,
        lambda x: x.transpose(dim1, dim2).contiguous(),
        [input_tensor],
        [spec],
        static_args=(dim1, dim2),
    )[0]


# ---------------------------------------------------------------------------------------------
# Matmul, normalization, element-wise
# ---------------------------------------------------------------------------------------------

ACTIVATIONS = {
    "silu": torch.nn.functional.silu,
    "relu": torch.relu,
    "gelu": torch.nn.functional.gelu,
}


def matmul_common(op_name, a, b, bias, transpose_a, transpose_b, memory_config, dtype, activation):
    require_device_tensor(op_name, "input_tensor_a", a, (TILE,), MATMUL_TYPES)
    require_device_tensor(op_name, "input_tensor_b", b, (TILE,), MATMUL_TYPES)
    if bias is not None:
        require_device_tensor(op_name, "bias", bias, (TILE,), MATMUL_TYPES)
    device = same_device(op_name, [a, b, bias])
    a_shape = list(a.shape)
    b_shape = list(b.shape)
    if transpose_a:
        a_shape[-2], a_shape[-1] = a_shape[-1], a_shape[-2]
    if transpose_b:
        b_shape[-2], b_shape[-1] = b_shape[-1], b_shape[-2]
    if a_shape[-1] != b_shape[-2]:
        raise RuntimeError(
            f"{op_name}: the inner dimensions do not match: input_tensor_a {a_shape} "
            f"@ input_tensor_b {b_shape}"
        )
    if bias is not None and math.prod(b_shape[:-2]) != 1:
        raise RuntimeError(f"{op_name}: a bias needs an unbatched input_tensor_b, got {b_shape}")
    if activation is not None and activation not in ACTIVATIONS:
        raise NotImplementedError(
            f"{op_name}: activation {activation!r} is not emulated; "
            f"supported: {', '.join(ACTIVATIONS)}"
        )
    out_dtype = dtype if dtype is not None else a.dtype

    def kernel(x, w, b_value):
        x = x.to(torch.float32)
        w = w.to(torch.float32)
        if transpose_a:
            x = x.transpose(-1, -2)
        if transpose_b:
            w = w.transpose(-1, -2)
        y = torch.matmul(x, w)
        while y.dim() > x.dim():
            y = y.squeeze(0)
        if b_value is not None:
            y = y + b_value.to(torch.float32)
        if activation is not None:
            y = ACTIVATIONS[activation](y)
        return y

    spec = (out_dtype, TILE, output_memory_config(memory_config))
    return device.launch(
        op_name,
        kernel,
        [a, b, bias],
        [spec],
        static_args=(transpose_a, transpose_b, out_dtype, activation),
    )[0]


def linear(
    input_tensor_a,
    input_tensor_b,
    *,
    bias=None,
    transpose_a=False,
    transpose_b=False,
    memory_config=None,
    dtype=None,
    program_config=None,
    activation=None,
    compute_kernel_config=None,
    core_grid=None,
    output_tile=None,
    optional_output_tensor=None,
    global_cb=None,
    sub_device_id=None,
    prefetcher_pipes=[],  # noqa: B006 (the real op's default; never mutated)
    in0_column_offset=None,
):
    not_modeled(
        "ttnn.linear",
        output_tile=output_tile,
        optional_output_tensor=optional_output_tensor,
        global_cb=global_cb,
        prefetcher_pipes=prefetcher_pipes,
        in0_column_offset=in0_column_offset,
    )
    return matmul_common(
        "ttnn.linear",
        input_tensor_a,
        input_tensor_b,
        bias,
        transpose_a,
        transpose_b,
        memory_config,
        dtype,
        activation,
    )


def matmul(
    input_tensor_a,
    input_tensor_b,
    *,
    transpose_a=False,
    transpose_b=False,
    memory_config=None,
    dtype=None,
    program_config=None,
    activation=None,
    compute_kernel_config=None,
    core_grid=None,
    output_tile=None,
    optional_output_tensor=None,
    global_cb=None,
    sub_device_id=None,
    prefetcher_pipes=[],  # noqa: B006 (the real op's default; never mutated)
):
    not_modeled(
        "ttnn.matmul",
        output_tile=output_tile,
        optional_output_tensor=optional_output_tensor,
        global_cb=global_cb,
        prefetcher_pipes=prefetcher_pipes,
    )
    return matmul_common(
        "ttnn.matmul",
        input_tensor_a,
        input_tensor_b,
        None,
        transpose_a,
        transpose_b,
        memory_config,
        dtype,
        activation,
    )


def rms_norm(
    input_tensor,
    *,
    epsilon=1e-12,
    weight=None,
    bias=None,
    residual_input_tensor=None,
    memory_config=None,
    program_config=None,
    compute_kernel_config=None,
):
    op_name = "ttnn.rms_norm"
    require_device_tensor(op_name, "input_tensor", input_tensor, (TILE,), FLOAT_TYPES)
    width = input_tensor.value.shape[-1]
    for name, tensor in (("weight", weight), ("bias", bias)):
        if tensor is None:
            continue
        require_device_tensor(op_name, name, tensor, (TILE, ROW_MAJOR), FLOAT_TYPES)
        if tensor.value.numel() != width or tensor.value.shape[-1] not in (width, TILE_SIZE):
            raise RuntimeError(
                f"{op_name}: {name} must hold {width} values ([1, 1, 1, {width}] in TILE "
                f"or [1, 1, {width // TILE_SIZE}, 32] in ROW_MAJOR), got {list(tensor.shape)}"
            )
    if residual_input_tensor is not None:
        require_device_tensor(op_name, "residual_input_tensor", residual_input_tensor, (TILE,))
        if list(residual_input_tensor.shape) != list(input_tensor.shape):
            raise RuntimeError(f"{op_name}: residual_input_tensor must match input_tensor's shape")
    device = same_device(op_name, [input_tensor, weight, bias, residual_input_tensor])

    def kernel(x, w, b, residual):
        x = x.to(torch.float32)
        if residual is not None:
            x = x + residual.to(torch.float32)
        y = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + epsilon)
        if w is not None:
            y = y * w.to(torch.float32).reshape(width)
        if b is not None:
            y = y + b.to(torch.float32).reshape(width)
        return y

    spec = (input_tensor.dtype, TILE, output_memory_config(memory_config))
    return device.launch(
        op_name,
        kernel,
        [input_tensor, weight, bias, residual_input_tensor],
        [spec],
        static_args=(epsilon,),
    )[0]


def shapes_broadcast(shape_a, shape_b) -> bool:
    """Return True if two shapes broadcast together under torch's (NumPy's) rules.

    torch.broadcast_shapes would do, but its first call imports sympy, which takes seconds.
    """
    for size_a, size_b in zip(reversed(shape_a), reversed(shape_b)):
        if size_a != size_b and size_a != 1 and size_b != 1:
            return False
    return True


def binary(
    op_name,
    torch_op,
    a,
    b,
    dtype,
    memory_config,
    output_tensor,
    activations,
    a_activations,
    b_activations,
):
    not_modeled(
        op_name,
        output_tensor=output_tensor,
        activations=activations,
        input_tensor_a_activations=a_activations,
        input_tensor_b_activations=b_activations,
    )
    tensors = [t for t in (a, b) if not isinstance(t, (int, float))]
    if not tensors:
        raise TypeError(f"{op_name}: at least one input must be a ttnn.Tensor")
    for name, t in (("input_tensor_a", a), ("input_tensor_b", b)):
        if not isinstance(t, (int, float)):
            require_device_tensor(op_name, name, t)
    device = same_device(op_name, tensors)
    if len(tensors) == 2 and not shapes_broadcast(a.value.shape, b.value.shape):
        raise RuntimeError(
            f"{op_name}: shapes {list(a.shape)} and {list(b.shape)} cannot be broadcast"
        )
    first = tensors[0]
    layout = TILE if any(t.layout == TILE for t in tensors) else ROW_MAJOR
    spec = (
        dtype if dtype is not None else first.dtype,
        layout,
        output_memory_config(memory_config),
    )
    scalar_a = a if isinstance(a, (int, float)) else None
    scalar_b = b if isinstance(b, (int, float)) else None

    # Integer tensors (and integer scalars) stay exact in int64; anything else runs in float32.
    integer = all(t.dtype in INTEGER_TYPES for t in tensors) and all(
        isinstance(scalar, int) for scalar in (scalar_a, scalar_b) if scalar is not None
    )
    compute_dtype = torch.int64 if integer else torch.float32

    def kernel(*values):
        values = list(values)
        x = scalar_a if scalar_a is not None else values.pop(0).to(compute_dtype)
        y = scalar_b if scalar_b is not None else values.pop(0).to(compute_dtype)
        return torch_op(x, y)

    return device.launch(op_name, kernel, tensors, [spec], static_args=(scalar_a, scalar_b))[0]


def add(
    input_tensor_a,
    input_tensor_b,
    *,
    fast_and_approximate_mode=True,
    dtype=None,
    memory_config=None,
    output_tensor=None,
    activations=[],  # noqa: B006 (the real op's default; never mutated)
    input_tensor_a_activations=[],  # noqa: B006
    input_tensor_b_activations=[],  # noqa: B006
    sub_core_grids=None,
    sub_device_id=None,
):
    return binary(
        "ttnn.add",
        torch.add,
        input_tensor_a,
        input_tensor_b,
        dtype,
        memory_config,
        output_tensor,
        activations,
        input_tensor_a_activations,
        input_tensor_b_activations,
    )


def mul(
    input_tensor_a,
    input_tensor_b,
    *,
    fast_and_approximate_mode=False,
    dtype=None,
    memory_config=None,
    output_tensor=None,
    activations=[],  # noqa: B006 (the real op's default; never mutated)
    input_tensor_a_activations=[],  # noqa: B006
    input_tensor_b_activations=[],  # noqa: B006
    sub_core_grids=None,
    sub_device_id=None,
):
    return binary(
        "ttnn.mul",
        torch.mul,
        input_tensor_a,
        input_tensor_b,
        dtype,
        memory_config,
        output_tensor,
        activations,
        input_tensor_a_activations,
        input_tensor_b_activations,
    )


def silu(input_tensor, *, memory_config=None, output_tensor=None, sub_core_grids=None):
    op_name = "ttnn.silu"
    require_device_tensor(op_name, "input_tensor", input_tensor, (TILE,), FLOAT_TYPES)
    not_modeled(op_name, output_tensor=output_tensor)
    spec = (input_tensor.dtype, TILE, output_memory_config(memory_config))
    return input_tensor.device_handle.launch(
        op_name, lambda x: torch.nn.functional.silu(x.to(torch.float32)), [input_tensor], [spec]
    )[0]


# ---------------------------------------------------------------------------------------------
# Embedding
# ---------------------------------------------------------------------------------------------


def embedding(
    input_tensor,
    weight,
    *,
    padding_idx=None,
    layout=None,
    embeddings_type=ttnn.EmbeddingsType.GENERIC,
    dtype=None,
    memory_config=None,
    output_tensor=None,
):
    op_name = "ttnn.embedding"
    require_device_tensor(
        op_name, "input_tensor", input_tensor, (ROW_MAJOR,), (ttnn.uint32, ttnn.bfloat16)
    )
    require_device_tensor(op_name, "weight", weight, (ROW_MAJOR,), (ttnn.bfloat16,))
    not_modeled(op_name, padding_idx=padding_idx, output_tensor=output_tensor)
    if embeddings_type != ttnn.EmbeddingsType.GENERIC:
        not_modeled(op_name, embeddings_type=embeddings_type)
    device = same_device(op_name, [input_tensor, weight])
    index_shape = [1] * (4 - input_tensor.value.dim()) + list(input_tensor.value.shape)
    if len(index_shape) != 4 or index_shape[1] != 1 or index_shape[2] != 1:
        raise RuntimeError(
            f"{op_name}: input_tensor must be [batch, 1, 1, tokens] (only dims 0 and 3 may "
            f"differ from 1), got {list(input_tensor.shape)}"
        )
    weight_shape = [1] * (4 - weight.value.dim()) + list(weight.value.shape)
    if weight_shape[0] != 1 or weight_shape[1] != 1:
        raise RuntimeError(
            f"{op_name}: weight must be [1, 1, vocab, dim], got {list(weight.shape)}"
        )
    vocab, dim = weight_shape[2], weight_shape[3]
    out_layout = layout if layout is not None else weight.layout
    out_dtype = dtype if dtype is not None else weight.dtype
    if out_layout == ROW_MAJOR and out_dtype != weight.dtype:
        raise RuntimeError(f"{op_name}: can only typecast output embeddings in TILE layout")
    batch, tokens = index_shape[0], index_shape[3]
    # Input [batch, 1, 1, tokens] gives [batch, tokens, dim]; other ranks [batch, 1, tokens, dim].
    out_shape = [batch, tokens, dim] if input_tensor.value.dim() == 4 else [batch, 1, tokens, dim]

    def kernel(ids, table):
        ids = ids.reshape(-1).to(torch.int64)
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= vocab):
            raise RuntimeError(
                f"{op_name}: index {int(ids.max())} is out of range for a table of {vocab} rows"
            )
        return table.reshape(vocab, dim)[ids].to(torch.float32).reshape(out_shape)

    spec = (out_dtype, out_layout, output_memory_config(memory_config))
    return device.launch(
        op_name, kernel, [input_tensor, weight], [spec], static_args=(out_layout, out_dtype)
    )[0]


# ---------------------------------------------------------------------------------------------
# Attention building blocks
# ---------------------------------------------------------------------------------------------


def nlp_create_qkv_heads(
    input,  # noqa: A002 (the real op's parameter name)
    input_kv=None,
    *,
    num_heads,
    num_kv_heads=None,
    transpose_k_heads=True,
    kv_tied=False,
    memory_config=None,
    output_tensors=None,
):
    op_name = "ttnn.experimental.nlp_create_qkv_heads"
    require_device_tensor(op_name, "input", input, (TILE,), FLOAT_TYPES)
    not_modeled(op_name, input_kv=input_kv, kv_tied=kv_tied, output_tensors=output_tensors)
    num_kv_heads = num_heads if num_kv_heads is None else num_kv_heads
    shape = list(input.shape)
    if len(shape) != 4 or shape[1] != 1:
        raise RuntimeError(f"{op_name}: input must be [B, 1, S, width], got {shape}")
    sections = num_heads + 2 * num_kv_heads
    if shape[3] % sections:
        raise RuntimeError(
            f"{op_name}: input width {shape[3]} is not divisible by num_heads + 2 * num_kv_heads "
            f"= {sections}"
        )
    head_dim = shape[3] // sections
    if head_dim % TILE_SIZE:
        raise RuntimeError(f"{op_name}: head_dim {head_dim} must be a multiple of {TILE_SIZE}")
    batch, seq = shape[0], shape[2]

    def kernel(x):
        x = x.to(torch.float32)
        q, k, v = x.split(
            [num_heads * head_dim, num_kv_heads * head_dim, num_kv_heads * head_dim], -1
        )
        q = q.reshape(batch, seq, num_heads, head_dim).transpose(1, 2)
        k = k.reshape(batch, seq, num_kv_heads, head_dim).transpose(1, 2)
        v = v.reshape(batch, seq, num_kv_heads, head_dim).transpose(1, 2)
        if transpose_k_heads:
            k = k.transpose(-1, -2)
        return q.contiguous(), k.contiguous(), v.contiguous()

    spec = (input.dtype, TILE, output_memory_config(memory_config))
    return tuple(
        input.device_handle.launch(
            op_name,
            kernel,
            [input],
            [spec, spec, spec],
            static_args=(num_heads, num_kv_heads, transpose_k_heads),
        )
    )


def nlp_create_qkv_heads_decode(
    input_tensor,
    *,
    num_heads,
    num_kv_heads=None,
    output_tensors=None,
    overlap_qk_coregrid=True,
    batch_offset=None,
    slice_size=None,
    memory_config=None,
):
    op_name = "ttnn.experimental.nlp_create_qkv_heads_decode"
    require_device_tensor(op_name, "input_tensor", input_tensor, (TILE,), FLOAT_TYPES)
    not_modeled(op_name, output_tensors=output_tensors)
    if (batch_offset is None) != (slice_size is None):
        raise RuntimeError(f"{op_name}: batch_offset and slice_size must be given together")
    not_modeled(op_name, batch_offset=batch_offset)
    num_kv_heads = num_heads if num_kv_heads is None else num_kv_heads
    shape = list(input_tensor.shape)
    sections = num_heads + 2 * num_kv_heads
    if len(shape) != 4 or shape[0] != 1 or shape[1] != 1 or shape[2] > TILE_SIZE:
        raise RuntimeError(
            f"{op_name}: input must be [1, 1, B, head_dim * (num_heads + 2 * num_kv_heads)] "
            f"with B <= {TILE_SIZE}, got {shape}"
        )
    if num_heads > TILE_SIZE:
        raise RuntimeError(f"{op_name}: at most {TILE_SIZE} query heads, got {num_heads}")
    if num_heads < num_kv_heads:
        raise RuntimeError(
            f"{op_name}: num_heads ({num_heads}) must be >= num_kv_heads ({num_kv_heads})"
        )
    if shape[3] % sections or (shape[3] // sections) % TILE_SIZE:
        raise RuntimeError(
            f"{op_name}: input width {shape[3]} must be head_dim * {sections} with head_dim a "
            f"multiple of {TILE_SIZE}"
        )
    head_dim = shape[3] // sections
    batch = shape[2]

    def kernel(x):
        x = x.to(torch.float32).reshape(1, batch, sections, head_dim)
        q = x[:, :, :num_heads]
        k = x[:, :, num_heads : num_heads + num_kv_heads]
        v = x[:, :, num_heads + num_kv_heads :]
        return q.contiguous(), k.contiguous(), v.contiguous()

    # The card writes the heads HEIGHT_SHARDED in L1, one user per core.
    spec = (input_tensor.dtype, TILE, output_memory_config(memory_config, ttnn.L1_MEMORY_CONFIG))
    return tuple(
        input_tensor.device_handle.launch(
            op_name,
            kernel,
            [input_tensor],
            [spec, spec, spec],
            static_args=(num_heads, num_kv_heads),
        )
    )


def nlp_concat_heads(input_tensor, *, memory_config=None):
    op_name = "ttnn.experimental.nlp_concat_heads"
    require_device_tensor(
        op_name,
        "input_tensor",
        input_tensor,
        (TILE,),
        (ttnn.bfloat16, ttnn.bfloat8_b, ttnn.float32),
    )
    shape = list(input_tensor.shape)
    if len(shape) != 4:
        raise RuntimeError(f"{op_name}: input must be [B, num_heads, S, head_dim], got {shape}")
    batch, heads, seq, head_dim = shape
    spec = (input_tensor.dtype, TILE, output_memory_config(memory_config))
    return input_tensor.device_handle.launch(
        op_name,
        lambda x: x.transpose(1, 2).reshape(batch, 1, seq, heads * head_dim),
        [input_tensor],
        [spec],
    )[0]


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def rotary_embedding(
    input_tensor,
    cos_cache,
    sin_cache,
    token_index=None,
    *,
    memory_config=None,
    compute_kernel_config=None,
):
    op_name = "ttnn.experimental.rotary_embedding"
    require_device_tensor(op_name, "input_tensor", input_tensor, (TILE,), FLOAT_TYPES)
    require_device_tensor(op_name, "cos_cache", cos_cache, (TILE,), (input_tensor.dtype,))
    require_device_tensor(op_name, "sin_cache", sin_cache, (TILE,), (input_tensor.dtype,))
    device = same_device(op_name, [input_tensor, cos_cache, sin_cache])
    head_dim = input_tensor.value.shape[-1]
    if padded_shape_of(input_tensor.value.shape, TILE)[-1] % (2 * TILE_SIZE):
        raise RuntimeError(
            f"{op_name}: the input's padded last dim must be a multiple of {2 * TILE_SIZE}, "
            f"got {head_dim}"
        )
    for name, cache in (("cos_cache", cos_cache), ("sin_cache", sin_cache)):
        cache_shape = list(cache.shape)
        if len(cache_shape) != 4 or cache_shape[:2] != [1, 1] or cache_shape[3] != head_dim:
            raise RuntimeError(
                f"{op_name}: {name} must be [1, 1, seq_len, {head_dim}], got {cache_shape}"
            )
    if list(cos_cache.shape) != list(sin_cache.shape):
        raise RuntimeError(f"{op_name}: cos_cache and sin_cache must have the same shape")
    cache_len = cos_cache.value.shape[2]
    if token_index is None:
        seq = input_tensor.value.shape[-2]
        if seq > cache_len:
            raise RuntimeError(
                f"{op_name}: the input has {seq} positions but the cos/sin caches cover {cache_len}"
            )
    else:
        if input_tensor.value.shape[0] != 1:
            raise RuntimeError(
                f"{op_name}: with token_index the input must be [1, 1, B, head_dim] "
                f"(seq_len 1 first), got {list(input_tensor.shape)}"
            )
        if not 0 <= token_index < cache_len:
            raise RuntimeError(
                f"{op_name}: token_index {token_index} is outside the cos/sin caches "
                f"(length {cache_len})"
            )

    def kernel(x, cos, sin):
        x = x.to(torch.float32)
        if token_index is None:
            rows = slice(0, x.shape[-2])
        else:
            rows = slice(token_index, token_index + 1)
        cos = cos[:, :, rows].to(torch.float32)
        sin = sin[:, :, rows].to(torch.float32)
        return x * cos + rotate_half(x) * sin

    spec = (input_tensor.dtype, TILE, output_memory_config(memory_config))
    return device.launch(
        op_name, kernel, [input_tensor, cos_cache, sin_cache], [spec], static_args=(token_index,)
    )[0]


def rotary_embedding_llama(
    input_tensor,
    cos_cache,
    sin_cache,
    trans_mat,
    *,
    is_decode_mode=False,
    memory_config=None,
    compute_kernel_config=None,
):
    """Meta-format RoPE: x * cos + (x @ trans_mat) * sin, with trans_mat applied per 32-wide tile.

    It rotates adjacent pairs (x0, x1), (x2, x3), ..., which matches weights in Meta's interleaved
    layout, not HuggingFace's rotate-half layout.
    """
    op_name = "ttnn.experimental.rotary_embedding_llama"
    require_device_tensor(op_name, "input_tensor", input_tensor, (TILE,), FLOAT_TYPES)
    for name, tensor in (
        ("cos_cache", cos_cache),
        ("sin_cache", sin_cache),
        ("trans_mat", trans_mat),
    ):
        require_device_tensor(op_name, name, tensor, (TILE,), FLOAT_TYPES)
    device = same_device(op_name, [input_tensor, cos_cache, sin_cache, trans_mat])
    if list(trans_mat.shape)[-2:] != [TILE_SIZE, TILE_SIZE]:
        raise RuntimeError(
            f"{op_name}: trans_mat must be [1, 1, 32, 32], got {list(trans_mat.shape)}"
        )
    head_dim = input_tensor.value.shape[-1]
    if head_dim % TILE_SIZE:
        raise RuntimeError(f"{op_name}: head_dim {head_dim} must be a multiple of {TILE_SIZE}")
    if list(cos_cache.shape) != list(sin_cache.shape) or cos_cache.value.shape[-1] != head_dim:
        raise RuntimeError(f"{op_name}: cos_cache and sin_cache must be [..., seq_len, {head_dim}]")
    if is_decode_mode:
        batch = input_tensor.value.shape[1]
        if cos_cache.value.shape[1] != batch:
            raise RuntimeError(
                f"{op_name}: in decode mode cos/sin must be [1, {batch}, 1, {head_dim}], "
                f"got {list(cos_cache.shape)}"
            )
    else:
        seq = input_tensor.value.shape[-2]
        if cos_cache.value.shape[0] != 1 or cos_cache.value.shape[-2] < seq:
            raise RuntimeError(
                f"{op_name}: cos/sin must be [1, 1 or n_heads, >= {seq}, {head_dim}], "
                f"got {list(cos_cache.shape)}"
            )

    def kernel(x, cos, sin, mat):
        x = x.to(torch.float32)
        tiles = x.reshape(*x.shape[:-1], head_dim // TILE_SIZE, TILE_SIZE)
        rotated = (tiles @ mat.to(torch.float32).reshape(TILE_SIZE, TILE_SIZE)).reshape(x.shape)
        if is_decode_mode:
            cos = cos[:, :, :1].to(torch.float32)
            sin = sin[:, :, :1].to(torch.float32)
        else:
            cos = cos[:, :, : x.shape[-2]].to(torch.float32)
            sin = sin[:, :, : x.shape[-2]].to(torch.float32)
        return x * cos + rotated * sin

    spec = (input_tensor.dtype, TILE, output_memory_config(memory_config))
    return device.launch(
        op_name,
        kernel,
        [input_tensor, cos_cache, sin_cache, trans_mat],
        [spec],
        static_args=(is_decode_mode,),
    )[0]


# ---------------------------------------------------------------------------------------------
# KV cache
# ---------------------------------------------------------------------------------------------


def fill_cache(cache_tensor, input_tensor, batch_idx, *, update_idx=0):
    op_name = "ttnn.fill_cache"
    require_device_tensor(op_name, "cache_tensor", cache_tensor, (TILE,))
    require_device_tensor(op_name, "input_tensor", input_tensor, (TILE,))
    device = same_device(op_name, [cache_tensor, input_tensor])
    if cache_tensor.memory_config_value.is_sharded():
        raise RuntimeError(f"{op_name}: cache_tensor must be interleaved")
    if input_tensor.dtype != cache_tensor.dtype:
        raise RuntimeError(
            f"{op_name}: input_tensor dtype {input_tensor.dtype} must equal the cache's "
            f"{cache_tensor.dtype}"
        )
    cache_shape = list(cache_tensor.shape)
    shape = list(input_tensor.shape)
    if len(shape) != 4 or len(cache_shape) != 4:
        raise RuntimeError(f"{op_name}: cache and input must be 4D, got {cache_shape} and {shape}")
    if shape[0] != 1:
        raise RuntimeError(f"{op_name}: input_tensor batch must be 1, got {shape}")
    if not 0 <= batch_idx < cache_shape[0]:
        raise RuntimeError(
            f"{op_name}: batch_idx {batch_idx} is out of range for a cache of {cache_shape[0]} users"
        )
    if shape[1] != cache_shape[1] or shape[3] != cache_shape[3]:
        raise RuntimeError(
            f"{op_name}: input {shape} must match the cache {cache_shape} in heads and head_dim"
        )
    if update_idx % TILE_SIZE:
        raise RuntimeError(f"{op_name}: update_idx {update_idx} must be a multiple of {TILE_SIZE}")
    if update_idx + shape[2] > cache_shape[2]:
        raise RuntimeError(
            f"{op_name}: {shape[2]} positions from update_idx {update_idx} do not fit in a cache "
            f"of {cache_shape[2]} positions"
        )

    def kernel(cache, x):
        cache[batch_idx, :, update_idx : update_idx + x.shape[2]] = x[0].to(cache.dtype)
        return cache

    return device.launch(
        op_name,
        kernel,
        [cache_tensor, input_tensor],
        [],
        static_args=(batch_idx, update_idx),
        inplace_target=cache_tensor,
    )[0]


def positions_from(op_name, list_value, tensor_value, list_name, tensor_name, batch):
    """Validate positions given as a Python list or as a device int32 tensor of one per user."""
    if (len(list_value) > 0) == (tensor_value is not None):
        raise RuntimeError(f"{op_name}: pass exactly one of {list_name} or {tensor_name}")
    if tensor_value is not None:
        require_device_tensor(op_name, tensor_name, tensor_value, (ROW_MAJOR,), (ttnn.int32,))
        if list(tensor_value.shape) != [batch]:
            raise RuntimeError(
                f"{op_name}: {tensor_name} must be [{batch}] (one position per user), "
                f"got {list(tensor_value.shape)}"
            )
        return None
    if len(list_value) != batch:
        raise RuntimeError(f"{op_name}: {list_name} needs {batch} entries, got {len(list_value)}")
    return torch.tensor(list(list_value), dtype=torch.int64)


def paged_update_cache(
    cache_tensor,
    input_tensor,
    *,
    update_idxs=[],  # noqa: B006 (the real op's default; never mutated)
    update_idxs_tensor=None,
    share_cache=None,
    page_table=None,
    batch_offset=0,
    compute_kernel_config=None,
    mesh_coords=None,
    block_size=None,
    num_kv_heads=None,
    cache_position_modulo=None,
):
    op_name = "ttnn.experimental.paged_update_cache"
    require_device_tensor(op_name, "cache_tensor", cache_tensor, (TILE,))
    require_device_tensor(
        op_name, "input_tensor", input_tensor, (TILE,), (ttnn.bfloat16, ttnn.float32)
    )
    not_modeled(
        op_name,
        share_cache=share_cache,
        page_table=page_table,
        mesh_coords=mesh_coords,
        block_size=block_size,
        num_kv_heads=num_kv_heads,
        cache_position_modulo=cache_position_modulo,
    )
    if batch_offset != 0:
        raise RuntimeError(f"{op_name}: batch_offset must be 0, got {batch_offset}")
    if cache_tensor.memory_config_value.is_sharded():
        raise RuntimeError(f"{op_name}: cache_tensor must be interleaved")
    cache_shape = list(cache_tensor.shape)
    shape = list(input_tensor.shape)
    batch = cache_shape[0]
    if (
        len(shape) != 4
        or shape[0] != 1
        or shape[1] != batch
        or shape[2:] != cache_shape[1:2] + cache_shape[3:]
    ):
        raise RuntimeError(
            f"{op_name}: input_tensor must be [1, {batch}, {cache_shape[1]}, {cache_shape[3]}] "
            f"for a cache of {cache_shape}, got {shape}"
        )
    listed = positions_from(
        op_name, update_idxs, update_idxs_tensor, "update_idxs", "update_idxs_tensor", batch
    )
    device = same_device(op_name, [cache_tensor, input_tensor, update_idxs_tensor])
    cache_len = cache_shape[2]

    def kernel(cache, x, positions):
        positions = listed if positions is None else positions.to(torch.int64)
        # NOTE: a card may skip a user at position -1, as SDPA decode does; unverified, so rejected.
        if int(positions.max()) >= cache_len or int(positions.min()) < 0:
            raise RuntimeError(
                f"{op_name}: positions {positions.tolist()} must be in [0, {cache_len})"
            )
        # cache[user, head, positions[user]] = x[0, user, head], by index_put_, which is several
        # times faster than the equivalent cache[users, :, positions] assignment.
        users = torch.arange(batch).reshape(batch, 1)
        heads = torch.arange(cache.shape[1]).reshape(1, -1)
        cache.index_put_((users, heads, positions.reshape(batch, 1)), x[0].to(cache.dtype))
        return cache

    return device.launch(
        op_name,
        kernel,
        [cache_tensor, input_tensor, update_idxs_tensor],
        [],
        static_args=(tuple(update_idxs),),
        inplace_target=cache_tensor,
    )[0]


# ---------------------------------------------------------------------------------------------
# Fused attention
# ---------------------------------------------------------------------------------------------

SDPA_TYPES = (ttnn.bfloat16, ttnn.bfloat8_b, ttnn.bfloat4_b)


def attention(q, k, v, mask, scale):
    """Softmax attention in float32 with grouped K/V heads; `mask` is True where attention is allowed.

    Query head h reads K/V head h // (num_heads / num_kv_heads). torch's fused kernel does that
    without copying K and V per query head. A row whose mask is all False comes out as NaN or 0.
    """
    return torch.nn.functional.scaled_dot_product_attention(
        q, k, v, attn_mask=mask, scale=scale, enable_gqa=q.shape[1] != k.shape[1]
    )


def scaled_dot_product_attention(
    input_tensor_q,
    input_tensor_k,
    input_tensor_v,
    *,
    attn_mask=None,
    is_causal=True,
    scale=None,
    sliding_window_size=None,
    memory_config=None,
    program_config=None,
    compute_kernel_config=None,
    attention_sink=None,
    cu_window_seqlens=None,
    windowed_q_token_offset=0,
    windowed_q_token_offset_tensor=None,
    output_concat_heads=False,
    attn_mask_block_map=None,
):
    op_name = "ttnn.transformer.scaled_dot_product_attention"
    for name, tensor in (
        ("input_tensor_q", input_tensor_q),
        ("input_tensor_k", input_tensor_k),
        ("input_tensor_v", input_tensor_v),
    ):
        require_device_tensor(op_name, name, tensor, (TILE,), SDPA_TYPES)
        if tensor.memory_config_value.is_sharded():
            raise RuntimeError(f"{op_name}: {name} must not be sharded")
    not_modeled(
        op_name,
        attn_mask=attn_mask,
        sliding_window_size=sliding_window_size,
        attention_sink=attention_sink,
        cu_window_seqlens=cu_window_seqlens,
        windowed_q_token_offset=windowed_q_token_offset or None,
        windowed_q_token_offset_tensor=windowed_q_token_offset_tensor,
        attn_mask_block_map=attn_mask_block_map,
    )
    device = same_device(op_name, [input_tensor_q, input_tensor_k, input_tensor_v])
    q_shape = list(input_tensor_q.shape)
    k_shape = list(input_tensor_k.shape)
    if k_shape != list(input_tensor_v.shape):
        raise RuntimeError(f"{op_name}: K {k_shape} and V {list(input_tensor_v.shape)} must match")
    if len(q_shape) != 4 or q_shape[0] != k_shape[0] or q_shape[3] != k_shape[3]:
        raise RuntimeError(
            f"{op_name}: Q must be [b, nqh, s, dh] and K/V [b, nkv, s, dh], got {q_shape} and "
            f"{k_shape}"
        )
    if q_shape[3] % TILE_SIZE:
        raise RuntimeError(f"{op_name}: head_dim {q_shape[3]} must be a multiple of {TILE_SIZE}")
    if q_shape[1] < k_shape[1] or q_shape[1] % k_shape[1]:
        raise RuntimeError(
            f"{op_name}: the number of Q heads ({q_shape[1]}) must be a multiple of the number of "
            f"K/V heads ({k_shape[1]})"
        )
    if is_causal and q_shape[2] != k_shape[2]:
        raise RuntimeError(
            f"{op_name}: causal attention needs equal Q and K sequence lengths, got {q_shape[2]} "
            f"and {k_shape[2]}"
        )
    softmax_scale = scale if scale is not None else 1.0 / math.sqrt(q_shape[3])
    seq_q, seq_k = q_shape[2], k_shape[2]

    def kernel(q, k, v):
        if is_causal:
            mask = torch.ones(seq_q, seq_k, dtype=torch.bool).tril()
        else:
            mask = torch.ones(seq_q, seq_k, dtype=torch.bool)
        out = attention(
            q.to(torch.float32), k.to(torch.float32), v.to(torch.float32), mask, softmax_scale
        )
        if output_concat_heads:
            out = out.transpose(1, 2).reshape(q_shape[0], 1, seq_q, q_shape[1] * q_shape[3])
        return out

    spec = (input_tensor_q.dtype, TILE, output_memory_config(memory_config))
    return device.launch(
        op_name,
        kernel,
        [input_tensor_q, input_tensor_k, input_tensor_v],
        [spec],
        static_args=(is_causal, softmax_scale, output_concat_heads),
    )[0]


def scaled_dot_product_attention_decode(
    input_tensor_q,
    input_tensor_k,
    input_tensor_v,
    *,
    is_causal=True,
    attn_mask=None,
    cur_pos=[],  # noqa: B006 (the real op's default; never mutated)
    cur_pos_tensor=None,
    attention_sink=None,
    scale=None,
    sliding_window_size=None,
    memory_config=None,
    program_config=None,
    compute_kernel_config=None,
    share_cache=None,
):
    op_name = "ttnn.transformer.scaled_dot_product_attention_decode"
    require_device_tensor(op_name, "input_tensor_q", input_tensor_q, (TILE,), (ttnn.bfloat16,))
    require_device_tensor(op_name, "input_tensor_k", input_tensor_k, (TILE,), SDPA_TYPES)
    require_device_tensor(op_name, "input_tensor_v", input_tensor_v, (TILE,), SDPA_TYPES)
    not_modeled(
        op_name,
        attn_mask=attn_mask,
        attention_sink=attention_sink,
        sliding_window_size=sliding_window_size,
        share_cache=share_cache,
        is_causal=None if is_causal else "False",
    )
    for name, tensor in (("input_tensor_k", input_tensor_k), ("input_tensor_v", input_tensor_v)):
        if tensor.memory_config_value.buffer_type != ttnn.BufferType.DRAM:
            raise RuntimeError(f"{op_name}: {name} (the KV cache) must be in DRAM")
    q_shape = list(input_tensor_q.shape)
    k_shape = list(input_tensor_k.shape)
    if k_shape != list(input_tensor_v.shape):
        raise RuntimeError(f"{op_name}: K {k_shape} and V {list(input_tensor_v.shape)} must match")
    if len(q_shape) != 4 or q_shape[0] != 1:
        raise RuntimeError(f"{op_name}: Q must be [1, b, nh, dh], got {q_shape}")
    batch, heads, head_dim = q_shape[1], q_shape[2], q_shape[3]
    if len(k_shape) != 4 or k_shape[0] != batch or k_shape[3] != head_dim:
        raise RuntimeError(
            f"{op_name}: K/V must be [{batch}, nkv, s, {head_dim}] for Q {q_shape}, got {k_shape}"
        )
    if heads % k_shape[1]:
        raise RuntimeError(
            f"{op_name}: Q heads ({heads}) must be a multiple of K/V heads ({k_shape[1]})"
        )
    listed = positions_from(op_name, cur_pos, cur_pos_tensor, "cur_pos", "cur_pos_tensor", batch)
    device = same_device(op_name, [input_tensor_q, input_tensor_k, input_tensor_v, cur_pos_tensor])
    softmax_scale = scale if scale is not None else 1.0 / math.sqrt(head_dim)
    cache_len = k_shape[2]

    def kernel(q, k, v, positions):
        positions = listed if positions is None else positions.to(torch.int64)
        if int(positions.max()) >= cache_len:
            raise RuntimeError(
                f"{op_name}: positions {positions.tolist()} must be < the cache length {cache_len}"
            )
        # Only keys up to the furthest position matter; reading past it would be wasted work.
        length = max(int(positions.max()) + 1, 1)
        q = q.to(torch.float32).reshape(batch, heads, 1, head_dim)
        k = k[:, :, :length].to(torch.float32)
        v = v[:, :, :length].to(torch.float32)
        mask = torch.arange(length).reshape(1, 1, 1, length) <= positions.reshape(batch, 1, 1, 1)
        out = attention(q, k, v, mask, softmax_scale)
        # A position of -1 skips that user, as the real op documents; its output stays zero.
        out = out.masked_fill((positions < 0).reshape(batch, 1, 1, 1), 0.0)
        return out.reshape(1, batch, heads, head_dim)

    spec = (input_tensor_q.dtype, TILE, output_memory_config(memory_config))
    return device.launch(
        op_name,
        kernel,
        [input_tensor_q, input_tensor_k, input_tensor_v, cur_pos_tensor],
        [spec],
        static_args=(softmax_scale, tuple(cur_pos)),
    )[0]


# ---------------------------------------------------------------------------------------------
# Device and trace
# ---------------------------------------------------------------------------------------------

OPEN_DEVICES = {}


def open_device(
    *,
    device_id=0,
    l1_small_size=ttnn.device.DEFAULT_L1_SMALL_SIZE,
    trace_region_size=ttnn.device.DEFAULT_TRACE_REGION_SIZE,
    dispatch_core_config=None,
    worker_l1_size=None,
):
    """Open emulated n150 `device_id` (only device 0 exists); an open device is returned again."""
    if device_id != 0:
        raise RuntimeError(
            f"ttnn.open_device: device {device_id} not found; an n150 has device 0 only"
        )
    device = OPEN_DEVICES.get(device_id)
    if device is None or not device.is_open:
        device = EmulatedDevice(device_id, l1_small_size, trace_region_size)
        OPEN_DEVICES[device_id] = device
    return device


def close_device(device):
    if not isinstance(device, EmulatedDevice):
        raise TypeError(f"ttnn.close_device: expected an opened device, got {device!r}")
    device.is_open = False
    device.traces.clear()
    OPEN_DEVICES.pop(device.device_id, None)


def synchronize_device(device, cq_id=None, sub_device_ids=[]):  # noqa: B006
    device.check_open("ttnn.synchronize_device")


def begin_trace_capture(mesh_device, *, cq_id=None):
    return mesh_device.begin_capture()


def end_trace_capture(mesh_device, trace_id, *, cq_id=None):
    mesh_device.end_capture(trace_id)


def execute_trace(mesh_device, trace_id, *, cq_id=None, blocking=True):
    mesh_device.execute(trace_id)


def release_trace(mesh_device, trace_id):
    mesh_device.release(trace_id)
