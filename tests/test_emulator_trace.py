"""Trace capture and replay on the emulated n150 follow the card's rules.

A trace records device programs between ttnn.begin_trace_capture and ttnn.end_trace_capture, and
ttnn.execute_trace replays them on the current contents of the same input tensors. Host transfers
are not allowed inside a capture, so inputs are refreshed with ttnn.copy_host_to_device_tensor
between replays. Every program in a trace must have run once before the capture (program cache).
"""

import pytest
import torch
import ttnn

import emulator_support
from emulator_support import (
    DECODE_BATCH,
    HEAD_DIM,
    HIDDEN,
    NUM_HEADS,
    NUM_KV_HEADS,
    install_module,
    to_bits,
)

# The fixture, assigned here so that pytest finds it in this module.
device = emulator_support.device

TILE = ttnn.TILE_LAYOUT
ROW_MAJOR = ttnn.ROW_MAJOR_LAYOUT
QKV_WIDTH = HEAD_DIM * (NUM_HEADS + 2 * NUM_KV_HEADS)
CACHE_LEN = 64
CAPTURE_WRITE = r"host-to-device writes are not allowed during trace capture"
CAPTURE_READ = r"device-to-host reads are not allowed during trace capture"
NOT_YET_WRITTEN = r"written by a trace capture and contains no data until ttnn.execute_trace"


def random(*shape, seed=0, scale=1.0):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed)) * scale


def host(value, dtype=ttnn.bfloat16, layout=TILE):
    """Return a real ttnn host tensor of `value`."""
    return install_module.ORIGINALS["from_torch"](value, dtype, layout=layout)


def on_device(device, value, dtype=ttnn.bfloat16, layout=TILE):
    return ttnn.from_torch(value, dtype=dtype, layout=layout, device=device)


def positions_host(positions):
    return host(torch.tensor(positions, dtype=torch.int32), ttnn.int32, ROW_MAJOR)


def mlp_step(x, norm_weight, weight):
    """A small chain of ops: rms_norm, linear, silu, and a residual add."""
    normed = ttnn.rms_norm(x, epsilon=1e-5, weight=norm_weight)
    hidden = ttnn.silu(ttnn.linear(normed, weight))
    return ttnn.add(hidden, x)


@pytest.fixture
def mlp_weights(device):
    norm_weight = on_device(device, random(1, 1, 1, HIDDEN, seed=1) + 1.0)
    weight = on_device(device, random(HIDDEN, HIDDEN, seed=2, scale=0.05), ttnn.bfloat8_b)
    return norm_weight, weight


def test_replay_matches_eager(device, mlp_weights):
    x = on_device(device, random(1, 1, 32, HIDDEN))
    mlp_step(x, *mlp_weights)

    trace_id = ttnn.begin_trace_capture(device, cq_id=0)
    traced_output = mlp_step(x, *mlp_weights)
    ttnn.end_trace_capture(device, trace_id, cq_id=0)

    for seed in (10, 11, 12):
        new_input = random(1, 1, 32, HIDDEN, seed=seed)
        ttnn.copy_host_to_device_tensor(host(new_input), x)
        ttnn.execute_trace(device, trace_id, cq_id=0, blocking=True)
        replayed = ttnn.to_torch(traced_output)

        eager = ttnn.to_torch(mlp_step(on_device(device, new_input), *mlp_weights))
        assert torch.equal(to_bits(replayed), to_bits(eager)), f"input seed {seed}"

    ttnn.release_trace(device, trace_id)


def test_replay_reads_new_input(device, mlp_weights):
    # Guards test_replay_matches_eager against a trace that ignores its input.
    x = on_device(device, random(1, 1, 32, HIDDEN))
    mlp_step(x, *mlp_weights)
    trace_id = ttnn.begin_trace_capture(device, cq_id=0)
    traced_output = mlp_step(x, *mlp_weights)
    ttnn.end_trace_capture(device, trace_id, cq_id=0)

    ttnn.execute_trace(device, trace_id, cq_id=0)
    first = ttnn.to_torch(traced_output)
    ttnn.copy_host_to_device_tensor(host(random(1, 1, 32, HIDDEN, seed=5)), x)
    ttnn.execute_trace(device, trace_id, cq_id=0)
    second = ttnn.to_torch(traced_output)

    assert not torch.equal(first, second)


