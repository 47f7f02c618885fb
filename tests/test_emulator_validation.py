"""Every input rule the emulated n150 checks raises its documented message on a bad input.

Each case is a function that builds valid tensors on the device, breaks one thing, and calls the
op. The table lists the exception type and a regular expression its message must match.
"""

import re

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
    TRACE_REGION_SIZE,
    install_module,
)
from ttnn_emulator.device import EmulatedDevice

# The fixture, assigned here so that pytest finds it in this module.
device = emulator_support.device

TILE = ttnn.TILE_LAYOUT
ROW_MAJOR = ttnn.ROW_MAJOR_LAYOUT
QKV_WIDTH = HEAD_DIM * (NUM_HEADS + 2 * NUM_KV_HEADS)
CACHE_LEN = 128


def tensor(device, *shape, dtype=ttnn.bfloat16, layout=TILE, memory_config=None):
    """Return a device tensor of random values with the given shape."""
    values = torch.randn(shape, generator=torch.Generator().manual_seed(len(shape)))
    return ttnn.from_torch(
        values, dtype=dtype, layout=layout, device=device, memory_config=memory_config
    )


def indices(device, values, dtype=ttnn.uint32):
    return ttnn.from_torch(torch.tensor(values), dtype=dtype, layout=ROW_MAJOR, device=device)


def host(*shape, dtype=ttnn.bfloat16, layout=TILE):
    return install_module.ORIGINALS["from_torch"](torch.zeros(shape), dtype, layout=layout)


def sharded(device, *shape):
    """Return a device tensor whose memory config is L1 height-sharded."""
    return ttnn.to_layout(
        tensor(device, *shape), TILE, memory_config=ttnn.L1_HEIGHT_SHARDED_MEMORY_CONFIG
    )


def deallocated(device, *shape):
    result = tensor(device, *shape)
    ttnn.deallocate(result)
    return result


def rope_caches(device, length=CACHE_LEN, head_dim=HEAD_DIM):
    return tensor(device, 1, 1, length, head_dim), tensor(device, 1, 1, length, head_dim)


def kv_cache(device, users=DECODE_BATCH, dtype=ttnn.bfloat16, memory_config=None):
    return tensor(
        device, users, NUM_KV_HEADS, CACHE_LEN, HEAD_DIM, dtype=dtype, memory_config=memory_config
    )


def decode_update(device, users=DECODE_BATCH, heads=NUM_KV_HEADS, head_dim=HEAD_DIM):
    return tensor(device, 1, users, heads, head_dim)


def decode_query(device, users=DECODE_BATCH, heads=NUM_HEADS, dtype=ttnn.bfloat16):
    return tensor(device, 1, users, heads, HEAD_DIM, dtype=dtype)


