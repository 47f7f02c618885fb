"""The SmolLM2 ttnn model against HF, on a 2-layer random model with SmolLM2's head layout.

The tiny model is built by transformers from a config (no download): hidden 576, 9 query heads,
3 KV heads, head_dim 64, MLP 1536, as SmolLM2-135M, but 2 layers and a 512-token vocabulary.
"""

import types

import bringup  # noqa: F401 (sets ttnn's environment before ttnn is imported)
import pytest
import torch
import ttnn
from transformers import LlamaConfig, LlamaForCausalLM

from bringup.compare import ActivationRecorder, pcc
from bringup.device import close_device, open_device
from bringup.notebook import import_model

# Bars for the tiny random model, which has bfloat8_b weights and bfloat16 activations.
LAYER_PCC = 0.999
LOGITS_PCC = 0.999

smollm2 = import_model()


@pytest.fixture(scope="module")
def device():
    device = open_device()
    yield device
    close_device(device)


@pytest.fixture(scope="module")
def hf_model():
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=512,
        hidden_size=576,
        intermediate_size=1536,
        num_hidden_layers=2,
        num_attention_heads=9,
        num_key_value_heads=3,
        head_dim=64,
        rms_norm_eps=1e-5,
        rope_theta=100000.0,
        tie_word_embeddings=True,
        max_position_embeddings=2048,
    )
    return LlamaForCausalLM(config).eval()


@pytest.fixture(scope="module")
def tt_model(hf_model, device):
    return smollm2.build_model(hf_model, device, 1024)


def prompt_ids(length, seed=1):
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 512, (1, length), generator=generator)


def test_prefill_layers_match_hf(hf_model, tt_model):
    ids = prompt_ids(45)
    names = [f"model.layers.{i}" for i in range(2)]
    with torch.no_grad(), ActivationRecorder(hf_model, names) as recorder:
        hf_model(ids)

    padded = smollm2.pad_to_tile(45)
    tokens = torch.nn.functional.pad(ids, (0, padded - 45)).reshape(1, 1, 1, padded)
    tokens = smollm2.to_device(
        tokens.to(torch.int32), tt_model.device_handle, ttnn.uint32, ttnn.ROW_MAJOR_LAYOUT
    )
    x = ttnn.embedding(tokens, tt_model.embed_tokens, layout=ttnn.TILE_LAYOUT)
    x = ttnn.reshape(x, [1, 1, padded, 576])
    for name, layer in zip(names, tt_model.layers):
        x = layer.prefill(x, tt_model.rope)
        actual = ttnn.to_torch(x).float()[0, 0, :45]
        assert pcc(recorder.outputs[name][0], actual) >= LAYER_PCC, name


def test_prefill_logits_match_hf(hf_model, tt_model):
    ids = prompt_ids(45)
    with torch.no_grad():
        expected = hf_model(ids).logits
        actual = tt_model(ids).logits
    assert actual.shape == expected.shape
    assert pcc(expected, actual) >= LOGITS_PCC


@pytest.mark.parametrize("length", [1, 31, 32, 33])
def test_prefill_lengths_around_a_tile(hf_model, tt_model, length):
    ids = prompt_ids(length, seed=length)
    with torch.no_grad():
        expected = hf_model(ids).logits
        actual = tt_model(ids).logits
    assert actual.shape == (1, length, 512)
    assert pcc(expected, actual) >= LOGITS_PCC


def test_prefill_of_1024_tokens(hf_model, tt_model):
    ids = prompt_ids(1024, seed=3)
    with torch.no_grad():
        expected = hf_model(ids).logits[:, -64:]
        actual = tt_model(ids).logits[:, -64:]
    assert pcc(expected, actual) >= LOGITS_PCC


def decode_logits(model, ids, prompt_length):
    """Prefill ids[:prompt_length], then feed the rest one token at a time; return decode logits."""
    output = model(ids[:, :prompt_length])
    cache = output.cache
    steps = []
    for position in range(prompt_length, ids.shape[1]):
        output = model(ids[:, position : position + 1], past_key_values=cache)
        cache = output.cache
        steps.append(output.logits[0, -1])
    return torch.stack(steps)