@pytest.mark.parametrize(
    "write",
    [
        lambda d, target: ttnn.from_torch(torch.zeros(1, 32), dtype=ttnn.bfloat16, device=d),
        lambda d, target: ttnn.as_tensor(
            torch.zeros(1, 32),
            dtype=ttnn.bfloat16,
            layout=TILE,
            device=d,
            memory_config=ttnn.DRAM_MEMORY_CONFIG,
        ),
        lambda d, target: ttnn.to_device(host(torch.zeros(1, 32)), d),
        lambda d, target: ttnn.copy_host_to_device_tensor(host(torch.zeros(1, 32)), target),
    ],
    ids=["from_torch", "as_tensor", "to_device", "copy_host_to_device_tensor"],
)
def test_write_during_capture_raises(device, write):
    target = on_device(device, torch.ones(1, 32))
    trace_id = ttnn.begin_trace_capture(device, cq_id=0)
    try:
        with pytest.raises(RuntimeError, match=CAPTURE_WRITE):
            write(device, target)
    finally:
        ttnn.end_trace_capture(device, trace_id, cq_id=0)
    # The rejected copy left the target as it was.
    assert torch.equal(ttnn.to_torch(target), torch.ones(1, 32, dtype=torch.bfloat16))


@pytest.mark.parametrize(
    "read",
    [lambda t: ttnn.from_device(t), lambda t: ttnn.to_torch(t), lambda t: t.cpu()],
    ids=["from_device", "to_torch", "cpu"],
)
def test_read_during_capture_raises(device, read):
    x = on_device(device, torch.ones(1, 32))
    trace_id = ttnn.begin_trace_capture(device, cq_id=0)
    try:
        with pytest.raises(RuntimeError, match=CAPTURE_READ):
            read(x)
    finally:
        ttnn.end_trace_capture(device, trace_id, cq_id=0)


def test_capture_output_unreadable_before_replay(device, mlp_weights):
    x = on_device(device, random(1, 1, 32, HIDDEN))
    mlp_step(x, *mlp_weights)
    trace_id = ttnn.begin_trace_capture(device, cq_id=0)
    traced_output = mlp_step(x, *mlp_weights)
    ttnn.end_trace_capture(device, trace_id, cq_id=0)

    with pytest.raises(RuntimeError, match=NOT_YET_WRITTEN):
        ttnn.to_torch(traced_output)
    with pytest.raises(RuntimeError, match=r"ttnn.silu: an input was " + NOT_YET_WRITTEN):
        ttnn.silu(traced_output)

    ttnn.execute_trace(device, trace_id, cq_id=0)
    expected = ttnn.to_torch(mlp_step(x, *mlp_weights))
    assert torch.equal(to_bits(ttnn.to_torch(traced_output)), to_bits(expected))


def test_uncompiled_program_in_capture_raises(device, mlp_weights):
    x = on_device(device, random(1, 1, 32, HIDDEN))
    mlp_step(x, *mlp_weights)
    longer = on_device(device, random(1, 1, 64, HIDDEN))
    trace_id = ttnn.begin_trace_capture(device, cq_id=0)
    try:
        # Same ops, new input shape: a program the cache has not seen.
        with pytest.raises(
            RuntimeError,
            match=r"ttnn.rms_norm: this program .* was not compiled "
            r"before trace capture began",
        ):
            mlp_step(longer, *mlp_weights)
    finally:
        ttnn.end_trace_capture(device, trace_id, cq_id=0)


def test_trace_region_size_zero_raises():
    opened = ttnn.open_device(device_id=0, trace_region_size=0)
    try:
        assert opened.trace_region_size == 0, "device 0 was already open with a trace region"
        with pytest.raises(RuntimeError, match=r"the device was opened with trace_region_size=0"):
            ttnn.begin_trace_capture(opened, cq_id=0)
    finally:
        ttnn.close_device(opened)