# Each case: (id, function of the device that makes the bad call, exception type, message regex).
CASES = [
    # Every device op: the tensor itself.
    (
        "host_tensor",
        lambda d: ttnn.silu(host(1, 1, 32, 32)),
        RuntimeError,
        r"input_tensor is a host tensor; move it to the device first",
    ),
    (
        "torch_tensor",
        lambda d: ttnn.silu(torch.zeros(1, 1, 32, 32)),
        TypeError,
        r"input_tensor must be a ttnn.Tensor, got Tensor",
    ),
    (
        "deallocated",
        lambda d: ttnn.silu(deallocated(d, 1, 1, 32, 32)),
        RuntimeError,
        r"input_tensor was deallocated",
    ),
    (
        "two_devices",
        lambda d: ttnn.add(tensor(d, 1, 1, 32, 32), tensor(EmulatedDevice(0, 0, 0), 1, 1, 32, 32)),
        RuntimeError,
        r"all input tensors must be on the same device",
    ),
    # Host <-> device.
    (
        "from_torch_bad_device",
        lambda d: ttnn.from_torch(torch.zeros(4), dtype=ttnn.bfloat16, device="cpu"),
        TypeError,
        r"ttnn.from_torch: device must be an opened device, got 'cpu'",
    ),
    (
        "to_device_bad_device",
        lambda d: ttnn.to_device(host(1, 32), "cpu"),
        TypeError,
        r"ttnn.to_device: device must be an opened device",
    ),
    (
        "to_device_sharded",
        lambda d: ttnn.to_device(host(1, 32), d, ttnn.L1_HEIGHT_SHARDED_MEMORY_CONFIG),
        NotImplementedError,
        r"ttnn.to_device: the emulated n150 does not model sharded_memory_config=",
    ),
    (
        "copy_host_not_host",
        lambda d: ttnn.copy_host_to_device_tensor(tensor(d, 1, 32), tensor(d, 1, 32)),
        TypeError,
        r"host_tensor must be a host ttnn.Tensor",
    ),
    (
        "copy_shape",
        lambda d: ttnn.copy_host_to_device_tensor(host(1, 64), tensor(d, 1, 32)),
        RuntimeError,
        r"must have the same shape, got \[1, 64\] and \[1, 32\]",
    ),
    (
        "copy_dtype",
        lambda d: ttnn.copy_host_to_device_tensor(
            host(1, 32, dtype=ttnn.float32), tensor(d, 1, 32)
        ),
        RuntimeError,
        r"must have the same dtype, got DataType.FLOAT32 and DataType.BFLOAT16",
    ),
    (
        "copy_layout",
        lambda d: ttnn.copy_host_to_device_tensor(host(1, 32, layout=ROW_MAJOR), tensor(d, 1, 32)),
        RuntimeError,
        r"must have the same layout, got Layout.ROW_MAJOR and Layout.TILE",
    ),
    (
        "to_layout_block_float_row_major",
        lambda d: ttnn.to_layout(tensor(d, 1, 32, dtype=ttnn.bfloat8_b), ROW_MAJOR),
        RuntimeError,
        r"DataType.BFLOAT8_B exists only in TILE layout",
    ),
    (
        "typecast_block_float_row_major",
        lambda d: ttnn.typecast(tensor(d, 1, 32, layout=ROW_MAJOR), ttnn.bfloat8_b),
        RuntimeError,
        r"casting to DataType.BFLOAT8_B needs a TILE tensor",
    ),
    # Data movement.
    (
        "reshape_volume",
        lambda d: ttnn.reshape(tensor(d, 1, 1, 32, 64), [1, 1, 32, 32]),
        RuntimeError,
        r"cannot reshape \[1, 1, 32, 64\] \(2048 elements\) to \[1, 1, 32, 32\]",
    ),
    (
        "slice_rank",
        lambda d: ttnn.slice(tensor(d, 1, 1, 32, 64), [0, 0], [1, 1]),
        RuntimeError,
        r"slice_start, slice_end and slice_step need 4 entries each",
    ),
    (
        "getitem_integer",
        lambda d: tensor(d, 1, 1, 32, 64)[0],
        NotImplementedError,
        r"supports tensor\[...\] with slices only",
    ),
    ("concat_empty", lambda d: ttnn.concat([], 0), RuntimeError, r"needs at least one tensor"),
    (
        "concat_dtype",
        lambda d: ttnn.concat([tensor(d, 1, 32), tensor(d, 1, 32, dtype=ttnn.float32)], 1),
        RuntimeError,
        r"all tensors must have the same layout and dtype",
    ),
    (
        "concat_rank",
        lambda d: ttnn.concat([tensor(d, 1, 32), tensor(d, 1, 1, 32)], -1),
        RuntimeError,
        r"all tensors must have the same rank",
    ),
    (
        "concat_shape",
        lambda d: ttnn.concat([tensor(d, 1, 32, 32), tensor(d, 1, 64, 32)], -1),
        RuntimeError,
        r"tensors\[1\] has shape \[1, 64, 32\], which differs from \[1, 32, 32\]",
    ),
    # Matmul and linear.
    (
        "linear_row_major",
        lambda d: ttnn.linear(tensor(d, 1, 1, 32, HIDDEN, layout=ROW_MAJOR), tensor(d, HIDDEN, 64)),
        RuntimeError,
        r"ttnn.linear: input_tensor_a must be in Layout.TILE, got Layout.ROW_MAJOR",
    ),
    (
        "linear_integer",
        lambda d: ttnn.linear(
            tensor(d, 1, 1, 32, HIDDEN, dtype=ttnn.uint32), tensor(d, HIDDEN, 64)
        ),
        RuntimeError,
        r"input_tensor_a must have dtype .*got DataType.UINT32",
    ),
    (
        "linear_inner_dim",
        lambda d: ttnn.linear(tensor(d, 1, 1, 32, HIDDEN), tensor(d, 512, 64)),
        RuntimeError,
        r"the inner dimensions do not match: input_tensor_a \[1, 1, 32, 576\] @ input_tensor_b "
        r"\[512, 64\]",
    ),
    (
        "matmul_inner_dim_transposed",
        lambda d: ttnn.matmul(tensor(d, 1, 1, 32, 64), tensor(d, 64, 96), transpose_b=True),
        RuntimeError,
        r"inner dimensions do not match",
    ),
    (
        "linear_batched_bias",
        lambda d: ttnn.linear(
            tensor(d, 1, 2, 32, 64), tensor(d, 1, 2, 64, 64), bias=tensor(d, 1, 1, 1, 64)
        ),
        RuntimeError,
        r"a bias needs an unbatched input_tensor_b, got \[1, 2, 64, 64\]",
    ),
    (
        "linear_activation",
        lambda d: ttnn.linear(tensor(d, 1, 1, 32, 64), tensor(d, 64, 64), activation="tanh"),
        NotImplementedError,
        r"activation 'tanh' is not emulated; supported: silu, relu, gelu",
    ),
    # Normalization and element-wise.
    (
        "rms_norm_weight_size",
        lambda d: ttnn.rms_norm(tensor(d, 1, 1, 32, HIDDEN), weight=tensor(d, 1, 1, 1, 512)),
        RuntimeError,
        r"weight must hold 576 values",
    ),
    (
        "rms_norm_row_major_input",
        lambda d: ttnn.rms_norm(tensor(d, 1, 1, 32, HIDDEN, layout=ROW_MAJOR)),
        RuntimeError,
        r"input_tensor must be in Layout.TILE",
    ),
    (
        "rms_norm_residual_shape",
        lambda d: ttnn.rms_norm(
            tensor(d, 1, 1, 32, HIDDEN), residual_input_tensor=tensor(d, 1, 1, 64, HIDDEN)
        ),
        RuntimeError,
        r"residual_input_tensor must match input_tensor's shape",
    ),
    (
        "add_two_scalars",
        lambda d: ttnn.add(1.0, 2.0),
        TypeError,
        r"at least one input must be a ttnn.Tensor",
    ),
    (
        "mul_broadcast",
        lambda d: ttnn.mul(tensor(d, 1, 1, 32, 64), tensor(d, 1, 1, 32, 96)),
        RuntimeError,
        r"shapes \[1, 1, 32, 64\] and \[1, 1, 32, 96\] cannot be broadcast",
    ),
    # Embedding.
    (
        "embedding_weight_tile",
        lambda d: ttnn.embedding(indices(d, [[1, 2]]), tensor(d, 64, HIDDEN)),
        RuntimeError,
        r"ttnn.embedding: weight must be in Layout.ROW_MAJOR, got Layout.TILE",
    ),
    (
        "embedding_weight_float32",
        lambda d: ttnn.embedding(
            indices(d, [[1, 2]]), tensor(d, 64, HIDDEN, dtype=ttnn.float32, layout=ROW_MAJOR)
        ),
        RuntimeError,
        r"weight must have dtype DataType.BFLOAT16, got DataType.FLOAT32",
    ),
    (
        "embedding_index_tile",
        lambda d: ttnn.embedding(
            tensor(d, 1, 32, dtype=ttnn.uint32), tensor(d, 64, HIDDEN, layout=ROW_MAJOR)
        ),
        RuntimeError,
        r"input_tensor must be in Layout.ROW_MAJOR",
    ),
    (
        "embedding_index_range",
        lambda d: ttnn.embedding(indices(d, [[3, 64]]), tensor(d, 64, HIDDEN, layout=ROW_MAJOR)),
        RuntimeError,
        r"index 64 is out of range for a table of 64 rows",
    ),
    (
        "embedding_index_shape",
        lambda d: ttnn.embedding(
            indices(d, [[[[1, 2]], [[3, 4]]]]), tensor(d, 64, HIDDEN, layout=ROW_MAJOR)
        ),
        RuntimeError,
        r"input_tensor must be \[batch, 1, 1, tokens\]",
    ),
    (
        "embedding_weight_shape",
        lambda d: ttnn.embedding(
            indices(d, [[1, 2]]), tensor(d, 2, 1, 64, HIDDEN, layout=ROW_MAJOR)
        ),
        RuntimeError,
        r"weight must be \[1, 1, vocab, dim\], got \[2, 1, 64, 576\]",
    ),
    (
        "embedding_typecast_row_major",
        lambda d: ttnn.embedding(
            indices(d, [[1, 2]]),
            tensor(d, 64, HIDDEN, layout=ROW_MAJOR),
            layout=ROW_MAJOR,
            dtype=ttnn.float32,
        ),
        RuntimeError,
        r"can only typecast output embeddings in TILE layout",
    ),
    # Attention heads.
    (
        "qkv_heads_rank",
        lambda d: ttnn.experimental.nlp_create_qkv_heads(
            tensor(d, 1, 32, QKV_WIDTH), num_heads=NUM_HEADS, num_kv_heads=NUM_KV_HEADS
        ),
        RuntimeError,
        r"input must be \[B, 1, S, width\], got \[1, 32, 960\]",
    ),
    (
        "qkv_heads_width",
        lambda d: ttnn.experimental.nlp_create_qkv_heads(
            tensor(d, 1, 1, 32, QKV_WIDTH + 32), num_heads=NUM_HEADS, num_kv_heads=NUM_KV_HEADS
        ),
        RuntimeError,
        r"input width 992 is not divisible by num_heads \+ 2 \* num_kv_heads = 15",
    ),
    (
        "qkv_heads_head_dim",
        lambda d: ttnn.experimental.nlp_create_qkv_heads(
            tensor(d, 1, 1, 32, 15 * 48), num_heads=NUM_HEADS, num_kv_heads=NUM_KV_HEADS
        ),
        RuntimeError,
        r"head_dim 48 must be a multiple of 32",
    ),
    (
        "qkv_decode_batch",
        lambda d: ttnn.experimental.nlp_create_qkv_heads_decode(
            tensor(d, 1, 1, 33, QKV_WIDTH), num_heads=NUM_HEADS, num_kv_heads=NUM_KV_HEADS
        ),
        RuntimeError,
        r"with B <= 32, got \[1, 1, 33, 960\]",
    ),
    (
        "qkv_decode_too_many_heads",
        lambda d: ttnn.experimental.nlp_create_qkv_heads_decode(
            tensor(d, 1, 1, 32, 64 * 35), num_heads=33, num_kv_heads=1
        ),
        RuntimeError,
        r"at most 32 query heads, got 33",
    ),
    (
        "qkv_decode_fewer_q_heads",
        lambda d: ttnn.experimental.nlp_create_qkv_heads_decode(
            tensor(d, 1, 1, 32, 64 * 7), num_heads=1, num_kv_heads=3
        ),
        RuntimeError,
        r"num_heads \(1\) must be >= num_kv_heads \(3\)",
    ),
    (
        "qkv_decode_width",
        lambda d: ttnn.experimental.nlp_create_qkv_heads_decode(
            tensor(d, 1, 1, 32, QKV_WIDTH + 64), num_heads=NUM_HEADS, num_kv_heads=NUM_KV_HEADS
        ),
        RuntimeError,
        r"input width 1024 must be head_dim \* 15",
    ),
    (
        "qkv_decode_offset_alone",
        lambda d: ttnn.experimental.nlp_create_qkv_heads_decode(
            tensor(d, 1, 1, 32, QKV_WIDTH),
            num_heads=NUM_HEADS,
            num_kv_heads=NUM_KV_HEADS,
            batch_offset=indices(d, [0]),
        ),
        RuntimeError,
        r"batch_offset and slice_size must be given together",
    ),
    (
        "concat_heads_rank",
        lambda d: ttnn.experimental.nlp_concat_heads(tensor(d, NUM_HEADS, 32, HEAD_DIM)),
        RuntimeError,
        r"input must be \[B, num_heads, S, head_dim\], got \[9, 32, 64\]",
    ),
    (
        "concat_heads_bfloat4",
        lambda d: ttnn.experimental.nlp_concat_heads(
            tensor(d, 1, NUM_HEADS, 32, HEAD_DIM, dtype=ttnn.bfloat4_b)
        ),
        RuntimeError,
        r"input_tensor must have dtype .*got DataType.BFLOAT4_B",
    ),
    # Rotary embedding (HF rotate-half format).
    (
        "rope_cos_shape",
        lambda d: ttnn.experimental.rotary_embedding(
            tensor(d, 1, NUM_HEADS, 32, HEAD_DIM),
            tensor(d, 1, 2, CACHE_LEN, HEAD_DIM),
            tensor(d, 1, 2, CACHE_LEN, HEAD_DIM),
        ),
        RuntimeError,
        r"cos_cache must be \[1, 1, seq_len, 64\], got \[1, 2, 128, 64\]",
    ),
    (
        "rope_sin_differs",
        lambda d: ttnn.experimental.rotary_embedding(
            tensor(d, 1, NUM_HEADS, 32, HEAD_DIM),
            tensor(d, 1, 1, CACHE_LEN, HEAD_DIM),
            tensor(d, 1, 1, 64, HEAD_DIM),
        ),
        RuntimeError,
        r"cos_cache and sin_cache must have the same shape",
    ),
    (
        "rope_head_dim",
        lambda d: ttnn.experimental.rotary_embedding(
            tensor(d, 1, NUM_HEADS, 32, 32), *rope_caches(d, head_dim=32)
        ),
        RuntimeError,
        r"padded last dim must be a multiple of 64, got 32",
    ),
    (
        "rope_cache_dtype",
        lambda d: ttnn.experimental.rotary_embedding(
            tensor(d, 1, NUM_HEADS, 32, HEAD_DIM),
            tensor(d, 1, 1, CACHE_LEN, HEAD_DIM, dtype=ttnn.float32),
            tensor(d, 1, 1, CACHE_LEN, HEAD_DIM),
        ),
        RuntimeError,
        r"cos_cache must have dtype DataType.BFLOAT16, got DataType.FLOAT32",
    ),
    (
        "rope_prefill_longer_than_cache",
        lambda d: ttnn.experimental.rotary_embedding(
            tensor(d, 1, NUM_HEADS, 160, HEAD_DIM), *rope_caches(d)
        ),
        RuntimeError,
        r"the input has 160 positions but the cos/sin caches cover 128",
    ),
    (
        "rope_token_index_outside",
        lambda d: ttnn.experimental.rotary_embedding(
            tensor(d, 1, 1, 32, HEAD_DIM), *rope_caches(d), CACHE_LEN
        ),
        RuntimeError,
        r"token_index 128 is outside the cos/sin caches \(length 128\)",
    ),
    (
        "rope_token_index_negative",
        lambda d: ttnn.experimental.rotary_embedding(
            tensor(d, 1, 1, 32, HEAD_DIM), *rope_caches(d), -1
        ),
        RuntimeError,
        r"token_index -1 is outside the cos/sin caches",
    ),
    (
        "rope_token_index_batched",
        lambda d: ttnn.experimental.rotary_embedding(
            tensor(d, 2, 1, 32, HEAD_DIM), *rope_caches(d), 3
        ),
        RuntimeError,
        r"with token_index the input must be \[1, 1, B, head_dim\]",
    ),
    # Rotary embedding (Meta interleaved format).
    (
        "rope_llama_trans_mat",
        lambda d: ttnn.experimental.rotary_embedding_llama(
            tensor(d, 1, NUM_HEADS, 32, HEAD_DIM), *rope_caches(d), tensor(d, 1, 1, 64, 64)
        ),
        RuntimeError,
        r"trans_mat must be \[1, 1, 32, 32\], got \[1, 1, 64, 64\]",
    ),
    (
        "rope_llama_head_dim",
        lambda d: ttnn.experimental.rotary_embedding_llama(
            tensor(d, 1, NUM_HEADS, 32, 48), *rope_caches(d, head_dim=48), tensor(d, 1, 1, 32, 32)
        ),
        RuntimeError,
        r"head_dim 48 must be a multiple of 32",
    ),
    (
        "rope_llama_cache_width",
        lambda d: ttnn.experimental.rotary_embedding_llama(
            tensor(d, 1, NUM_HEADS, 32, HEAD_DIM),
            *rope_caches(d, head_dim=32),
            tensor(d, 1, 1, 32, 32),
        ),
        RuntimeError,
        r"cos_cache and sin_cache must be \[..., seq_len, 64\]",
    ),
    (
        "rope_llama_prefill_short_cache",
        lambda d: ttnn.experimental.rotary_embedding_llama(
            tensor(d, 1, NUM_HEADS, 64, HEAD_DIM),
            *rope_caches(d, length=32),
            tensor(d, 1, 1, 32, 32),
        ),
        RuntimeError,
        r"cos/sin must be \[1, 1 or n_heads, >= 64, 64\], got \[1, 1, 32, 64\]",
    ),
    (
        "rope_llama_decode_batch",
        lambda d: ttnn.experimental.rotary_embedding_llama(
            tensor(d, 1, DECODE_BATCH, NUM_HEADS, HEAD_DIM),
            *rope_caches(d, length=1),
            tensor(d, 1, 1, 32, 32),
            is_decode_mode=True,
        ),
        RuntimeError,
        r"in decode mode cos/sin must be \[1, 32, 1, 64\], got \[1, 1, 1, 64\]",
    ),
    # fill_cache.
    (
        "fill_cache_batch_idx",
        lambda d: ttnn.fill_cache(
            kv_cache(d, users=4), tensor(d, 1, NUM_KV_HEADS, 32, HEAD_DIM), 4
        ),
        RuntimeError,
        r"batch_idx 4 is out of range for a cache of 4 users",
    ),
    (
        "fill_cache_input_batch",
        lambda d: ttnn.fill_cache(
            kv_cache(d, users=4), tensor(d, 2, NUM_KV_HEADS, 32, HEAD_DIM), 0
        ),
        RuntimeError,
        r"input_tensor batch must be 1, got \[2, 3, 32, 64\]",
    ),
    (
        "fill_cache_heads",
        lambda d: ttnn.fill_cache(kv_cache(d, users=4), tensor(d, 1, NUM_HEADS, 32, HEAD_DIM), 0),
        RuntimeError,
        r"input \[1, 9, 32, 64\] must match the cache \[4, 3, 128, 64\] in heads and head_dim",
    ),
    (
        "fill_cache_head_dim",
        lambda d: ttnn.fill_cache(kv_cache(d, users=4), tensor(d, 1, NUM_KV_HEADS, 32, 128), 0),
        RuntimeError,
        r"must match the cache \[4, 3, 128, 64\] in heads and head_dim",
    ),
    (
        "fill_cache_update_idx",
        lambda d: ttnn.fill_cache(
            kv_cache(d, users=4), tensor(d, 1, NUM_KV_HEADS, 32, HEAD_DIM), 0, update_idx=16
        ),
        RuntimeError,
        r"update_idx 16 must be a multiple of 32",
    ),
    (
        "fill_cache_overflow",
        lambda d: ttnn.fill_cache(
            kv_cache(d, users=4), tensor(d, 1, NUM_KV_HEADS, 64, HEAD_DIM), 0, update_idx=96
        ),
        RuntimeError,
        r"64 positions from update_idx 96 do not fit in a cache of 128 positions",
    ),
    (
        "fill_cache_dtype",
        lambda d: ttnn.fill_cache(
            kv_cache(d, users=4, dtype=ttnn.bfloat8_b), tensor(d, 1, NUM_KV_HEADS, 32, HEAD_DIM), 0
        ),
        RuntimeError,
        r"input_tensor dtype DataType.BFLOAT16 must equal the cache's DataType.BFLOAT8_B",
    ),
    (
        "fill_cache_rank",
        lambda d: ttnn.fill_cache(kv_cache(d, users=4), tensor(d, NUM_KV_HEADS, 32, HEAD_DIM), 0),
        RuntimeError,
        r"cache and input must be 4D",
    ),
    (
        "fill_cache_sharded",
        lambda d: ttnn.fill_cache(
            sharded(d, 4, NUM_KV_HEADS, CACHE_LEN, HEAD_DIM),
            tensor(d, 1, NUM_KV_HEADS, 32, HEAD_DIM),
            0,
        ),
        RuntimeError,
        r"cache_tensor must be interleaved",
    ),
    # paged_update_cache.
    (
        "paged_update_input_shape",
        lambda d: ttnn.experimental.paged_update_cache(
            kv_cache(d), decode_update(d, heads=1), update_idxs=[0] * DECODE_BATCH
        ),
        RuntimeError,
        r"input_tensor must be \[1, 32, 3, 64\] for a cache of \[32, 3, 128, 64\], got "
        r"\[1, 32, 1, 64\]",
    ),
    (
        "paged_update_input_users",
        lambda d: ttnn.experimental.paged_update_cache(
            kv_cache(d), decode_update(d, users=16), update_idxs=[0] * 16
        ),
        RuntimeError,
        r"input_tensor must be \[1, 32, 3, 64\]",
    ),
    (
        "paged_update_position_high",
        lambda d: ttnn.experimental.paged_update_cache(
            kv_cache(d), decode_update(d), update_idxs=[0] * 31 + [CACHE_LEN]
        ),
        RuntimeError,
        r"positions \[0, .*, 128\] must be in \[0, 128\)",
    ),
    (
        "paged_update_position_negative",
        lambda d: ttnn.experimental.paged_update_cache(
            kv_cache(d), decode_update(d), update_idxs=[-1] + [0] * 31
        ),
        RuntimeError,
        r"positions \[-1, .*\] must be in \[0, 128\)",
    ),
    (
        "paged_update_both_positions",
        lambda d: ttnn.experimental.paged_update_cache(
            kv_cache(d),
            decode_update(d),
            update_idxs=[0] * DECODE_BATCH,
            update_idxs_tensor=indices(d, [0] * DECODE_BATCH, ttnn.int32),
        ),
        RuntimeError,
        r"pass exactly one of update_idxs or update_idxs_tensor",
    ),
    (
        "paged_update_no_positions",
        lambda d: ttnn.experimental.paged_update_cache(kv_cache(d), decode_update(d)),
        RuntimeError,
        r"pass exactly one of update_idxs or update_idxs_tensor",
    ),
    (
        "paged_update_list_length",
        lambda d: ttnn.experimental.paged_update_cache(
            kv_cache(d), decode_update(d), update_idxs=[0] * 16
        ),
        RuntimeError,
        r"update_idxs needs 32 entries, got 16",
    ),
    (
        "paged_update_tensor_shape",
        lambda d: ttnn.experimental.paged_update_cache(
            kv_cache(d),
            decode_update(d),
            update_idxs_tensor=indices(d, [[0] * DECODE_BATCH], ttnn.int32),
        ),
        RuntimeError,
        r"update_idxs_tensor must be \[32\] \(one position per user\), got \[1, 32\]",
    ),
    (
        "paged_update_tensor_dtype",
        lambda d: ttnn.experimental.paged_update_cache(
            kv_cache(d), decode_update(d), update_idxs_tensor=indices(d, [0] * DECODE_BATCH)
        ),
        RuntimeError,
        r"update_idxs_tensor must have dtype DataType.INT32, got DataType.UINT32",
    ),
    (
        "paged_update_input_bfloat8",
        lambda d: ttnn.experimental.paged_update_cache(
            kv_cache(d, dtype=ttnn.bfloat8_b),
            tensor(d, 1, DECODE_BATCH, NUM_KV_HEADS, HEAD_DIM, dtype=ttnn.bfloat8_b),
            update_idxs=[0] * DECODE_BATCH,
        ),
        RuntimeError,
        r"input_tensor must have dtype .*got DataType.BFLOAT8_B",
    ),
    (
        "paged_update_batch_offset",
        lambda d: ttnn.experimental.paged_update_cache(
            kv_cache(d), decode_update(d), update_idxs=[0] * DECODE_BATCH, batch_offset=1
        ),
        RuntimeError,
        r"batch_offset must be 0, got 1",
    ),
    (
        "paged_update_sharded_cache",
        lambda d: ttnn.experimental.paged_update_cache(
            sharded(d, DECODE_BATCH, NUM_KV_HEADS, CACHE_LEN, HEAD_DIM),
            decode_update(d),
            update_idxs=[0] * DECODE_BATCH,
        ),
        RuntimeError,
        r"cache_tensor must be interleaved",
    ),
    # scaled_dot_product_attention (prefill).
    (
        "sdpa_kv_differ",
        lambda d: ttnn.transformer.scaled_dot_product_attention(
            tensor(d, 1, NUM_HEADS, 64, HEAD_DIM),
            tensor(d, 1, NUM_KV_HEADS, 64, HEAD_DIM),
            tensor(d, 1, NUM_KV_HEADS, 32, HEAD_DIM),
        ),
        RuntimeError,
        r"K \[1, 3, 64, 64\] and V \[1, 3, 32, 64\] must match",
    ),
    (
        "sdpa_head_dim_differs",
        lambda d: ttnn.transformer.scaled_dot_product_attention(
            tensor(d, 1, NUM_HEADS, 64, HEAD_DIM),
            tensor(d, 1, NUM_KV_HEADS, 64, 128),
            tensor(d, 1, NUM_KV_HEADS, 64, 128),
        ),
        RuntimeError,
        r"Q must be \[b, nqh, s, dh\] and K/V \[b, nkv, s, dh\]",
    ),
    (
        "sdpa_batch_differs",
        lambda d: ttnn.transformer.scaled_dot_product_attention(
            tensor(d, 2, NUM_HEADS, 64, HEAD_DIM),
            tensor(d, 1, NUM_KV_HEADS, 64, HEAD_DIM),
            tensor(d, 1, NUM_KV_HEADS, 64, HEAD_DIM),
        ),
        RuntimeError,
        r"Q must be \[b, nqh, s, dh\] and K/V \[b, nkv, s, dh\], got \[2, 9, 64, 64\]",
    ),
    (
        "sdpa_head_dim_tile",
        lambda d: ttnn.transformer.scaled_dot_product_attention(
            tensor(d, 1, NUM_HEADS, 64, 48),
            tensor(d, 1, NUM_KV_HEADS, 64, 48),
            tensor(d, 1, NUM_KV_HEADS, 64, 48),
        ),
        RuntimeError,
        r"head_dim 48 must be a multiple of 32",
    ),
    (
        "sdpa_head_count",
        lambda d: ttnn.transformer.scaled_dot_product_attention(
            tensor(d, 1, NUM_HEADS, 64, HEAD_DIM),
            tensor(d, 1, 4, 64, HEAD_DIM),
            tensor(d, 1, 4, 64, HEAD_DIM),
        ),
        RuntimeError,
        r"the number of Q heads \(9\) must be a multiple of the number of K/V heads \(4\)",
    ),
    (
        "sdpa_more_kv_heads",
        lambda d: ttnn.transformer.scaled_dot_product_attention(
            tensor(d, 1, 2, 64, HEAD_DIM),
            tensor(d, 1, 4, 64, HEAD_DIM),
            tensor(d, 1, 4, 64, HEAD_DIM),
        ),
        RuntimeError,
        r"Q heads \(2\) must be a multiple of the number of K/V heads \(4\)",
    ),
    (
        "sdpa_causal_lengths",
        lambda d: ttnn.transformer.scaled_dot_product_attention(
            tensor(d, 1, NUM_HEADS, 32, HEAD_DIM),
            tensor(d, 1, NUM_KV_HEADS, 64, HEAD_DIM),
            tensor(d, 1, NUM_KV_HEADS, 64, HEAD_DIM),
        ),
        RuntimeError,
        r"causal attention needs equal Q and K sequence lengths, got 32 and 64",
    ),
    (
        "sdpa_float32",
        lambda d: ttnn.transformer.scaled_dot_product_attention(
            tensor(d, 1, NUM_HEADS, 64, HEAD_DIM, dtype=ttnn.float32),
            tensor(d, 1, NUM_KV_HEADS, 64, HEAD_DIM),
            tensor(d, 1, NUM_KV_HEADS, 64, HEAD_DIM),
        ),
        RuntimeError,
        r"input_tensor_q must have dtype .*got DataType.FLOAT32",
    ),
    (
        "sdpa_sharded",
        lambda d: ttnn.transformer.scaled_dot_product_attention(
            sharded(d, 1, NUM_HEADS, 64, HEAD_DIM),
            tensor(d, 1, NUM_KV_HEADS, 64, HEAD_DIM),
            tensor(d, 1, NUM_KV_HEADS, 64, HEAD_DIM),
        ),
        RuntimeError,
        r"input_tensor_q must not be sharded",
    ),
    # scaled_dot_product_attention_decode.
    (
        "sdpa_decode_q_rank",
        lambda d: ttnn.transformer.scaled_dot_product_attention_decode(
            tensor(d, 2, DECODE_BATCH, NUM_HEADS, HEAD_DIM),
            kv_cache(d),
            kv_cache(d),
            cur_pos=[0] * DECODE_BATCH,
        ),
        RuntimeError,
        r"Q must be \[1, b, nh, dh\], got \[2, 32, 9, 64\]",
    ),
    (
        "sdpa_decode_kv_differ",
        lambda d: ttnn.transformer.scaled_dot_product_attention_decode(
            decode_query(d), kv_cache(d), kv_cache(d, users=16), cur_pos=[0] * DECODE_BATCH
        ),
        RuntimeError,
        r"K \[32, 3, 128, 64\] and V \[16, 3, 128, 64\] must match",
    ),
    (
        "sdpa_decode_kv_batch",
        lambda d: ttnn.transformer.scaled_dot_product_attention_decode(
            decode_query(d),
            kv_cache(d, users=16),
            kv_cache(d, users=16),
            cur_pos=[0] * DECODE_BATCH,
        ),
        RuntimeError,
        r"K/V must be \[32, nkv, s, 64\] for Q \[1, 32, 9, 64\], got \[16, 3, 128, 64\]",
    ),
    (
        "sdpa_decode_head_count",
        lambda d: ttnn.transformer.scaled_dot_product_attention_decode(
            decode_query(d, heads=8), kv_cache(d), kv_cache(d), cur_pos=[0] * DECODE_BATCH
        ),
        RuntimeError,
        r"Q heads \(8\) must be a multiple of K/V heads \(3\)",
    ),
    (
        "sdpa_decode_q_bfloat8",
        lambda d: ttnn.transformer.scaled_dot_product_attention_decode(
            decode_query(d, dtype=ttnn.bfloat8_b),
            kv_cache(d),
            kv_cache(d),
            cur_pos=[0] * DECODE_BATCH,
        ),
        RuntimeError,
        r"input_tensor_q must have dtype DataType.BFLOAT16, got DataType.BFLOAT8_B",
    ),
    (
        "sdpa_decode_cache_in_l1",
        lambda d: ttnn.transformer.scaled_dot_product_attention_decode(
            decode_query(d),
            kv_cache(d, memory_config=ttnn.L1_MEMORY_CONFIG),
            kv_cache(d),
            cur_pos=[0] * DECODE_BATCH,
        ),
        RuntimeError,
        r"input_tensor_k \(the KV cache\) must be in DRAM",
    ),
    (
        "sdpa_decode_position",
        lambda d: ttnn.transformer.scaled_dot_product_attention_decode(
            decode_query(d), kv_cache(d), kv_cache(d), cur_pos=[0] * 31 + [CACHE_LEN]
        ),
        RuntimeError,
        r"positions \[0, .*, 128\] must be < the cache length 128",
    ),
    (
        "sdpa_decode_no_positions",
        lambda d: ttnn.transformer.scaled_dot_product_attention_decode(
            decode_query(d), kv_cache(d), kv_cache(d)
        ),
        RuntimeError,
        r"pass exactly one of cur_pos or cur_pos_tensor",
    ),
    (
        "sdpa_decode_both_positions",
        lambda d: ttnn.transformer.scaled_dot_product_attention_decode(
            decode_query(d),
            kv_cache(d),
            kv_cache(d),
            cur_pos=[0] * DECODE_BATCH,
            cur_pos_tensor=indices(d, [0] * DECODE_BATCH, ttnn.int32),
        ),
        RuntimeError,
        r"pass exactly one of cur_pos or cur_pos_tensor",
    ),
    (
        "sdpa_decode_position_count",
        lambda d: ttnn.transformer.scaled_dot_product_attention_decode(
            decode_query(d), kv_cache(d), kv_cache(d), cur_pos=[0] * 8
        ),
        RuntimeError,
        r"cur_pos needs 32 entries, got 8",
    ),
    # Device.
    (
        "open_device_id",
        lambda d: ttnn.open_device(device_id=1),
        RuntimeError,
        r"device 1 not found; an n150 has device 0 only",
    ),
    (
        "close_device_type",
        lambda d: ttnn.close_device("device 0"),
        TypeError,
        r"ttnn.close_device: expected an opened device, got 'device 0'",
    ),
]

