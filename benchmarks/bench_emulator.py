#!/usr/bin/env python
"""Time the emulated n150 against plain torch float32 on a SmolLM2-shaped decoder stack.

Both sides run the same computation on the same random weights: a prefill of 128 tokens for user
0, then 32 decode steps of the 32-row decode batch (every user at the same position). The stack
has SmolLM2-135M's layer shapes: hidden 576, 9 query and 3 KV heads of 64, MLP 1536. Its layers
call the ops that model.py calls, in the same order, but embedding and LM head are left out.
The emulated side runs ttnn ops eagerly (no trace) with bfloat8_b weights and bfloat16
activations and KV caches. The torch side uses the same weight values in float32. The ratio
emulated / torch is the emulator's cost over the math itself.

Usage: python benchmarks/bench_emulator.py [--layers 30] [--threads 1] [--profile]
"""

import argparse
import cProfile
import math
import pathlib
import pstats
import sys
import time

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

import bringup  # noqa: E402,F401 (sets ttnn's environment before ttnn is imported)
import torch  # noqa: E402
import ttnn  # noqa: E402

import ttnn_emulator  # noqa: E402

HIDDEN = 576
NUM_HEADS = 9
NUM_KV_HEADS = 3
HEAD_DIM = 64
MLP_DIM = 1536
DECODE_BATCH = 32
PREFILL_TOKENS = 128
DECODE_STEPS = 32
CACHE_LEN = 256
ROPE_THETA = 100000.0
EPSILON = 1e-5
QKV_WIDTH = HEAD_DIM * (NUM_HEADS + 2 * NUM_KV_HEADS)
SCALE = 1.0 / math.sqrt(HEAD_DIM)


# ---------------------------------------------------------------------------------------------
# Weights shared by both sides
# ---------------------------------------------------------------------------------------------


def random_layers(count, seed=0):
    """Return per-layer float32 weights in ttnn's [in, out] orientation."""
    generator = torch.Generator().manual_seed(seed)

    def matrix(rows, columns):
        return torch.randn(rows, columns, generator=generator) / math.sqrt(rows)

    def norm():
        return 1.0 + 0.1 * torch.randn(HIDDEN, generator=generator)

    return [
        {
            "input_norm": norm(),
            "qkv": matrix(HIDDEN, QKV_WIDTH),
            "output": matrix(NUM_HEADS * HEAD_DIM, HIDDEN),
            "post_norm": norm(),
            "gate": matrix(HIDDEN, MLP_DIM),
            "up": matrix(HIDDEN, MLP_DIM),
            "down": matrix(MLP_DIM, HIDDEN),
        }
        for _ in range(count)
    ]


def rope_tables(length):
    """Return HF rotate-half cos and sin, [1, 1, length, head_dim]."""
    exponents = torch.arange(0, HEAD_DIM, 2, dtype=torch.float32) / HEAD_DIM
    angles = torch.outer(torch.arange(length, dtype=torch.float32), 1.0 / ROPE_THETA**exponents)
    angles = torch.cat((angles, angles), dim=-1)
    return angles.cos()[None, None], angles.sin()[None, None]


# ---------------------------------------------------------------------------------------------
# Emulated n150 (ttnn ops, as model.py calls them)
# ---------------------------------------------------------------------------------------------


def upload(device, value, dtype=ttnn.bfloat16, layout=ttnn.TILE_LAYOUT):
    return ttnn.from_torch(
        value, dtype=dtype, layout=layout, device=device, memory_config=ttnn.DRAM_MEMORY_CONFIG
    )