def test_released_trace_cannot_run(device, mlp_weights):
    x = on_device(device, random(1, 1, 32, HIDDEN))
    mlp_step(x, *mlp_weights)
    trace_id = ttnn.begin_trace_capture(device, cq_id=0)
    mlp_step(x, *mlp_weights)
    ttnn.end_trace_capture(device, trace_id, cq_id=0)
    ttnn.execute_trace(device, trace_id, cq_id=0)

    ttnn.release_trace(device, trace_id)

    with pytest.raises(RuntimeError, match=r"ttnn.execute_trace: trace \d+ does not exist"):
        ttnn.execute_trace(device, trace_id, cq_id=0)
    with pytest.raises(RuntimeError, match=r"ttnn.release_trace: trace \d+ does not exist"):
        ttnn.release_trace(device, trace_id)


def test_replay_after_input_deallocated_raises(device, mlp_weights):
    x = on_device(device, random(1, 1, 32, HIDDEN))
    mlp_step(x, *mlp_weights)
    trace_id = ttnn.begin_trace_capture(device, cq_id=0)
    mlp_step(x, *mlp_weights)
    ttnn.end_trace_capture(device, trace_id, cq_id=0)

    ttnn.deallocate(x)

    with pytest.raises(RuntimeError, match="reads a tensor that was deallocated after the capture"):
        ttnn.execute_trace(device, trace_id, cq_id=0)
    ttnn.release_trace(device, trace_id)


def test_intermediates_freed_during_capture_replay(device, mlp_weights):
    x = on_device(device, random(1, 1, 32, HIDDEN))
    norm_weight, weight = mlp_weights
    eager = ttnn.to_torch(mlp_step(x, norm_weight, weight))
    trace_id = ttnn.begin_trace_capture(device, cq_id=0)
    normed = ttnn.rms_norm(x, epsilon=1e-5, weight=norm_weight)
    hidden = ttnn.linear(normed, weight)
    ttnn.deallocate(normed)
    out = ttnn.add(ttnn.silu(hidden), x)
    ttnn.end_trace_capture(device, trace_id, cq_id=0)

    ttnn.execute_trace(device, trace_id, cq_id=0)

    assert torch.equal(ttnn.to_torch(out), eager)
    ttnn.release_trace(device, trace_id)


def test_nested_capture_raises(device):
    trace_id = ttnn.begin_trace_capture(device, cq_id=0)
    try:
        with pytest.raises(RuntimeError, match=r"trace \d+ is still being captured"):
            ttnn.begin_trace_capture(device, cq_id=0)
        with pytest.raises(RuntimeError, match=r"cannot replay a trace during a capture"):
            ttnn.execute_trace(device, trace_id, cq_id=0)
    finally:
        ttnn.end_trace_capture(device, trace_id, cq_id=0)
    with pytest.raises(RuntimeError, match=r"trace \d+ is not being captured"):
        ttnn.end_trace_capture(device, trace_id, cq_id=0)


def test_cache_update_applied_by_replay_only(device):
    update = on_device(device, random(1, DECODE_BATCH, NUM_KV_HEADS, HEAD_DIM, seed=1))
    cache = on_device(device, torch.zeros(DECODE_BATCH, NUM_KV_HEADS, CACHE_LEN, HEAD_DIM))
    first_positions = [user % CACHE_LEN for user in range(DECODE_BATCH)]
    positions = on_device(device, torch.tensor(first_positions), ttnn.int32, ROW_MAJOR)
    # Compile the program on a scratch cache of the same shape, so `cache` stays zero.
    scratch = on_device(device, torch.zeros(DECODE_BATCH, NUM_KV_HEADS, CACHE_LEN, HEAD_DIM))
    ttnn.experimental.paged_update_cache(scratch, update, update_idxs_tensor=positions)

    trace_id = ttnn.begin_trace_capture(device, cq_id=0)
    ttnn.experimental.paged_update_cache(cache, update, update_idxs_tensor=positions)
    ttnn.end_trace_capture(device, trace_id, cq_id=0)
    assert torch.count_nonzero(ttnn.to_torch(cache)) == 0, "the capture wrote the cache"

    written = ttnn.to_torch(update)[0]
    ttnn.execute_trace(device, trace_id, cq_id=0)
    after_first = ttnn.to_torch(cache)
    users = torch.arange(DECODE_BATCH)
    assert torch.equal(after_first[users, :, first_positions], written)
    assert torch.count_nonzero(after_first) == torch.count_nonzero(written)

    second_positions = [(user + 40) % CACHE_LEN for user in range(DECODE_BATCH)]
    ttnn.copy_host_to_device_tensor(positions_host(second_positions), positions)
    ttnn.execute_trace(device, trace_id, cq_id=0)
    after_second = ttnn.to_torch(cache)
    assert torch.equal(after_second[users, :, second_positions], written)
    assert torch.equal(after_second[users, :, first_positions], written)


