"""Shared pieces of the emulator tests: the real ttnn ops captured before install(), and helpers.

Importing this module captures every function listed in `ttnn_emulator.install.EMULATED` as the
ttnn 0.81.1 wheel defines it, then installs the emulator. pytest imports the test modules before
it runs any test, so the capture happens before any test opens a device.
"""

import importlib

import bringup  # noqa: F401 (sets the ttnn environment before ttnn is imported)
import pytest
import torch
import ttnn

import ttnn_emulator

# `from ttnn_emulator import install` would get the install() function, not the submodule.
install_module = importlib.import_module("ttnn_emulator.install")

if ttnn_emulator.is_installed():
    raise RuntimeError(
        "ttnn_emulator.install() ran before the emulator tests could capture the real ttnn ops; "
        "import tests/emulator_support.py before anything that opens an emulated device"
    )

# The real ttnn objects (FastOperation wrappers and nanobind functions), keyed by (module, name).
REAL_OPS = {
    (module, name): getattr(install_module.owner(module), name)
    for module, name in install_module.EMULATED
}

ttnn_emulator.install()

# Shapes of SmolLM2-135M.
HIDDEN = 576
NUM_HEADS = 9
NUM_KV_HEADS = 3
HEAD_DIM = 64
MLP_DIM = 1536
DECODE_BATCH = 32

# 32 MiB, as bringup.device uses for the decode trace.
TRACE_REGION_SIZE = 32 * 1024 * 1024


def real_op(name, module=""):
    """Return the ttnn 0.81.1 object that `ttnn.<module>.<name>` referred to before install()."""
    return REAL_OPS[(module, name)]


def golden(name, module=""):
    """Return the upstream torch reference that ttnn 0.81.1 attaches to an op."""
    return ttnn.get_golden_function(real_op(name, module))


def host_round_trip(value, dtype, layout):
    """Return `value` packed by the real host conversion and unpacked again."""
    return install_module.ORIGINALS["from_torch"](value, dtype, layout=layout).to_torch()


def to_bits(tensor):
    """Return the raw bits of a tensor as integers, so NaN payloads and -0.0 compare exactly."""
    tensor = tensor.contiguous()
    if tensor.dtype == torch.bfloat16:
        return tensor.view(torch.int16)
    if tensor.dtype == torch.float32:
        return tensor.view(torch.int32)
    return tensor.to(torch.int64)


def pcc(expected, actual):
    """Return the Pearson correlation coefficient of two tensors, computed in float64."""
    x = expected.detach().to(torch.float64).reshape(-1)
    y = actual.detach().to(torch.float64).reshape(-1)
    x = x - x.mean()
    y = y - y.mean()
    return float((x * y).sum() / torch.sqrt((x * x).sum() * (y * y).sum()))


def on_device(device, value, dtype=ttnn.bfloat16, layout=ttnn.TILE_LAYOUT, memory_config=None):
    """Copy a torch tensor to the emulated device and return the device tensor."""
    return ttnn.from_torch(
        value, dtype=dtype, layout=layout, device=device, memory_config=memory_config
    )


def stored(tensor):
    """Return the values a device tensor stores, as float32 (to feed golden functions)."""
    return ttnn.to_torch(tensor).to(torch.float32)


@pytest.fixture
def device():
    """An emulated n150 opened with a trace region; closed after the test."""
    opened = ttnn.open_device(device_id=0, trace_region_size=TRACE_REGION_SIZE)
    yield opened
    if opened.is_open:
        ttnn.close_device(opened)