# Arguments the emulator accepts in the signature but does not model: each must raise
# NotImplementedError that names the argument.
NOT_MODELED = [
    (
        "linear",
        "optional_output_tensor",
        lambda d, value: ttnn.linear(
            tensor(d, 1, 1, 32, 64), tensor(d, 64, 64), optional_output_tensor=value
        ),
    ),
    (
        "linear",
        "output_tile",
        lambda d, value: ttnn.linear(
            tensor(d, 1, 1, 32, 64), tensor(d, 64, 64), output_tile=[32, 32]
        ),
    ),
    (
        "linear",
        "in0_column_offset",
        lambda d, value: ttnn.linear(
            tensor(d, 1, 1, 32, 64), tensor(d, 64, 64), in0_column_offset=32
        ),
    ),
    (
        "matmul",
        "global_cb",
        lambda d, value: ttnn.matmul(tensor(d, 1, 1, 32, 64), tensor(d, 64, 64), global_cb=value),
    ),
    (
        "typecast",
        "output_tensor",
        lambda d, value: ttnn.typecast(tensor(d, 1, 32), ttnn.float32, output_tensor=value),
    ),
    (
        "slice",
        "output_tensor",
        lambda d, value: ttnn.slice(tensor(d, 1, 32), [0, 0], [1, 32], output_tensor=value),
    ),
    ("silu", "output_tensor", lambda d, value: ttnn.silu(tensor(d, 1, 32), output_tensor=value)),
    (
        "add",
        "output_tensor",
        lambda d, value: ttnn.add(tensor(d, 1, 32), tensor(d, 1, 32), output_tensor=value),
    ),
    (
        "mul",
        "activations",
        lambda d, value: ttnn.mul(tensor(d, 1, 32), tensor(d, 1, 32), activations=["relu"]),
    ),
    (
        "concat",
        "groups",
        lambda d, value: ttnn.concat([tensor(d, 1, 32), tensor(d, 1, 32)], -1, groups=2),
    ),
    (
        "embedding",
        "padding_idx",
        lambda d, value: ttnn.embedding(
            indices(d, [[1, 2]]), tensor(d, 64, HIDDEN, layout=ROW_MAJOR), padding_idx=0
        ),
    ),
    (
        "embedding",
        "embeddings_type",
        lambda d, value: ttnn.embedding(
            indices(d, [[1, 2]]),
            tensor(d, 64, HIDDEN, layout=ROW_MAJOR),
            embeddings_type=ttnn.EmbeddingsType.PADDED,
        ),
    ),
    (
        "nlp_create_qkv_heads",
        "input_kv",
        lambda d, value: ttnn.experimental.nlp_create_qkv_heads(
            tensor(d, 1, 1, 32, 64 * NUM_HEADS), value, num_heads=NUM_HEADS
        ),
    ),
    (
        "nlp_create_qkv_heads",
        "kv_tied",
        lambda d, value: ttnn.experimental.nlp_create_qkv_heads(
            tensor(d, 1, 1, 32, QKV_WIDTH),
            num_heads=NUM_HEADS,
            num_kv_heads=NUM_KV_HEADS,
            kv_tied=True,
        ),
    ),
    (
        "nlp_create_qkv_heads_decode",
        "batch_offset",
        lambda d, value: ttnn.experimental.nlp_create_qkv_heads_decode(
            tensor(d, 1, 1, 32, QKV_WIDTH),
            num_heads=NUM_HEADS,
            num_kv_heads=NUM_KV_HEADS,
            batch_offset=indices(d, [0]),
            slice_size=16,
        ),
    ),
    (
        "paged_update_cache",
        "page_table",
        lambda d, value: ttnn.experimental.paged_update_cache(
            kv_cache(d),
            decode_update(d),
            update_idxs=[0] * DECODE_BATCH,
            page_table=indices(d, [[0]], ttnn.int32),
        ),
    ),
    (
        "paged_update_cache",
        "share_cache",
        lambda d, value: ttnn.experimental.paged_update_cache(
            kv_cache(d), decode_update(d), update_idxs=[0] * DECODE_BATCH, share_cache=True
        ),
    ),
    (
        "scaled_dot_product_attention",
        "attn_mask",
        lambda d, value: ttnn.transformer.scaled_dot_product_attention(
            tensor(d, 1, NUM_HEADS, 64, HEAD_DIM),
            tensor(d, 1, NUM_KV_HEADS, 64, HEAD_DIM),
            tensor(d, 1, NUM_KV_HEADS, 64, HEAD_DIM),
            is_causal=False,
            attn_mask=value,
        ),
    ),
    (
        "scaled_dot_product_attention",
        "sliding_window_size",
        lambda d, value: ttnn.transformer.scaled_dot_product_attention(
            tensor(d, 1, NUM_HEADS, 64, HEAD_DIM),
            tensor(d, 1, NUM_KV_HEADS, 64, HEAD_DIM),
            tensor(d, 1, NUM_KV_HEADS, 64, HEAD_DIM),
            sliding_window_size=16,
        ),
    ),
    (
        "scaled_dot_product_attention_decode",
        "is_causal",
        lambda d, value: ttnn.transformer.scaled_dot_product_attention_decode(
            decode_query(d), kv_cache(d), kv_cache(d), is_causal=False
        ),
    ),
    (
        "scaled_dot_product_attention_decode",
        "sliding_window_size",
        lambda d, value: ttnn.transformer.scaled_dot_product_attention_decode(
            decode_query(d),
            kv_cache(d),
            kv_cache(d),
            cur_pos=[0] * DECODE_BATCH,
            sliding_window_size=16,
        ),
    ),
]