class DecodeLayer:
    """One attention block of the decode step: fused QKV, cache update, attention, output."""

    def __init__(self, device):
        self.qkv_weight = on_device(
            device, random(HIDDEN, QKV_WIDTH, seed=20, scale=0.05), ttnn.bfloat8_b
        )
        self.output_weight = on_device(
            device, random(NUM_HEADS * HEAD_DIM, HIDDEN, seed=21, scale=0.05), ttnn.bfloat8_b
        )
        cache_shape = (DECODE_BATCH, NUM_KV_HEADS, CACHE_LEN, HEAD_DIM)
        self.k_cache = on_device(device, torch.zeros(cache_shape), ttnn.bfloat8_b)
        self.v_cache = on_device(device, torch.zeros(cache_shape), ttnn.bfloat8_b)

    def step(self, x, positions):
        fused = ttnn.linear(x, self.qkv_weight)
        q, k, v = ttnn.experimental.nlp_create_qkv_heads_decode(
            fused, num_heads=NUM_HEADS, num_kv_heads=NUM_KV_HEADS
        )
        ttnn.experimental.paged_update_cache(self.k_cache, k, update_idxs_tensor=positions)
        ttnn.experimental.paged_update_cache(self.v_cache, v, update_idxs_tensor=positions)
        attention = ttnn.transformer.scaled_dot_product_attention_decode(
            q, self.k_cache, self.v_cache, cur_pos_tensor=positions
        )
        attention = ttnn.reshape(attention, [1, 1, DECODE_BATCH, NUM_HEADS * HEAD_DIM])
        return ttnn.add(ttnn.linear(attention, self.output_weight), x)


def decode_inputs(step):
    x = random(1, 1, DECODE_BATCH, HIDDEN, seed=100 + step)
    positions = [(3 * user + step) % CACHE_LEN for user in range(DECODE_BATCH)]
    return x, positions


def test_traced_decode_matches_eager(device):
    steps = 5
    eager_layer = DecodeLayer(device)
    traced_layer = DecodeLayer(device)

    eager_outputs = []
    for step in range(steps):
        x, positions = decode_inputs(step)
        x_device = on_device(device, x)
        positions_device = on_device(device, torch.tensor(positions), ttnn.int32, ROW_MAJOR)
        eager_outputs.append(ttnn.to_torch(eager_layer.step(x_device, positions_device)))

    # The eager steps compiled every program, so the traced layer is captured before it runs.
    x, positions = decode_inputs(0)
    x_device = on_device(device, x)
    positions_device = on_device(device, torch.tensor(positions), ttnn.int32, ROW_MAJOR)
    trace_id = ttnn.begin_trace_capture(device, cq_id=0)
    traced_output = traced_layer.step(x_device, positions_device)
    ttnn.end_trace_capture(device, trace_id, cq_id=0)

    for step in range(steps):
        x, positions = decode_inputs(step)
        ttnn.copy_host_to_device_tensor(host(x), x_device)
        ttnn.copy_host_to_device_tensor(positions_host(positions), positions_device)
        ttnn.execute_trace(device, trace_id, cq_id=0)
        replayed = ttnn.to_torch(traced_output)
        assert torch.equal(to_bits(replayed), to_bits(eager_outputs[step])), f"step {step}"

    for name in ("k_cache", "v_cache"):
        traced_cache = ttnn.to_torch(getattr(traced_layer, name))
        eager_cache = ttnn.to_torch(getattr(eager_layer, name))
        assert torch.count_nonzero(eager_cache) > 0
        assert torch.equal(to_bits(traced_cache), to_bits(eager_cache)), name

    ttnn.release_trace(device, trace_id)