class EmulatedLayer:
    def __init__(self, device, weights):
        self.input_norm = upload(device, weights["input_norm"].reshape(1, 1, 1, HIDDEN))
        self.post_norm = upload(device, weights["post_norm"].reshape(1, 1, 1, HIDDEN))
        for name in ("qkv", "output", "gate", "up", "down"):
            setattr(self, name, upload(device, weights[name][None, None], ttnn.bfloat8_b))
        cache = torch.zeros(DECODE_BATCH, NUM_KV_HEADS, CACHE_LEN, HEAD_DIM)
        self.k_cache = upload(device, cache)
        self.v_cache = upload(device, cache)

    def mlp(self, x):
        normed = ttnn.rms_norm(x, epsilon=EPSILON, weight=self.post_norm)
        gate = ttnn.silu(ttnn.linear(normed, self.gate))
        up = ttnn.linear(normed, self.up)
        return ttnn.add(x, ttnn.linear(ttnn.mul(gate, up), self.down))

    def prefill(self, x, cos, sin):
        normed = ttnn.rms_norm(x, epsilon=EPSILON, weight=self.input_norm)
        q, k, v = ttnn.experimental.nlp_create_qkv_heads(
            ttnn.linear(normed, self.qkv),
            num_heads=NUM_HEADS,
            num_kv_heads=NUM_KV_HEADS,
            transpose_k_heads=False,
        )
        q = ttnn.experimental.rotary_embedding(q, cos, sin)
        k = ttnn.experimental.rotary_embedding(k, cos, sin)
        ttnn.fill_cache(self.k_cache, k, batch_idx=0)
        ttnn.fill_cache(self.v_cache, v, batch_idx=0)
        attention = ttnn.transformer.scaled_dot_product_attention(
            q, k, v, is_causal=True, scale=SCALE
        )
        attention = ttnn.experimental.nlp_concat_heads(attention)
        return self.mlp(ttnn.add(x, ttnn.linear(attention, self.output)))

    def decode(self, x, positions, cos, sin):
        normed = ttnn.rms_norm(x, epsilon=EPSILON, weight=self.input_norm)
        q, k, v = ttnn.experimental.nlp_create_qkv_heads_decode(
            ttnn.linear(normed, self.qkv), num_heads=NUM_HEADS, num_kv_heads=NUM_KV_HEADS
        )
        # Users on dim -2, so row i of cos/sin rotates user i.
        q = ttnn.experimental.rotary_embedding(ttnn.transpose(q, 1, 2), cos, sin)
        k = ttnn.experimental.rotary_embedding(ttnn.transpose(k, 1, 2), cos, sin)
        q = ttnn.transpose(q, 1, 2)
        k = ttnn.transpose(k, 1, 2)
        ttnn.experimental.paged_update_cache(self.k_cache, k, update_idxs_tensor=positions)
        ttnn.experimental.paged_update_cache(self.v_cache, v, update_idxs_tensor=positions)
        attention = ttnn.transformer.scaled_dot_product_attention_decode(
            q, self.k_cache, self.v_cache, cur_pos_tensor=positions, scale=SCALE
        )
        attention = ttnn.experimental.nlp_concat_heads(ttnn.transpose(attention, 1, 2))
        return self.mlp(ttnn.add(x, ttnn.linear(attention, self.output)))


def host_tensor(value, dtype, layout=ttnn.ROW_MAJOR_LAYOUT):
    return ttnn.from_torch(value, dtype=dtype, layout=layout)


def run_emulated(device, layers, prefill_input, decode_inputs):
    """Run prefill and decode through ttnn; return (prefill output, last decode output)."""
    cos, sin = rope_tables(CACHE_LEN)
    cos_prefill = upload(device, cos[:, :, :PREFILL_TOKENS])
    sin_prefill = upload(device, sin[:, :, :PREFILL_TOKENS])
    cos_table = upload(device, cos, layout=ttnn.ROW_MAJOR_LAYOUT)
    sin_table = upload(device, sin, layout=ttnn.ROW_MAJOR_LAYOUT)

    x = upload(device, prefill_input)
    for layer in layers:
        x = layer.prefill(x, cos_prefill, sin_prefill)
    prefill_output = ttnn.to_torch(x)

    # Decode inputs live in device tensors that each step refreshes from the host, as model.py does.
    x_device = upload(device, decode_inputs[0][0])
    positions = upload(device, decode_inputs[0][1], ttnn.int32, ttnn.ROW_MAJOR_LAYOUT)
    rope_positions = upload(
        device,
        decode_inputs[0][1].reshape(1, 1, 1, DECODE_BATCH),
        ttnn.uint32,
        ttnn.ROW_MAJOR_LAYOUT,
    )
    for hidden, position in decode_inputs:
        ttnn.copy_host_to_device_tensor(
            host_tensor(hidden, ttnn.bfloat16, ttnn.TILE_LAYOUT), x_device
        )
        ttnn.copy_host_to_device_tensor(host_tensor(position, ttnn.int32), positions)
        ttnn.copy_host_to_device_tensor(
            host_tensor(position.reshape(1, 1, 1, DECODE_BATCH), ttnn.uint32), rope_positions
        )
        rows = [1, 1, DECODE_BATCH, HEAD_DIM]
        cos_rows = ttnn.embedding(rope_positions, cos_table, layout=ttnn.TILE_LAYOUT)
        sin_rows = ttnn.embedding(rope_positions, sin_table, layout=ttnn.TILE_LAYOUT)
        cos_rows = ttnn.reshape(cos_rows, rows)
        sin_rows = ttnn.reshape(sin_rows, rows)
        x = x_device
        for layer in layers:
            x = layer.decode(x, positions, cos_rows, sin_rows)
        decode_output = ttnn.to_torch(x)
    return prefill_output, decode_output


