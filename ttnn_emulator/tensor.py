"""Tensors that live on the emulated n150, and the storage rounding of each ttnn data type."""

import torch
import ttnn

TILE_SIZE = 32

# Data types whose values are stored as float and rounded by the real ttnn packing code.
BLOCK_FLOAT_TYPES = (ttnn.bfloat8_b, ttnn.bfloat4_b)
FLOAT_TYPES = (ttnn.bfloat16, ttnn.float32) + BLOCK_FLOAT_TYPES
INTEGER_TYPES = (ttnn.uint32, ttnn.int32, ttnn.uint16, ttnn.uint8)


def _host_from_torch(tensor, dtype, layout):
    """Pack a torch tensor into a real ttnn host tensor (the wheel's own conversion code)."""
    # `from ttnn_emulator import install` would get the install() function, which the package
    # re-exports under the submodule's name, so import from the submodule itself.
    from ttnn_emulator.install import ORIGINALS

    return ORIGINALS["from_torch"](tensor, dtype=dtype, layout=layout)


def _torch_from_host(host_tensor):
    """Unpack a real ttnn host tensor into torch."""
    return host_tensor.to_torch()


def to_bfloat16(value: torch.Tensor) -> torch.Tensor:
    """Round to bfloat16 as ttnn's host conversion does, which stores every NaN as 0x7FC0.

    torch keeps a NaN's sign and top payload bits instead. A bfloat16 input is returned as it is,
    as ttnn keeps its bits.
    """
    if value.dtype == torch.bfloat16:
        return value
    rounded = value.to(torch.bfloat16)
    # A NaN makes the sum NaN. One sum costs far less than isnan() over every element, and a
    # false alarm (inf - inf in the sum) only costs the full check.
    if torch.isnan(value.sum()):
        nan = torch.isnan(rounded)
        rounded = rounded.masked_fill(nan, float("nan"))
    return rounded


def round_to_dtype(value: torch.Tensor, dtype, layout) -> torch.Tensor:
    """Return `value` rounded exactly as ttnn stores it in `dtype`.

    bfloat16 uses torch's round-to-nearest-even with NaNs stored as ttnn stores them, which equals
    ttnn's host conversion bit for bit (tests/test_emulator_storage.py checks this). Block-float types go through the real ttnn packing code, so
    the shared exponents and mantissa rounding are the library's own. Integer types are returned
    as int64 after truncation toward zero, as a typecast to an integer type does.
    """
    if dtype == ttnn.bfloat16:
        return to_bfloat16(value)
    if dtype == ttnn.float32:
        return value.to(torch.float32)
    if dtype in BLOCK_FLOAT_TYPES:
        if layout != ttnn.TILE_LAYOUT:
            raise RuntimeError(f"{dtype} is a tile format; it needs ttnn.TILE_LAYOUT, got {layout}")
        host = _host_from_torch(value.to(torch.float32).contiguous(), dtype, ttnn.TILE_LAYOUT)
        return _torch_from_host(host).to(torch.float32)
    if dtype in INTEGER_TYPES:
        return value.to(torch.int64)
    raise RuntimeError(f"data type {dtype} is not supported by the emulated n150")


def padded_shape_of(shape, layout) -> list:
    """Return the shape the card allocates: the last two dims rounded up to 32 in TILE layout."""
    padded = list(shape)
    if layout == ttnn.TILE_LAYOUT:
        # As in ttnn, a tensor of rank 0 or 1 gets a height of one tile: [40] pads to [32, 64].
        padded = [1] * max(0, 2 - len(padded)) + padded
        padded[-1] = -(-padded[-1] // TILE_SIZE) * TILE_SIZE
        padded[-2] = -(-padded[-2] // TILE_SIZE) * TILE_SIZE
    return padded


class DeviceTensor:
    """A tensor in the DRAM or L1 of the emulated n150.

    The value is held as a torch tensor of the logical shape whose elements are exactly the values
    the card would store (see `round_to_dtype`). `ttnn.from_device` turns it back into a real ttnn
    host tensor through the wheel's packing code.

    A tensor written by an op inside a trace capture contains no data until `ttnn.execute_trace`
    runs, as on the card, where captured commands are only recorded.
    """

    def __init__(self, value, dtype, layout, device, memory_config):
        self.value = value
        self.dtype = dtype
        self.layout = layout
        self.device_handle = device
        self.memory_config_value = memory_config
        self.allocated = True
        # Set for outputs of a trace capture until execute_trace writes them.
        self.written_by_capture = False

    @property
    def shape(self):
        return ttnn.Shape(list(self.value.shape))

    @property
    def padded_shape(self):
        return ttnn.Shape(padded_shape_of(self.value.shape, self.layout))

    def get_dtype(self):
        return self.dtype

    def get_layout(self):
        return self.layout

    def device(self):
        return self.device_handle

    def memory_config(self):
        return self.memory_config_value

    def storage_type(self):
        return ttnn.StorageType.DEVICE

    def is_allocated(self) -> bool:
        return self.allocated

    def is_sharded(self) -> bool:
        return self.memory_config_value.is_sharded()

    def deallocate(self, force=True):
        ttnn.deallocate(self, force)

    def cpu(self, blocking=True):
        return ttnn.from_device(self, blocking)

    def to_torch(self):
        return ttnn.to_torch(self)

    def __getitem__(self, key):
        from ttnn_emulator import ops

        return ops.getitem(self, key)

    def __repr__(self):
        state = "" if self.allocated else ", deallocated"
        return (
            f"ttnn.Tensor(emulated n150, shape={list(self.value.shape)}, "
            f"dtype={self.dtype}, layout={self.layout}{state})"
        )