@pytest.mark.parametrize(
    "make_call, error, message",
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_rule_raises(device, make_call, error, message):
    with pytest.raises(error, match=message):
        make_call(device)


@pytest.mark.parametrize(
    "argument, make_call",
    [case[1:] for case in NOT_MODELED],
    ids=[f"{op}-{argument}" for op, argument, _ in NOT_MODELED],
)
def test_not_modeled_argument_named(device, argument, make_call):
    placeholder = tensor(device, 1, 1, 32, 64)
    with pytest.raises(NotImplementedError, match=rf"does not model {re.escape(argument)}="):
        make_call(device, placeholder)


def test_closed_device_rejects_ops():
    opened = ttnn.open_device(device_id=0, trace_region_size=TRACE_REGION_SIZE)
    x = tensor(opened, 1, 1, 32, 32)
    ttnn.close_device(opened)

    with pytest.raises(RuntimeError, match=r"ttnn.silu: device 0 is closed"):
        ttnn.silu(x)
    with pytest.raises(RuntimeError, match=r"ttnn.from_device: device 0 is closed"):
        ttnn.from_device(x)
    with pytest.raises(RuntimeError, match=r"ttnn.from_torch: device 0 is closed"):
        ttnn.from_torch(torch.zeros(1, 32), dtype=ttnn.bfloat16, device=opened)
    with pytest.raises(RuntimeError, match=r"ttnn.synchronize_device: device 0 is closed"):
        ttnn.synchronize_device(opened)
    with pytest.raises(RuntimeError, match=r"ttnn.begin_trace_capture: device 0 is closed"):
        ttnn.begin_trace_capture(opened, cq_id=0)


def test_reopened_device_is_new():
    first = ttnn.open_device(device_id=0, trace_region_size=TRACE_REGION_SIZE)
    again = ttnn.open_device(device_id=0, trace_region_size=TRACE_REGION_SIZE)
    assert again is first, "an open device is returned again, as ttnn.open_device documents"
    ttnn.close_device(first)

    reopened = ttnn.open_device(device_id=0, trace_region_size=TRACE_REGION_SIZE)
    try:
        assert reopened is not first
        assert reopened.is_open
        assert reopened.program_cache == set()
    finally:
        ttnn.close_device(reopened)


def test_valid_calls_pass(device):
    """The builders above make valid tensors: the same calls with the broken part fixed pass."""
    ttnn.silu(tensor(device, 1, 1, 32, 32))
    ttnn.linear(tensor(device, 1, 1, 32, HIDDEN), tensor(device, HIDDEN, 64))
    ttnn.embedding(indices(device, [[3, 63]]), tensor(device, 64, HIDDEN, layout=ROW_MAJOR))
    ttnn.experimental.nlp_create_qkv_heads_decode(
        tensor(device, 1, 1, 32, QKV_WIDTH), num_heads=NUM_HEADS, num_kv_heads=NUM_KV_HEADS
    )
    ttnn.experimental.rotary_embedding(
        tensor(device, 1, 1, 32, HEAD_DIM), *rope_caches(device), CACHE_LEN - 1
    )
    ttnn.fill_cache(
        kv_cache(device, users=4), tensor(device, 1, NUM_KV_HEADS, 32, HEAD_DIM), 3, update_idx=96
    )
    ttnn.experimental.paged_update_cache(
        kv_cache(device), decode_update(device), update_idxs=[CACHE_LEN - 1] * DECODE_BATCH
    )
    ttnn.transformer.scaled_dot_product_attention(
        tensor(device, 1, NUM_HEADS, 64, HEAD_DIM),
        tensor(device, 1, NUM_KV_HEADS, 64, HEAD_DIM),
        tensor(device, 1, NUM_KV_HEADS, 64, HEAD_DIM),
    )
    ttnn.transformer.scaled_dot_product_attention_decode(
        decode_query(device),
        kv_cache(device),
        kv_cache(device),
        cur_pos=[CACHE_LEN - 1] * DECODE_BATCH,
    )