# ---------------------------------------------------------------------------------------------
# Plain torch float32
# ---------------------------------------------------------------------------------------------


def rms_norm(x, weight):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + EPSILON) * weight


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class TorchLayer:
    def __init__(self, weights):
        self.weights = weights
        self.k_cache = torch.zeros(DECODE_BATCH, NUM_KV_HEADS, CACHE_LEN, HEAD_DIM)
        self.v_cache = torch.zeros(DECODE_BATCH, NUM_KV_HEADS, CACHE_LEN, HEAD_DIM)

    def mlp(self, x):
        w = self.weights
        normed = rms_norm(x, w["post_norm"])
        hidden = torch.nn.functional.silu(normed @ w["gate"]) * (normed @ w["up"])
        return x + hidden @ w["down"]

    def split(self, x, rows):
        """Split fused QKV [rows, 960] into q [9, rows, 64] and k, v [3, rows, 64]."""
        widths = [NUM_HEADS * HEAD_DIM, NUM_KV_HEADS * HEAD_DIM, NUM_KV_HEADS * HEAD_DIM]
        q, k, v = (part.reshape(rows, -1, HEAD_DIM).transpose(0, 1) for part in x.split(widths, -1))
        return q, k, v

    def prefill(self, x, cos, sin):
        w = self.weights
        q, k, v = self.split(rms_norm(x, w["input_norm"]) @ w["qkv"], PREFILL_TOKENS)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        self.k_cache[0, :, :PREFILL_TOKENS] = k
        self.v_cache[0, :, :PREFILL_TOKENS] = v
        attention = torch.nn.functional.scaled_dot_product_attention(
            q[None], k[None], v[None], is_causal=True, scale=SCALE, enable_gqa=True
        )[0]
        attention = attention.transpose(0, 1).reshape(PREFILL_TOKENS, NUM_HEADS * HEAD_DIM)
        return self.mlp(x + attention @ w["output"])

    def decode(self, x, positions, cos, sin):
        w = self.weights
        q, k, v = self.split(rms_norm(x, w["input_norm"]) @ w["qkv"], DECODE_BATCH)
        q = q * cos + rotate_half(q) * sin  # [heads, users, 64] with cos [users, 64]
        k = k * cos + rotate_half(k) * sin
        users = torch.arange(DECODE_BATCH)
        self.k_cache[users, :, positions] = k.transpose(0, 1)
        self.v_cache[users, :, positions] = v.transpose(0, 1)
        length = int(positions.max()) + 1
        mask = torch.arange(length)[None, None, None, :] <= positions[:, None, None, None]
        attention = torch.nn.functional.scaled_dot_product_attention(
            q.transpose(0, 1)[:, :, None],  # [users, heads, 1, 64]
            self.k_cache[:, :, :length],
            self.v_cache[:, :, :length],
            attn_mask=mask,
            scale=SCALE,
            enable_gqa=True,
        )
        attention = attention.reshape(DECODE_BATCH, NUM_HEADS * HEAD_DIM)
        return self.mlp(x + attention @ w["output"])


