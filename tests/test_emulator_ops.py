"""Emulated op results against ttnn 0.81.1's golden functions, or against the op's documented math.

Each test copies random inputs to the emulated device and reads back the values the device
stores, so rounding to bfloat16 or bfloat8_b is already applied. It feeds those same values in
float32 to the golden function (`ttnn.get_golden_function` of the real op) and compares. A bfloat16 output
must reach a Pearson correlation of 0.9999, a float32 output must be close to the golden one, and
pure data movement must be bit exact. Shapes follow SmolLM2-135M: hidden 576, 9 query heads,
3 KV heads, head_dim 64, sequences of 5 and 64 tokens, and a decode batch of 32 users.
"""

import math

import pytest
import torch
import ttnn

import emulator_support
from emulator_support import (
    DECODE_BATCH,
    HEAD_DIM,
    HIDDEN,
    MLP_DIM,
    NUM_HEADS,
    NUM_KV_HEADS,
    golden,
    host_round_trip,
    on_device,
    pcc,
    stored,
    to_bits,
)

# The fixture, assigned here so that pytest finds it in this module.
device = emulator_support.device

TILE = ttnn.TILE_LAYOUT
ROW_MAJOR = ttnn.ROW_MAJOR_LAYOUT
MIN_PCC = 0.9999
ROPE_BASE = 100000.0
CACHE_LEN = 256


def random(*shape, seed=0, scale=1.0):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed)) * scale


def assert_bfloat16_matches(actual_tensor, expected, shape):
    """Check a bfloat16 device output against a float32 reference."""
    actual = ttnn.to_torch(actual_tensor)
    assert actual_tensor.dtype == ttnn.bfloat16
    assert list(actual.shape) == list(shape)
    assert list(expected.shape) == list(shape)
    assert pcc(expected, actual) >= MIN_PCC


def assert_bits_equal(actual_tensor, expected):
    actual = ttnn.to_torch(actual_tensor)
    assert list(actual.shape) == list(expected.shape)
    assert torch.equal(to_bits(actual), to_bits(expected.to(actual.dtype)))


# ---------------------------------------------------------------------------------------------
# Matmul and linear
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seq", [5, 64])
@pytest.mark.parametrize("out_features", [HIDDEN, MLP_DIM])
def test_linear_bfloat8_weight(device, seq, out_features):
    x = on_device(device, random(1, 1, seq, HIDDEN))
    weight = on_device(device, random(HIDDEN, out_features, seed=1, scale=0.05), ttnn.bfloat8_b)

    output = ttnn.linear(x, weight)

    expected = golden("linear")(stored(x), stored(weight))
    assert_bfloat16_matches(output, expected, [1, 1, seq, out_features])


def test_linear_bias_and_silu(device):
    x = on_device(device, random(1, 1, 32, HIDDEN))
    weight = on_device(device, random(HIDDEN, MLP_DIM, seed=1, scale=0.05), ttnn.bfloat8_b)
    bias = on_device(device, random(1, 1, 1, MLP_DIM, seed=2))

    output = ttnn.linear(x, weight, bias=bias, activation="silu")

    # The linear golden looks up ttnn.silu's golden at call time, which install() replaced, so
    # the silu golden is applied separately.
    expected = golden("silu")(golden("linear")(stored(x), stored(weight), bias=stored(bias)))
    assert_bfloat16_matches(output, expected, [1, 1, 32, MLP_DIM])


def test_linear_float32_output(device):
    x = on_device(device, random(1, 1, 32, HIDDEN))
    weight = on_device(device, random(HIDDEN, 64, seed=1, scale=0.05), ttnn.bfloat8_b)

    output = ttnn.linear(x, weight, dtype=ttnn.float32)

    expected = golden("linear")(stored(x), stored(weight))
    actual = ttnn.to_torch(output)
    assert output.dtype == ttnn.float32
    assert actual.dtype == torch.float32
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-5)


def test_linear_transpose_b(device):
    x = on_device(device, random(1, 1, 32, HIDDEN))
    weight = on_device(device, random(MLP_DIM, HIDDEN, seed=1, scale=0.05))

    output = ttnn.linear(x, weight, transpose_b=True)

    expected = golden("linear")(stored(x), stored(weight), transpose_b=True)
    assert_bfloat16_matches(output, expected, [1, 1, 32, MLP_DIM])


