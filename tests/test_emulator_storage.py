"""Device tensors store exactly what the real ttnn 0.81.1 host conversion stores, bit for bit.

Each case builds one torch tensor and compares four paths against the real host round trip
(ttnn.from_torch without a device, then Tensor.to_torch): `round_to_dtype`, ttnn.from_torch with a
device followed by ttnn.to_torch, ttnn.to_device of a real host tensor, and ttnn.from_device, which
must return a real host tensor.
"""

import pytest
import torch
import ttnn

import emulator_support
from emulator_support import host_round_trip, install_module, to_bits
from ttnn_emulator.tensor import round_to_dtype

# The fixture, assigned here so that pytest finds it in this module.
device = emulator_support.device

TILE = ttnn.TILE_LAYOUT
ROW_MAJOR = ttnn.ROW_MAJOR_LAYOUT

SHAPES = [(1, 1, 5, 7), (3, 33, 65), (1, 1, 32, 64), (40,)]


def generator(seed):
    return torch.Generator().manual_seed(seed)


def random_normal(shape):
    return torch.randn(shape, generator=generator(0)) * 4


def zeros(shape):
    return torch.zeros(shape)


def subnormals(shape):
    # float32 subnormals (below 1.18e-38) next to normal values, with both signs.
    magnitudes = torch.tensor([1e-40, 3e-39, 1.1e-38, 1.4e-45, 2.0, 1e-38, 5e-41, 0.5])
    signs = torch.tensor([1.0, -1.0, 1.0, -1.0, 1.0, 1.0, -1.0, -1.0])
    return (magnitudes * signs).repeat(numel(shape) // 8 + 1)[: numel(shape)].reshape(shape)


def extreme_exponents(shape):
    # 1e30 and 1e-30 inside one 16-element block: a shared exponent cannot keep both.
    block = torch.tensor(
        [
            1e30,
            1e-30,
            -1e30,
            3.0,
            -1e-30,
            1e20,
            7e-20,
            1.0,
            -2.5,
            1e38,
            3.3e38,
            1e-37,
            0.0,
            -0.0,
            65504.0,
            1e-5,
        ]
    )
    return block.repeat(numel(shape) // 16 + 1)[: numel(shape)].reshape(shape)


def nan_and_inf(shape):
    # ttnn's host conversion accepts NaN and inf; bfloat16 keeps them, block floats keep them
    # and flush the rest of their block.
    block = torch.tensor(
        [
            float("nan"),
            1.0,
            float("inf"),
            -2.0,
            float("-inf"),
            0.5,
            3.0,
            -0.25,
            4.0,
            -8.0,
            0.125,
            1e-3,
            -1e3,
            2.0,
            5.0,
            6.0,
        ]
    )
    values = block.repeat(numel(shape) // 16 + 1)[: numel(shape)].reshape(shape)
    # A block without special values stays finite, so only some rows see the flushing.
    values.reshape(-1)[::37] = 1.5
    return values


def random_bits(shape):
    # Every float32 bit pattern is equally likely: NaNs with payloads, infinities, subnormals.
    bits = torch.randint(-(2**31), 2**31 - 1, shape, generator=generator(1), dtype=torch.int32)
    return bits.view(torch.float32)


def numel(shape):
    count = 1
    for size in shape:
        count *= size
    return count


FLOAT_DATA = {
    "normal": random_normal,
    "zeros": zeros,
    "subnormals": subnormals,
    "extreme_exponents": extreme_exponents,
    "nan_inf": nan_and_inf,
    "random_bits": random_bits,
}

FLOAT_CASES = [
    (dtype, layout)
    for dtype in (ttnn.bfloat16, ttnn.float32, ttnn.bfloat8_b, ttnn.bfloat4_b)
    for layout in (TILE, ROW_MAJOR)
    # bfloat8_b and bfloat4_b exist only in TILE layout.
    if layout == TILE or dtype in (ttnn.bfloat16, ttnn.float32)
]


def int_data(dtype, shape):
    if dtype == ttnn.int32:
        low, high = -(2**31), 2**31
    else:
        low, high = 0, 2**32
    values = torch.randint(low, high, shape, generator=generator(2), dtype=torch.int64)
    # The range ends, which a wrong sign or width conversion would change.
    values.reshape(-1)[0] = low
    values.reshape(-1)[-1] = high - 1
    return values if dtype == ttnn.uint32 else values.to(torch.int32)


def case_id(value):
    return str(value).split(".")[-1]


def check_device_paths(device, value, dtype, layout):
    """Compare the device paths of `value` with the real host round trip."""
    real_host = install_module.ORIGINALS["from_torch"](value, dtype, layout=layout)
    expected = real_host.to_torch()

    through_from_torch = ttnn.from_torch(value, dtype=dtype, layout=layout, device=device)
    assert ttnn.is_tensor_storage_on_device(through_from_torch)
    actual = ttnn.to_torch(through_from_torch)
    assert actual.dtype == expected.dtype
    assert torch.equal(to_bits(actual), to_bits(expected))

    assert list(through_from_torch.shape) == list(real_host.shape)
    assert list(through_from_torch.padded_shape) == list(real_host.padded_shape)

    through_to_device = ttnn.to_device(real_host, device)
    assert torch.equal(to_bits(ttnn.to_torch(through_to_device)), to_bits(expected))

    back_on_host = ttnn.from_device(through_from_torch)
    assert isinstance(back_on_host, ttnn.Tensor)
    assert not ttnn.is_tensor_storage_on_device(back_on_host)
    assert back_on_host.dtype == real_host.dtype
    assert back_on_host.layout == real_host.layout
    assert list(back_on_host.shape) == list(real_host.shape)
    assert list(back_on_host.padded_shape) == list(real_host.padded_shape)
    assert torch.equal(to_bits(back_on_host.to_torch()), to_bits(expected))


@pytest.mark.parametrize("data", FLOAT_DATA.values(), ids=FLOAT_DATA.keys())
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype, layout", FLOAT_CASES, ids=case_id)
def test_round_to_dtype_matches_host(dtype, layout, shape, data):
    value = data(shape)
    expected = host_round_trip(value, dtype, layout)
    actual = round_to_dtype(value, dtype, layout)
    assert actual.dtype == expected.dtype
    mismatches = (to_bits(actual) != to_bits(expected)).sum().item()
    assert mismatches == 0, (
        f"{mismatches} of {value.numel()} values differ from ttnn's host packing"
    )


@pytest.mark.parametrize("data", FLOAT_DATA.values(), ids=FLOAT_DATA.keys())
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype, layout", FLOAT_CASES, ids=case_id)
def test_device_round_trip_float(device, dtype, layout, shape, data):
    check_device_paths(device, data(shape), dtype, layout)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("layout", (TILE, ROW_MAJOR), ids=case_id)
@pytest.mark.parametrize("dtype", (ttnn.uint32, ttnn.int32), ids=case_id)
def test_round_to_dtype_integer(dtype, layout, shape):
    value = int_data(dtype, shape)
    expected = host_round_trip(value, dtype, layout).to(torch.int64)
    actual = round_to_dtype(value, dtype, layout)
    assert torch.equal(actual.to(torch.int64), expected)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("layout", (TILE, ROW_MAJOR), ids=case_id)
@pytest.mark.parametrize("dtype", (ttnn.uint32, ttnn.int32), ids=case_id)
def test_device_round_trip_integer(device, dtype, layout, shape):
    check_device_paths(device, int_data(dtype, shape), dtype, layout)


def test_device_round_trip_negative_uint32(device):
    # ttnn stores int32 -5 as uint32 4294967291; the device copy must keep that value.
    value = torch.tensor([[-5, 0, 7, -(2**31)]], dtype=torch.int32)
    check_device_paths(device, value, ttnn.uint32, ROW_MAJOR)


def test_block_float_row_major_rejected():
    value = random_normal((32, 32))
    with pytest.raises(RuntimeError, match="needs ttnn.TILE_LAYOUT"):
        round_to_dtype(value, ttnn.bfloat8_b, ROW_MAJOR)


def test_bfloat8_block_shares_exponent():
    # Guards the comparisons above against a vacuous pass: bfloat8_b loses 1e-30 next to 1e30.
    value = torch.zeros(1, 16)
    value[0, 0] = 1e30
    value[0, 1] = 1e-30
    rounded = round_to_dtype(value, ttnn.bfloat8_b, TILE)
    assert rounded[0, 0].item() == pytest.approx(1e30, rel=1e-2)
    assert rounded[0, 1].item() == 0.0