def test_decode_matches_hf(hf_model, tt_model):
    ids = prompt_ids(30)
    with torch.no_grad():
        expected = hf_model(ids).logits[0, 20:]
        tt_model.use_trace = False
        actual = decode_logits(tt_model, ids, 20)
    for step in range(10):
        assert pcc(expected[step], actual[step]) >= LOGITS_PCC, f"decode step {step}"


def test_traced_decode_equals_eager_for_40_positions(tt_model):
    ids = prompt_ids(50, seed=5)
    with torch.no_grad():
        tt_model.use_trace = False
        eager = decode_logits(tt_model, ids, 10)
        tt_model.use_trace = True
        traced_before = tt_model.traced_decode_steps
        traced = decode_logits(tt_model, ids, 10)
    assert eager.shape == (40, 512)
    assert tt_model.traced_decode_steps - traced_before == 40
    assert torch.equal(eager, traced)


def test_generate_matches_stepwise_forward(tt_model):
    ids = prompt_ids(12, seed=7)
    tt_model.use_trace = True
    with torch.no_grad():
        generated = tt_model.generate(ids, max_new_tokens=32, do_sample=False, eos_token_id=None)
        tokens = ids
        output = tt_model(tokens)
        for _ in range(32):
            next_token = output.logits[:, -1].argmax(-1, keepdim=True)
            tokens = torch.cat([tokens, next_token], dim=1)
            output = tt_model(next_token, past_key_values=output.cache)
    assert generated.shape == (1, 44)
    assert torch.equal(generated, tokens)


def test_batch_of_two_is_rejected(tt_model):
    with pytest.raises(ValueError, match="batch 2 is not supported"):
        tt_model(torch.zeros(2, 4, dtype=torch.long))


def test_sequence_longer_than_max_seq_len_is_rejected(tt_model):
    with pytest.raises(ValueError, match="exceeds max_seq_len=1024"):
        tt_model(torch.zeros(1, 1025, dtype=torch.long))


def test_padded_attention_mask_is_rejected(tt_model):
    mask = torch.tensor([[0, 1, 1, 1]])
    with pytest.raises(ValueError, match="padding in attention_mask is not supported"):
        tt_model(torch.zeros(1, 4, dtype=torch.long), attention_mask=mask)


def test_rejected_prefill_keeps_the_sequence(tt_model):
    ids = prompt_ids(8, seed=11)
    tt_model.use_trace = False
    output = tt_model(ids)
    with pytest.raises(ValueError, match="exceeds max_seq_len"):
        tt_model(torch.zeros(1, 1025, dtype=torch.long))
    assert output.cache.get_seq_length() == 8


def test_config_from_transformers_4_attributes():
    config_4x = types.SimpleNamespace(
        vocab_size=49152,
        hidden_size=576,
        intermediate_size=1536,
        num_hidden_layers=30,
        num_attention_heads=9,
        num_key_value_heads=3,
        rms_norm_eps=1e-5,
        rope_theta=100000.0,
    )
    config = smollm2.ModelConfig.from_hf(config_4x)
    assert config.rope_theta == 100000.0
    assert config.head_dim == 64


def test_config_from_transformers_5_rope_parameters(hf_model):
    config = smollm2.ModelConfig.from_hf(hf_model.config)
    assert hf_model.config.rope_parameters["rope_theta"] == 100000.0
    assert config.rope_theta == 100000.0
    assert config.num_key_value_heads == 3


def test_unsupported_rope_type_is_rejected(hf_model):
    config = types.SimpleNamespace(**vars(smollm2.ModelConfig.from_hf(hf_model.config)))
    config.rope_parameters = {"rope_type": "llama3", "rope_theta": 500000.0}
    with pytest.raises(ValueError, match="RoPE type 'llama3' is not supported"):
        smollm2.ModelConfig.from_hf(config)