def test_matmul_batched_attention_scores(device):
    q = on_device(device, random(1, NUM_HEADS, 64, HEAD_DIM))
    k_transposed = on_device(device, random(1, NUM_HEADS, HEAD_DIM, 64, seed=1))

    output = ttnn.matmul(q, k_transposed)

    expected = golden("matmul")(stored(q), stored(k_transposed))
    assert_bfloat16_matches(output, expected, [1, NUM_HEADS, 64, 64])


def test_matmul_float32_output(device):
    a = on_device(device, random(1, 1, 32, HIDDEN), ttnn.float32)
    b = on_device(device, random(HIDDEN, 96, seed=1), ttnn.float32)

    output = ttnn.matmul(a, b, dtype=ttnn.float32)

    expected = golden("matmul")(stored(a), stored(b))
    torch.testing.assert_close(ttnn.to_torch(output), expected, rtol=1e-5, atol=1e-4)


# ---------------------------------------------------------------------------------------------
# Normalization and element-wise
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("weight_layout", [TILE, ROW_MAJOR], ids=["tile", "row_major"])
@pytest.mark.parametrize("seq", [5, 32])
def test_rms_norm(device, seq, weight_layout):
    x = on_device(device, random(1, 1, seq, HIDDEN, scale=3.0))
    gamma = random(HIDDEN, seed=1) + 1.0
    if weight_layout == TILE:
        weight = on_device(device, gamma.reshape(1, 1, 1, HIDDEN))
    else:
        # ROW_MAJOR weights are [1, 1, hidden / 32, 32]: the rms_norm docstring requires a last
        # padded dim of TILE_WIDTH for them.
        weight = on_device(device, gamma.reshape(1, 1, HIDDEN // 32, 32), layout=ROW_MAJOR)

    output = ttnn.rms_norm(x, epsilon=1e-5, weight=weight)

    expected = golden("rms_norm")(stored(x), stored(weight).reshape(HIDDEN), epsilon=1e-5)
    assert_bfloat16_matches(output, expected, [1, 1, seq, HIDDEN])


def test_rms_norm_residual(device):
    x = on_device(device, random(1, 1, 32, HIDDEN))
    residual = on_device(device, random(1, 1, 32, HIDDEN, seed=1))
    weight = on_device(device, random(1, 1, 1, HIDDEN, seed=2))

    output = ttnn.rms_norm(x, epsilon=1e-5, weight=weight, residual_input_tensor=residual)

    expected = golden("rms_norm")(
        stored(x),
        stored(weight).reshape(HIDDEN),
        epsilon=1e-5,
        residual_input_tensor=stored(residual),
    )
    assert_bfloat16_matches(output, expected, [1, 1, 32, HIDDEN])


@pytest.mark.parametrize("name", ["add", "mul"])
@pytest.mark.parametrize(
    "shape_b", [(1, 1, 32, HIDDEN), (1, 1, 1, HIDDEN)], ids=["same_shape", "broadcast_row"]
)
def test_binary_op(device, name, shape_b):
    a = on_device(device, random(1, 1, 32, HIDDEN))
    b = on_device(device, random(*shape_b, seed=1))

    output = getattr(ttnn, name)(a, b)

    expected = golden(name)(stored(a), stored(b))
    assert_bfloat16_matches(output, expected, [1, 1, 32, HIDDEN])
    # One float32 operation rounded once: the emulator documents exactly this result.
    assert_bits_equal(output, expected.to(torch.bfloat16))


@pytest.mark.parametrize("name", ["add", "mul"])
def test_binary_op_scalar(device, name):
    a = on_device(device, random(1, 1, 32, HIDDEN))

    output = getattr(ttnn, name)(a, 0.125)

    expected = golden(name)(stored(a), 0.125)
    assert_bfloat16_matches(output, expected, [1, 1, 32, HIDDEN])


def test_binary_op_float32_output(device):
    a = on_device(device, random(1, 1, 32, HIDDEN), ttnn.float32)
    b = on_device(device, random(1, 1, 32, HIDDEN, seed=1), ttnn.float32)

    output = ttnn.add(a, b)

    expected = golden("add")(stored(a), stored(b))
    assert output.dtype == ttnn.float32
    torch.testing.assert_close(ttnn.to_torch(output), expected, rtol=0, atol=0)


def test_silu(device):
    x = on_device(device, random(1, 1, 32, MLP_DIM, scale=4.0))

    output = ttnn.silu(x)

    expected = golden("silu")(stored(x))
    assert_bfloat16_matches(output, expected, [1, 1, 32, MLP_DIM])


# ---------------------------------------------------------------------------------------------
# Embedding and data movement
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("output_layout", [TILE, ROW_MAJOR], ids=["tile", "row_major"])
def test_embedding(device, output_layout):
    vocab = 1000
    ids = torch.randint(0, vocab, (1, 5), generator=torch.Generator().manual_seed(3))
    ids[0, 0] = vocab - 1
    index = on_device(device, ids, ttnn.uint32, ROW_MAJOR)
    table = on_device(device, random(vocab, HIDDEN), layout=ROW_MAJOR)

    output = ttnn.embedding(index, table, layout=output_layout)

    expected = golden("embedding")(stored(index), stored(table))
    assert output.layout == output_layout
    # A [batch, tokens] index tensor gives [batch, 1, tokens, dim].
    assert list(output.shape) == [1, 1, 5, HIDDEN]
    assert pcc(expected, ttnn.to_torch(output)) >= MIN_PCC
    assert_bits_equal(output, expected.reshape(1, 1, 5, HIDDEN))


def test_embedding_four_dim_index(device):
    ids = torch.arange(32).reshape(1, 1, 1, 32) * 7
    index = on_device(device, ids, ttnn.uint32, ROW_MAJOR)
    table = on_device(device, random(256, HIDDEN), layout=ROW_MAJOR)

    output = ttnn.embedding(index, table, layout=TILE)

    expected = golden("embedding")(stored(index).reshape(1, 32), stored(table))
    # A [batch, 1, 1, tokens] index tensor gives [batch, tokens, dim].
    assert list(output.shape) == [1, 32, HIDDEN]
    assert_bits_equal(output, expected)


@pytest.mark.parametrize("dim", [-1, 2])
def test_concat(device, dim):
    first = random(1, NUM_HEADS, 32, HEAD_DIM)
    second = random(1, NUM_HEADS, 32, HEAD_DIM, seed=1)
    tensors = [on_device(device, first), on_device(device, second)]

    output = ttnn.concat(tensors, dim)

    expected = golden("concat")([stored(t) for t in tensors], dim)
    assert_bits_equal(output, expected)


@pytest.mark.parametrize("dims", [(-2, -1), (1, 2)], ids=["hw", "heads_seq"])
def test_transpose(device, dims):
    x = on_device(device, random(1, NUM_HEADS, 64, HEAD_DIM))

    output = ttnn.transpose(x, *dims)

    expected = golden("transpose")(stored(x), *dims)
    assert_bits_equal(output, expected)


def test_reshape_and_slice(device):
    x = on_device(device, random(1, 1, 64, HIDDEN))

    reshaped = ttnn.reshape(x, [1, 64, NUM_HEADS, HEAD_DIM])
    sliced = ttnn.slice(x, [0, 0, 5, 0], [1, 1, 37, HIDDEN], [1, 1, 2, 1])

    assert_bits_equal(reshaped, golden("reshape")(stored(x), (1, 64, NUM_HEADS, HEAD_DIM)))
    expected_slice = golden("slice")(stored(x), [0, 0, 5, 0], [1, 1, 37, HIDDEN], [1, 1, 2, 1])
    assert_bits_equal(sliced, expected_slice)


@pytest.mark.parametrize(
    "source, target",
    [
        (ttnn.bfloat16, ttnn.float32),
        (ttnn.float32, ttnn.bfloat16),
        (ttnn.bfloat16, ttnn.bfloat8_b),
        (ttnn.float32, ttnn.int32),
        (ttnn.float32, ttnn.uint32),
    ],
    ids=lambda dtype: str(dtype).split(".")[-1],
)
def test_typecast(device, source, target):
    values = random(1, 1, 32, 64, scale=100.0)
    x = on_device(device, values, source)

    output = ttnn.typecast(x, target)

    expected = golden("typecast")(stored(x), target)
    actual = ttnn.to_torch(output)
    assert output.dtype == target
    if target in (ttnn.int32, ttnn.uint32):
        assert torch.equal(actual.to(torch.int64), expected.to(torch.int64))
    else:
        assert torch.equal(to_bits(actual), to_bits(expected.to(actual.dtype)))


# ---------------------------------------------------------------------------------------------
# KV cache
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("update_idx", [0, 32])
def test_fill_cache(device, update_idx):
    cache = on_device(device, random(4, NUM_KV_HEADS, 128, HEAD_DIM, seed=1))
    before = stored(cache)
    prefill = on_device(device, random(1, NUM_KV_HEADS, 64, HEAD_DIM, seed=2))

    returned = ttnn.fill_cache(cache, prefill, 2, update_idx=update_idx)

    expected = golden("fill_cache")(before.clone(), stored(prefill), 2, update_idx=update_idx)
    assert returned is cache
    assert_bits_equal(cache, expected)


def test_fill_cache_bfloat8(device):
    cache = on_device(device, torch.zeros(2, NUM_KV_HEADS, 128, HEAD_DIM), ttnn.bfloat8_b)
    prefill = on_device(device, random(1, NUM_KV_HEADS, 32, HEAD_DIM, seed=2), ttnn.bfloat8_b)

    ttnn.fill_cache(cache, prefill, 1)

    expected = golden("fill_cache")(stored(cache).clone(), stored(prefill), 1)
    assert torch.equal(ttnn.to_torch(cache), expected)


@pytest.mark.parametrize("dtype", [ttnn.bfloat16, ttnn.float32], ids=["bf16", "fp32"])
def test_cache_update_leaves_copies_unchanged(device, dtype):
    # slice, reshape and to_layout return new tensors on a card; an in-place cache update must
    # not reach them through shared storage.
    cache = on_device(device, torch.zeros(2, NUM_KV_HEADS, 64, HEAD_DIM), dtype)
    copies = [
        ttnn.slice(cache, [0, 0, 0, 0], [1, NUM_KV_HEADS, 32, HEAD_DIM]),
        ttnn.reshape(cache, [2 * NUM_KV_HEADS, 64, HEAD_DIM]),
        ttnn.to_layout(cache, TILE),
    ]
    update = on_device(device, torch.ones(1, NUM_KV_HEADS, 32, HEAD_DIM), dtype)

    ttnn.fill_cache(cache, update, 0)
    ttnn.experimental.paged_update_cache(
        cache, on_device(device, torch.ones(1, 2, NUM_KV_HEADS, HEAD_DIM)), update_idxs=[40, 50]
    )

    assert torch.count_nonzero(ttnn.to_torch(cache)) == (32 + 2) * NUM_KV_HEADS * HEAD_DIM
    for copy in copies:
        assert torch.count_nonzero(ttnn.to_torch(copy)) == 0


def paged_update_reference(cache, update, positions):
    # Docstring of ttnn.experimental.paged_update_cache: "cache_tensor of shape
    # [B, 1, kv_len, head_dim] and input_tensor of shape [1, B, 1[32], head_dim] ... update_idxs
    # will specify for each batch element which token to update in the cache." With several KV
    # heads the cache is [B, num_kv_heads, kv_len, head_dim] and the input [1, B, num_kv_heads,
    # head_dim].
    expected = cache.clone()
    for user, position in enumerate(positions):
        expected[user, :, position, :] = update[0, user]
    return expected


@pytest.mark.parametrize("positions_on_device", [False, True], ids=["list", "tensor"])
def test_paged_update_cache(device, positions_on_device):
    positions = [(7 * user) % CACHE_LEN for user in range(DECODE_BATCH)]
    positions[-1] = CACHE_LEN - 1
    cache = on_device(device, random(DECODE_BATCH, NUM_KV_HEADS, CACHE_LEN, HEAD_DIM, seed=1))
    before = stored(cache)
    update = on_device(device, random(1, DECODE_BATCH, NUM_KV_HEADS, HEAD_DIM, seed=2))

    if positions_on_device:
        position_tensor = on_device(device, torch.tensor(positions), ttnn.int32, ROW_MAJOR)
        ttnn.experimental.paged_update_cache(cache, update, update_idxs_tensor=position_tensor)
    else:
        ttnn.experimental.paged_update_cache(cache, update, update_idxs=positions)

    assert_bits_equal(cache, paged_update_reference(before, stored(update), positions))


def test_paged_update_cache_bfloat8(device):
    # The op takes bfloat16 updates and repacks the cache into bfloat8_b itself.
    positions = list(range(DECODE_BATCH))
    cache = on_device(
        device, random(DECODE_BATCH, NUM_KV_HEADS, 64, HEAD_DIM, seed=1), ttnn.bfloat8_b
    )
    before = stored(cache)
    update = on_device(device, random(1, DECODE_BATCH, NUM_KV_HEADS, HEAD_DIM, seed=2))

    ttnn.experimental.paged_update_cache(cache, update, update_idxs=positions)

    reference = paged_update_reference(before, stored(update), positions)
    expected = host_round_trip(reference, ttnn.bfloat8_b, TILE)
    assert torch.equal(ttnn.to_torch(cache), expected)


# ---------------------------------------------------------------------------------------------
# Attention heads
# ---------------------------------------------------------------------------------------------

QKV_WIDTH = HEAD_DIM * (NUM_HEADS + 2 * NUM_KV_HEADS)


def split_qkv(fused):
    q_end = NUM_HEADS * HEAD_DIM
    k_end = q_end + NUM_KV_HEADS * HEAD_DIM
    return fused[..., :q_end], fused[..., q_end:k_end], fused[..., k_end:]


@pytest.mark.parametrize("seq", [5, 64])
@pytest.mark.parametrize("transpose_k", [True, False])
def test_nlp_create_qkv_heads(device, seq, transpose_k):
    # Docstring: "Shuffles [B, 1, S, 3 * head_dim * num_heads] fused qkv matrix into 3 Q, K, and V
    # heads with shapes [B, num_heads, S, head_dim], [B, num_kv_heads, head_dim, S], and
    # [B, num_kv_heads, S, head_dim]." With num_kv_heads < num_heads the width is
    # head_dim * (num_heads + 2 * num_kv_heads); transpose_k_heads=False keeps K as V's shape.
    fused = on_device(device, random(1, 1, seq, QKV_WIDTH))

    q, k, v = ttnn.experimental.nlp_create_qkv_heads(
        fused, num_heads=NUM_HEADS, num_kv_heads=NUM_KV_HEADS, transpose_k_heads=transpose_k
    )

    q_part, k_part, v_part = split_qkv(stored(fused))
    expected_q = q_part.reshape(1, seq, NUM_HEADS, HEAD_DIM).permute(0, 2, 1, 3)
    expected_k = k_part.reshape(1, seq, NUM_KV_HEADS, HEAD_DIM).permute(0, 2, 1, 3)
    expected_v = v_part.reshape(1, seq, NUM_KV_HEADS, HEAD_DIM).permute(0, 2, 1, 3)
    if transpose_k:
        expected_k = expected_k.transpose(-1, -2)
    assert_bits_equal(q, expected_q)
    assert_bits_equal(k, expected_k)
    assert_bits_equal(v, expected_v)


def test_nlp_create_qkv_heads_decode(device):
    # Docstring: "Shuffles [1, S=1, B, head_dim * (num_heads + 2*num_kv_heads)] fused qkv matrix
    # into Q, K, and V heads with shape [S, B, num_heads, head_dim] for Q and
    # [S, B, num_kv_heads, head_dim] for K and V".
    fused = on_device(device, random(1, 1, DECODE_BATCH, QKV_WIDTH))

    q, k, v = ttnn.experimental.nlp_create_qkv_heads_decode(
        fused, num_heads=NUM_HEADS, num_kv_heads=NUM_KV_HEADS
    )

    q_part, k_part, v_part = split_qkv(stored(fused))
    assert_bits_equal(q, q_part.reshape(1, DECODE_BATCH, NUM_HEADS, HEAD_DIM))
    assert_bits_equal(k, k_part.reshape(1, DECODE_BATCH, NUM_KV_HEADS, HEAD_DIM))
    assert_bits_equal(v, v_part.reshape(1, DECODE_BATCH, NUM_KV_HEADS, HEAD_DIM))


@pytest.mark.parametrize("seq", [5, 64])
def test_nlp_concat_heads(device, seq):
    # Docstring: "Shuffles [B, num_heads, S, head_dim] tensor into tensor with shape
    # [B, 1, S, num_heads * head_dim]."
    heads = on_device(device, random(1, NUM_HEADS, seq, HEAD_DIM))

    output = ttnn.experimental.nlp_concat_heads(heads)

    expected = stored(heads).permute(0, 2, 1, 3).reshape(1, 1, seq, NUM_HEADS * HEAD_DIM)
    assert_bits_equal(output, expected)


# ---------------------------------------------------------------------------------------------
# Rotary embedding
# ---------------------------------------------------------------------------------------------


def rope_angles(length):
    """Return [length, head_dim / 2] angles of positions 0..length-1, as Llama computes them."""
    inverse_frequency = 1.0 / (ROPE_BASE ** (torch.arange(0, HEAD_DIM, 2).float() / HEAD_DIM))
    return torch.outer(torch.arange(length).float(), inverse_frequency)


def hf_cos_sin(length):
    """Return HuggingFace's rotate-half cos and sin caches, [1, 1, length, head_dim]."""
    angles = torch.cat([rope_angles(length), rope_angles(length)], dim=-1)
    return angles.cos().reshape(1, 1, length, HEAD_DIM), angles.sin().reshape(
        1, 1, length, HEAD_DIM
    )


def meta_cos_sin(length):
    """Return Meta's interleaved cos and sin caches: each angle repeated for its (2i, 2i+1) pair."""
    angles = rope_angles(length).repeat_interleave(2, dim=-1)
    return angles.cos().reshape(1, 1, length, HEAD_DIM), angles.sin().reshape(
        1, 1, length, HEAD_DIM
    )


def transformation_matrix():
    """Return the 32 x 32 matrix M with (x @ M)[2i] = -x[2i+1] and (x @ M)[2i+1] = x[2i]."""
    matrix = torch.zeros(1, 1, 32, 32)
    even = torch.arange(0, 32, 2)
    matrix[..., even, even + 1] = 1.0
    matrix[..., even + 1, even] = -1.0
    return matrix


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def hf_rope(x, cos, sin):
    return x * cos + rotate_half(x) * sin


# Maps a HuggingFace head vector to Meta's layout: Meta index 2i is HF index i, and 2i+1 is
# HF index i + head_dim / 2, so HF's rotation pairs (i, i + head_dim / 2) become adjacent.
HF_TO_META = torch.stack(
    [torch.arange(HEAD_DIM // 2), torch.arange(HEAD_DIM // 2) + HEAD_DIM // 2], dim=-1
).reshape(-1)
META_TO_HF = torch.argsort(HF_TO_META)


def test_rotary_embedding_decode(device):
    # With token_index the input is [seq_len=1, 1, B, head_dim], per the op's docstring.
    cos, sin = hf_cos_sin(CACHE_LEN)
    cos_cache, sin_cache = on_device(device, cos), on_device(device, sin)
    x = on_device(device, random(1, 1, DECODE_BATCH, HEAD_DIM))

    output = ttnn.experimental.rotary_embedding(x, cos_cache, sin_cache, 37)

    expected = golden("rotary_embedding", "experimental")(
        stored(x), stored(cos_cache), stored(sin_cache), 37
    )
    assert_bfloat16_matches(output, expected, [1, 1, DECODE_BATCH, HEAD_DIM])


@pytest.mark.parametrize("seq", [5, 64])
def test_rotary_embedding_prefill(device, seq):
    # Without token_index, position p of the input uses row p of the caches. The golden function
    # takes one token index, so it runs once per position.
    cos, sin = hf_cos_sin(CACHE_LEN)
    cos_cache, sin_cache = on_device(device, cos), on_device(device, sin)
    x = on_device(device, random(1, NUM_HEADS, seq, HEAD_DIM))

    output = ttnn.experimental.rotary_embedding(x, cos_cache, sin_cache)

    rope = golden("rotary_embedding", "experimental")
    values = stored(x)
    expected = torch.cat(
        [
            rope(values[:, :, p : p + 1], stored(cos_cache), stored(sin_cache), p)
            for p in range(seq)
        ],
        dim=2,
    )
    assert_bfloat16_matches(output, expected, [1, NUM_HEADS, seq, HEAD_DIM])


@pytest.mark.parametrize("seq", [5, 64])
def test_rotary_embedding_llama_prefill(device, seq):
    # Docstring: "`cos_cache` and `sin_cache` must be of shape [1, n_heads, seq_len, head_dim] or
    # [1, 1, seq_len, head_dim]. If shape[1] is 1 then the sin/cos will be broadcasted across
    # heads." The op computes x * cos + (x @ trans_mat) * sin per 32-wide tile, which rotates the
    # adjacent pairs (x[2i], x[2i+1]) of Meta's layout.
    cos, sin = meta_cos_sin(seq)
    x_values = random(1, NUM_HEADS, seq, HEAD_DIM)
    x = on_device(device, x_values)
    cos_cache, sin_cache = on_device(device, cos), on_device(device, sin)
    trans_mat = on_device(device, transformation_matrix())

    output = ttnn.experimental.rotary_embedding_llama(x, cos_cache, sin_cache, trans_mat)

    values = stored(x)
    rotated = torch.stack([-values[..., 1::2], values[..., 0::2]], dim=-1).reshape(values.shape)
    expected = values * stored(cos_cache) + rotated * stored(sin_cache)
    assert_bfloat16_matches(output, expected, [1, NUM_HEADS, seq, HEAD_DIM])


def test_rotary_embedding_llama_decode(device):
    # In decode mode the input is [1, B, n_heads, head_dim] and cos/sin are [1, B, 1, head_dim],
    # one position per user.
    positions = torch.arange(DECODE_BATCH) * 5
    cos_table, sin_table = meta_cos_sin(CACHE_LEN)
    cos = cos_table[0, 0, positions].reshape(1, DECODE_BATCH, 1, HEAD_DIM)
    sin = sin_table[0, 0, positions].reshape(1, DECODE_BATCH, 1, HEAD_DIM)
    x = on_device(device, random(1, DECODE_BATCH, NUM_HEADS, HEAD_DIM))
    cos_cache, sin_cache = on_device(device, cos), on_device(device, sin)
    trans_mat = on_device(device, transformation_matrix())

    output = ttnn.experimental.rotary_embedding_llama(
        x, cos_cache, sin_cache, trans_mat, is_decode_mode=True
    )

    values = stored(x)
    rotated = torch.stack([-values[..., 1::2], values[..., 0::2]], dim=-1).reshape(values.shape)
    expected = values * stored(cos_cache) + rotated * stored(sin_cache)
    assert_bfloat16_matches(output, expected, [1, DECODE_BATCH, NUM_HEADS, HEAD_DIM])


def test_rope_formats_differ(device):
    """rotary_embedding_llama matches HF's rotate-half RoPE only on head dims permuted to Meta's layout."""
    seq = 64
    x_hf = random(1, NUM_HEADS, seq, HEAD_DIM).to(torch.bfloat16).float()
    hf_cos, hf_sin = hf_cos_sin(seq)
    meta_cos, meta_sin = meta_cos_sin(seq)
    expected_hf = hf_rope(x_hf, hf_cos, hf_sin)
    trans_mat = on_device(device, transformation_matrix())
    meta_caches = on_device(device, meta_cos), on_device(device, meta_sin)

    # HF weights, no permutation: the pairs (x[2i], x[2i+1]) are not HF's rotation pairs.
    unpermuted = ttnn.experimental.rotary_embedding_llama(
        on_device(device, x_hf), *meta_caches, trans_mat
    )
    # Head dims permuted to Meta's layout, result permuted back.
    permuted = ttnn.experimental.rotary_embedding_llama(
        on_device(device, x_hf[..., HF_TO_META]), *meta_caches, trans_mat
    )
    # The HF-format op on the unpermuted input.
    hf_format = ttnn.experimental.rotary_embedding(
        on_device(device, x_hf), on_device(device, hf_cos), on_device(device, hf_sin)
    )

    assert pcc(expected_hf, ttnn.to_torch(permuted)[..., META_TO_HF]) >= MIN_PCC
    assert pcc(expected_hf, ttnn.to_torch(hf_format)) >= MIN_PCC
    assert pcc(expected_hf, ttnn.to_torch(unpermuted)) < 0.99
    # Position 0 has angle 0, where both formats return the input, so the difference is in the
    # rotation and not in the copy.
    assert torch.equal(ttnn.to_torch(unpermuted)[:, :, 0], x_hf[:, :, 0].to(torch.bfloat16))


# ---------------------------------------------------------------------------------------------
# Fused attention
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seq", [5, 64])
@pytest.mark.parametrize("is_causal", [True, False], ids=["causal", "full"])
def test_scaled_dot_product_attention(device, seq, is_causal):
    q = on_device(device, random(1, NUM_HEADS, seq, HEAD_DIM))
    k = on_device(device, random(1, NUM_KV_HEADS, seq, HEAD_DIM, seed=1))
    v = on_device(device, random(1, NUM_KV_HEADS, seq, HEAD_DIM, seed=2))

    output = ttnn.transformer.scaled_dot_product_attention(q, k, v, is_causal=is_causal)

    expected = golden("scaled_dot_product_attention", "transformer")(
        stored(q), stored(k), stored(v), is_causal=is_causal
    )
    assert_bfloat16_matches(output, expected, [1, NUM_HEADS, seq, HEAD_DIM])


def test_scaled_dot_product_attention_scale_and_concat(device):
    seq = 64
    q = on_device(device, random(1, NUM_HEADS, seq, HEAD_DIM))
    k = on_device(device, random(1, NUM_KV_HEADS, seq, HEAD_DIM, seed=1))
    v = on_device(device, random(1, NUM_KV_HEADS, seq, HEAD_DIM, seed=2))

    output = ttnn.transformer.scaled_dot_product_attention(
        q, k, v, scale=0.3, output_concat_heads=True
    )

    expected = golden("scaled_dot_product_attention", "transformer")(
        stored(q), stored(k), stored(v), scale=0.3
    )
    # Docstring: output_concat_heads writes "[b x 1 x s x nqh*dh]".
    concatenated = expected.permute(0, 2, 1, 3).reshape(1, 1, seq, NUM_HEADS * HEAD_DIM)
    assert_bfloat16_matches(output, concatenated, [1, 1, seq, NUM_HEADS * HEAD_DIM])


@pytest.mark.parametrize("positions_on_device", [False, True], ids=["cur_pos", "cur_pos_tensor"])
@pytest.mark.parametrize("cache_dtype", [ttnn.bfloat16, ttnn.bfloat8_b], ids=["bf16", "bf8"])
def test_scaled_dot_product_attention_decode(device, positions_on_device, cache_dtype):
    positions = [(11 * user) % CACHE_LEN for user in range(DECODE_BATCH)]
    positions[3] = -1  # "If a position is given as (-1), compute ... is skipped."
    positions[4] = CACHE_LEN - 1
    q = on_device(device, random(1, DECODE_BATCH, NUM_HEADS, HEAD_DIM))
    k = on_device(
        device, random(DECODE_BATCH, NUM_KV_HEADS, CACHE_LEN, HEAD_DIM, seed=1), cache_dtype
    )
    v = on_device(
        device, random(DECODE_BATCH, NUM_KV_HEADS, CACHE_LEN, HEAD_DIM, seed=2), cache_dtype
    )

    if positions_on_device:
        position_tensor = on_device(device, torch.tensor(positions), ttnn.int32, ROW_MAJOR)
        output = ttnn.transformer.scaled_dot_product_attention_decode(
            q, k, v, cur_pos_tensor=position_tensor
        )
    else:
        output = ttnn.transformer.scaled_dot_product_attention_decode(q, k, v, cur_pos=positions)

    expected = golden("scaled_dot_product_attention_decode", "transformer")(
        stored(q), stored(k), stored(v), cur_pos=positions
    )
    assert_bfloat16_matches(output, expected, [1, DECODE_BATCH, NUM_HEADS, HEAD_DIM])
    assert torch.count_nonzero(ttnn.to_torch(output)[0, 3]) == 0


def test_scaled_dot_product_attention_decode_scale(device):
    positions = list(range(DECODE_BATCH))
    q = on_device(device, random(1, DECODE_BATCH, NUM_HEADS, HEAD_DIM))
    k = on_device(device, random(DECODE_BATCH, NUM_KV_HEADS, 64, HEAD_DIM, seed=1))
    v = on_device(device, random(DECODE_BATCH, NUM_KV_HEADS, 64, HEAD_DIM, seed=2))
    scale = 1.0 / math.sqrt(HEAD_DIM) * 2.0

    output = ttnn.transformer.scaled_dot_product_attention_decode(
        q, k, v, cur_pos=positions, scale=scale
    )

    expected = golden("scaled_dot_product_attention_decode", "transformer")(
        stored(q), stored(k), stored(v), cur_pos=positions, scale=scale
    )
    assert_bfloat16_matches(output, expected, [1, DECODE_BATCH, NUM_HEADS, HEAD_DIM])


@pytest.mark.parametrize(
    "dtype, torch_dtype", [(ttnn.int32, torch.int32), (ttnn.uint32, torch.int32)]
)
def test_integer_add_and_mul_are_exact(device, dtype, torch_dtype):
    # 2**24 + 1 is the first integer that float32 cannot hold.
    values = torch.tensor([[2**24 + 1, 2**30 + 1, 7]], dtype=torch_dtype)
    a = ttnn.from_torch(values, dtype=dtype, device=device)
    b = ttnn.from_torch(torch.ones_like(values), dtype=dtype, device=device)
    assert torch.equal(ttnn.to_torch(ttnn.add(a, b)).to(torch.int64), values.to(torch.int64) + 1)
    assert torch.equal(ttnn.to_torch(ttnn.mul(a, 1)).to(torch.int64), values.to(torch.int64))