def run_torch(layers, prefill_input, decode_inputs):
    cos, sin = rope_tables(CACHE_LEN)
    x = prefill_input[0, 0]
    for layer in layers:
        x = layer.prefill(x, cos[0, 0, :PREFILL_TOKENS], sin[0, 0, :PREFILL_TOKENS])
    prefill_output = x
    for hidden, position in decode_inputs:
        cos_rows = cos[0, 0, position.long()]
        sin_rows = sin[0, 0, position.long()]
        x = hidden[0, 0]
        for layer in layers:
            x = layer.decode(x, position.long(), cos_rows, sin_rows)
    return prefill_output, x


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------


def pcc(expected, actual):
    x = expected.double().flatten() - expected.double().mean()
    y = actual.double().flatten() - actual.double().mean()
    return float((x * y).sum() / torch.sqrt((x * x).sum() * (y * y).sum()))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=30, help="decoder layers (SmolLM2 has 30)")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads for both sides; 1 keeps the ratio independent of the core count and "
        "of other jobs competing for the cores",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="print the top functions of a cProfile of the emulated run",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    weights = random_layers(args.layers)
    generator = torch.Generator().manual_seed(1)
    prefill_input = torch.randn(1, 1, PREFILL_TOKENS, HIDDEN, generator=generator)
    decode_inputs = [
        (
            torch.randn(1, 1, DECODE_BATCH, HIDDEN, generator=generator),
            torch.full((DECODE_BATCH,), PREFILL_TOKENS + step, dtype=torch.int32),
        )
        for step in range(DECODE_STEPS)
    ]

    ttnn_emulator.install()
    device = ttnn.open_device(device_id=0, trace_region_size=0)
    try:
        emulated_layers = [EmulatedLayer(device, layer) for layer in weights]
        # Both sides use the weight values the device stores (bfloat8_b, read back as float32).
        for layer, emulated in zip(weights, emulated_layers):
            for name in ("qkv", "output", "gate", "up", "down"):
                layer[name] = ttnn.to_torch(getattr(emulated, name))[0, 0].float()
        torch_layers = [TorchLayer(layer) for layer in weights]

        profiler = cProfile.Profile() if args.profile else None
        start = time.perf_counter()
        start_cpu = time.process_time()
        if profiler:
            profiler.enable()
        emulated_prefill, emulated_decode = run_emulated(
            device, emulated_layers, prefill_input, decode_inputs
        )
        if profiler:
            profiler.disable()
        emulated_seconds = time.perf_counter() - start
        emulated_cpu = time.process_time() - start_cpu
    finally:
        ttnn.close_device(device)

    start = time.perf_counter()
    start_cpu = time.process_time()
    with torch.no_grad():
        torch_prefill, torch_decode = run_torch(torch_layers, prefill_input, decode_inputs)
    torch_seconds = time.perf_counter() - start
    torch_cpu = time.process_time() - start_cpu

    print(
        f"SmolLM2-shaped stack, {args.layers} layers: prefill {PREFILL_TOKENS} tokens + "
        f"{DECODE_STEPS} decode steps x {DECODE_BATCH} users; emulated n150 (ttnn ops, eager) "
        f"vs plain torch float32, torch threads: {torch.get_num_threads()}"
    )
    # CPU time is printed too: on a machine shared with other jobs it varies less than wall time.
    print(f"emulated n150: {emulated_seconds:7.2f} s wall, {emulated_cpu:7.2f} s CPU")
    print(f"torch float32: {torch_seconds:7.2f} s wall, {torch_cpu:7.2f} s CPU")
    print(
        f"ratio emulated / torch: {emulated_seconds / torch_seconds:.2f}x wall, "
        f"{emulated_cpu / torch_cpu:.2f}x CPU"
    )
    # The two sides compute the same function, up to bfloat16 activations on the emulated side.
    print(
        f"PCC emulated vs torch: prefill {pcc(torch_prefill, emulated_prefill[0, 0]):.5f}, "
        f"last decode step {pcc(torch_decode, emulated_decode[0, 0]):.5f}"
    )
    if profiler:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
