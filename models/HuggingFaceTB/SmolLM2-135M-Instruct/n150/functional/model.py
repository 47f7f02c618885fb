"""SmolLM2-135M-Instruct in ttnn on one Wormhole n150, all compute on the device.

Every step from the embedding lookup to the logits is a ttnn op:
- ttnn.embedding: token embeddings, and the RoPE cos/sin rows of each decode position
- ttnn.rms_norm: the RMSNorm before attention, before the MLP and before the LM head
- ttnn.linear: the fused QKV projection, the attention output, the MLP and the tied LM head
- ttnn.experimental.nlp_create_qkv_heads / nlp_create_qkv_heads_decode: split fused QKV into heads
- ttnn.experimental.rotary_embedding: RoPE in HuggingFace's rotate-half format
- ttnn.fill_cache / ttnn.experimental.paged_update_cache: write K and V into the KV cache
- ttnn.transformer.scaled_dot_product_attention[_decode]: fused causal attention with GQA
- ttnn.experimental.nlp_concat_heads, ttnn.transpose, ttnn.reshape: move heads back into place
- ttnn.silu, ttnn.mul, ttnn.add: the SwiGLU MLP and the residual connections
- ttnn.typecast: from the float32 residual stream to bfloat16 activations after each norm
Decode runs in a captured trace: the host only writes the next token and its position into
preallocated device tensors (ttnn.copy_host_to_device_tensor), then replays the trace.

Shape notation: [batch, heads, seq, dim], all 4D; S is the prompt padded to a multiple of 32.
Decode always runs 32 users (one tile of rows), and user 0 is the real token.
"""

import math
from dataclasses import dataclass

import torch
import ttnn
from tqdm import tqdm
from transformers import GenerationConfig
from transformers.generation.utils import GenerationMixin
from transformers.modeling_outputs import CausalLMOutputWithPast

TILE_SIZE = 32
# Decode ops take one row per user, and a tile has 32 rows, so decode runs 32 users wide.
DECODE_BATCH = TILE_SIZE
WEIGHT_DTYPE = ttnn.bfloat8_b
ACTIVATION_DTYPE = ttnn.bfloat16
# Measured exceptions (MODEL_BRINGUP.md, "Precision"): the residual stream is float32, because
# token 0 carries a value near 23,000 there, where bfloat16's step is 128; the LM head is bfloat16,
# because bfloat8_b logits flipped near-tied top-1 tokens. Together they raised top-1 over 100
# tokens from 0.93 to 0.96 on a 128-token prompt and from 0.96 to 0.98 on prompts/lisbon.txt.
RESIDUAL_DTYPE = ttnn.float32
LM_HEAD_DTYPE = ttnn.bfloat16


def pad_to_tile(length: int) -> int:
    return math.ceil(length / TILE_SIZE) * TILE_SIZE


@dataclass
class ModelConfig:
    """The fields of the HF config this file uses."""

    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    rms_norm_eps: float
    rope_theta: float

    @classmethod
    def from_hf(cls, config) -> "ModelConfig":
        # transformers 5 keeps RoPE settings in config.rope_parameters; 4.x had config.rope_theta.
        rope = getattr(config, "rope_parameters", None) or {}
        rope_type = rope.get("rope_type", "default")
        if rope_type != "default":
            raise ValueError(
                f"RoPE type {rope_type!r} is not supported; this file implements 'default'"
            )
        head_dim = (
            getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
        )
        return cls(
            vocab_size=config.vocab_size,
            hidden_size=config.hidden_size,
            intermediate_size=config.intermediate_size,
            num_hidden_layers=config.num_hidden_layers,
            num_attention_heads=config.num_attention_heads,
            num_key_value_heads=config.num_key_value_heads,
            head_dim=head_dim,
            rms_norm_eps=config.rms_norm_eps,
            rope_theta=rope.get("rope_theta", getattr(config, "rope_theta", 10000.0)),
        )


def to_device(tensor: torch.Tensor, device, dtype=ACTIVATION_DTYPE, layout=ttnn.TILE_LAYOUT):
    return ttnn.from_torch(
        tensor, dtype=dtype, layout=layout, device=device, memory_config=ttnn.DRAM_MEMORY_CONFIG
    )


def load_linear_weight(weight: torch.Tensor, device, dtype=None):
    """HF Linear weight [out, in] -> ttnn [1, 1, in, out] for x @ W, in WEIGHT_DTYPE by default."""
    dtype = WEIGHT_DTYPE if dtype is None else dtype
    return to_device(weight.T.contiguous()[None, None], device, dtype)


class RMSNorm:
    def __init__(self, weight: torch.Tensor, eps: float, device):
        self.eps = eps
        # Norm weights are tiny, so they stay bfloat16 ([1, 1, 1, hidden]).
        self.weight = to_device(weight[None, None, None], device)

    def __call__(self, x):
        # float32 residual in, bfloat16 activation out for the matmuls that follow.
        return ttnn.typecast(
            ttnn.rms_norm(x, epsilon=self.eps, weight=self.weight), ACTIVATION_DTYPE
        )


def rope_tables(config: ModelConfig, max_seq_len: int) -> tuple:
    """Return cos and sin of every position, [1, 1, max_seq_len, head_dim], in HF's layout.

    HF rotates the two halves of each head (rotate_half), so each table repeats its
    head_dim / 2 frequencies twice: [f0 .. f31, f0 .. f31].
    """
    exponents = torch.arange(0, config.head_dim, 2, dtype=torch.float32) / config.head_dim
    inv_freq = 1.0 / (config.rope_theta**exponents)
    angles = torch.outer(torch.arange(max_seq_len, dtype=torch.float32), inv_freq)
    angles = torch.cat((angles, angles), dim=-1)  # [max_seq_len, head_dim]
    return angles.cos()[None, None], angles.sin()[None, None]


class Rope:
    """RoPE tables on the device, for prefill (rows 0..S-1) and for decode (one row per user)."""

    def __init__(self, config: ModelConfig, max_seq_len: int, device):
        cos, sin = rope_tables(config, max_seq_len)
        # Prefill rotates positions 0..S-1, so the op reads the first S rows of these.
        self.cos = to_device(cos, device)
        self.sin = to_device(sin, device)
        # Decode looks rows up by each user's position with ttnn.embedding (ROW_MAJOR tables).
        self.cos_table = to_device(cos, device, layout=ttnn.ROW_MAJOR_LAYOUT)
        self.sin_table = to_device(sin, device, layout=ttnn.ROW_MAJOR_LAYOUT)

    def decode_rows(self, rope_positions):
        """Return cos and sin of each user's position, [1, 1, 32, head_dim]."""
        cos = ttnn.embedding(rope_positions, self.cos_table, layout=ttnn.TILE_LAYOUT)
        sin = ttnn.embedding(rope_positions, self.sin_table, layout=ttnn.TILE_LAYOUT)
        rows = [1, 1, DECODE_BATCH, cos.shape[-1]]
        return ttnn.reshape(cos, rows), ttnn.reshape(sin, rows)  # [1, 32, dim] -> [1, 1, 32, dim]


class Attention:
    def __init__(
        self, config: ModelConfig, state_dict: dict, prefix: str, device, max_seq_len: int
    ):
        self.n_heads = config.num_attention_heads
        self.n_kv_heads = config.num_key_value_heads
        self.head_dim = config.head_dim
        self.scale = 1.0 / math.sqrt(config.head_dim)
        # One matmul for Q, K and V: [q | k | v] on the output dim, the order the head split reads.
        qkv = torch.cat([state_dict[f"{prefix}{name}_proj.weight"] for name in "qkv"], dim=0)
        self.qkv_proj = load_linear_weight(qkv, device)
        self.o_proj = load_linear_weight(state_dict[f"{prefix}o_proj.weight"], device)
        # One cache slot per decode user: [32, n_kv_heads, max_seq_len, head_dim].
        cache = torch.zeros(DECODE_BATCH, self.n_kv_heads, pad_to_tile(max_seq_len), self.head_dim)
        self.k_cache = to_device(cache, device)
        self.v_cache = to_device(cache, device)

    def prefill(self, x, rope: Rope):
        qkv = ttnn.linear(x, self.qkv_proj)  # [1, 1, S, (9 + 2 * 3) * 64]

        q, k, v = ttnn.experimental.nlp_create_qkv_heads(
            qkv,
            num_heads=self.n_heads,
            num_kv_heads=self.n_kv_heads,
            transpose_k_heads=False,
            memory_config=ttnn.DRAM_MEMORY_CONFIG,
        )  # q [1, 9, S, 64], k and v [1, 3, S, 64]
        ttnn.deallocate(qkv)

        q = ttnn.experimental.rotary_embedding(q, rope.cos, rope.sin)
        k = ttnn.experimental.rotary_embedding(k, rope.cos, rope.sin)

        ttnn.fill_cache(self.k_cache, k, batch_idx=0)
        ttnn.fill_cache(self.v_cache, v, batch_idx=0)

        out = ttnn.transformer.scaled_dot_product_attention(
            q, k, v, is_causal=True, scale=self.scale
        )  # [1, 9, S, 64]

        out = ttnn.experimental.nlp_concat_heads(out, memory_config=ttnn.DRAM_MEMORY_CONFIG)
        return ttnn.linear(out, self.o_proj)  # [1, 1, S, 576]

    def decode(self, x, positions, rope_rows):
        qkv = ttnn.linear(x, self.qkv_proj)  # [1, 1, 32, 960]: one row per user

        q, k, v = ttnn.experimental.nlp_create_qkv_heads_decode(
            qkv, num_heads=self.n_heads, num_kv_heads=self.n_kv_heads
        )  # q [1, 32, 9, 64], k and v [1, 32, 3, 64]
        ttnn.deallocate(qkv)

        # rotary_embedding rotates row i of dim -2 by row i of cos/sin, so put users on dim -2.
        cos, sin = rope_rows
        q = ttnn.transpose(
            ttnn.experimental.rotary_embedding(ttnn.transpose(q, 1, 2), cos, sin), 1, 2
        )
        k = ttnn.transpose(
            ttnn.experimental.rotary_embedding(ttnn.transpose(k, 1, 2), cos, sin), 1, 2
        )

        ttnn.experimental.paged_update_cache(self.k_cache, k, update_idxs_tensor=positions)
        ttnn.experimental.paged_update_cache(self.v_cache, v, update_idxs_tensor=positions)

        out = ttnn.transformer.scaled_dot_product_attention_decode(
            q, self.k_cache, self.v_cache, cur_pos_tensor=positions, scale=self.scale
        )  # [1, 32, 9, 64]

        out = ttnn.transpose(out, 1, 2)  # [1, 9, 32, 64]
        out = ttnn.experimental.nlp_concat_heads(out, memory_config=ttnn.DRAM_MEMORY_CONFIG)
        return ttnn.linear(out, self.o_proj)  # [1, 1, 32, 576]


class MLP:
    def __init__(self, state_dict: dict, prefix: str, device):
        self.gate_proj = load_linear_weight(state_dict[f"{prefix}gate_proj.weight"], device)
        self.up_proj = load_linear_weight(state_dict[f"{prefix}up_proj.weight"], device)
        self.down_proj = load_linear_weight(state_dict[f"{prefix}down_proj.weight"], device)

    def __call__(self, x):
        gate = ttnn.silu(ttnn.linear(x, self.gate_proj))  # [1, 1, rows, 1536]
        up = ttnn.linear(x, self.up_proj)
        return ttnn.linear(ttnn.mul(gate, up), self.down_proj)  # [1, 1, rows, 576]


class DecoderLayer:
    def __init__(self, config: ModelConfig, state_dict: dict, layer: int, device, max_seq_len: int):
        prefix = f"model.layers.{layer}."
        eps = config.rms_norm_eps
        self.input_layernorm = RMSNorm(state_dict[f"{prefix}input_layernorm.weight"], eps, device)
        self.self_attn = Attention(config, state_dict, f"{prefix}self_attn.", device, max_seq_len)
        self.post_attention_layernorm = RMSNorm(
            state_dict[f"{prefix}post_attention_layernorm.weight"], eps, device
        )
        self.mlp = MLP(state_dict, f"{prefix}mlp.", device)

    def prefill(self, x, rope: Rope):
        attn = self.self_attn.prefill(self.input_layernorm(x), rope)
        x = ttnn.add(x, attn, dtype=RESIDUAL_DTYPE)
        return ttnn.add(x, self.mlp(self.post_attention_layernorm(x)), dtype=RESIDUAL_DTYPE)

    def decode(self, x, positions, rope_rows):
        attn = self.self_attn.decode(self.input_layernorm(x), positions, rope_rows)
        x = ttnn.add(x, attn, dtype=RESIDUAL_DTYPE)
        return ttnn.add(x, self.mlp(self.post_attention_layernorm(x)), dtype=RESIDUAL_DTYPE)


class DeviceKVCache:
    """What forward() returns as past_key_values: the cache itself stays on the device.

    HF generate() only passes it back and reads its length with get_seq_length().
    """

    def __init__(self):
        self.length = 0

    def get_seq_length(self, layer_idx=0) -> int:
        return self.length


class SmolLM2ForCausalLM(torch.nn.Module, GenerationMixin):
    """SmolLM2 on ttnn with HF's causal LM interface: forward() and generate() work as in HF.

    Batch 1 only. Calling forward without past_key_values starts a new sequence (prefill);
    passing back the returned past_key_values with one new token continues it (decode).
    """

    def __init__(self, hf_model, device, max_seq_len: int):
        super().__init__()
        self.device_handle = device
        self.config = hf_model.config
        self.generation_config = GenerationConfig.from_model_config(self.config)
        if self.generation_config.pad_token_id is None:
            self.generation_config.pad_token_id = self.generation_config.eos_token_id
        self.main_input_name = "input_ids"
        # generate() reads self.device, so a CPU buffer gives the device of input_ids and logits.
        self.register_buffer("host_anchor", torch.empty(0), persistent=False)
        config = ModelConfig.from_hf(hf_model.config)
        self.model_config = config
        self.max_seq_len = max_seq_len
        state_dict = hf_model.state_dict()

        print("Loading embeddings, RoPE tables and LM head...")
        embedding = state_dict["model.embed_tokens.weight"]  # [vocab, hidden]
        # ttnn.embedding needs a ROW_MAJOR bfloat16 table: [1, 1, vocab, hidden].
        self.embed_tokens = to_device(embedding[None, None], device, layout=ttnn.ROW_MAJOR_LAYOUT)
        # Tied embeddings: the LM head is the same matrix, as [1, 1, hidden, vocab].
        lm_head = state_dict.get("lm_head.weight", embedding)
        self.lm_head = load_linear_weight(lm_head, device, LM_HEAD_DTYPE)
        self.rope = Rope(config, pad_to_tile(max_seq_len), device)
        self.norm = RMSNorm(state_dict["model.norm.weight"], config.rms_norm_eps, device)
        self.layers = [
            DecoderLayer(config, state_dict, layer, device, max_seq_len)
            for layer in tqdm(range(config.num_hidden_layers), desc="Loading layers", unit="layer")
        ]

        # Decode inputs live in preallocated device tensors, rewritten before every step.
        tokens, positions, rope_positions = self.decode_inputs(0, 0)
        self.decode_tokens = to_device(tokens, device, ttnn.uint32, ttnn.ROW_MAJOR_LAYOUT)
        self.decode_positions = to_device(positions, device, ttnn.int32, ttnn.ROW_MAJOR_LAYOUT)
        self.decode_rope_positions = to_device(
            rope_positions, device, ttnn.uint32, ttnn.ROW_MAJOR_LAYOUT
        )
        self.use_trace = True
        self.trace_id = None
        self.trace_logits = None
        self.traced_decode_steps = 0
        self.kv_cache = DeviceKVCache()

    @property
    def device(self) -> torch.device:
        return self.host_anchor.device

    def get_experts_implementation(self) -> dict:
        # generate() in transformers 5 calls this on every model for its MoE kernels. SmolLM2 has none.
        return {}

    @staticmethod
    def decode_inputs(token_id: int, position: int) -> tuple:
        """Return the host values of one decode step: tokens, cache positions, RoPE positions."""
        tokens = torch.zeros(1, 1, 1, DECODE_BATCH, dtype=torch.int32)
        tokens[..., 0] = token_id
        # Padding users repeat user 0's position; their cache slots are never read for user 0.
        positions = torch.full((DECODE_BATCH,), position, dtype=torch.int32)
        return tokens, positions, positions.reshape(1, 1, 1, DECODE_BATCH)

    def write_decode_inputs(self, token_id: int, position: int):
        """Copy one decode step's inputs into the preallocated device tensors, outside any trace."""
        tokens, positions, rope_positions = self.decode_inputs(token_id, position)
        targets = (
            (tokens, ttnn.uint32, self.decode_tokens),
            (positions, ttnn.int32, self.decode_positions),
            (rope_positions, ttnn.uint32, self.decode_rope_positions),
        )
        for value, dtype, target in targets:
            host = ttnn.from_torch(value, dtype=dtype, layout=ttnn.ROW_MAJOR_LAYOUT)
            ttnn.copy_host_to_device_tensor(host, target)

    def prefill(self, input_ids: torch.Tensor):
        seq_len = input_ids.shape[1]
        padded = pad_to_tile(seq_len)
        tokens = torch.nn.functional.pad(input_ids, (0, padded - seq_len)).reshape(1, 1, 1, padded)
        tokens = to_device(
            tokens.to(torch.int32), self.device_handle, ttnn.uint32, ttnn.ROW_MAJOR_LAYOUT
        )
        x = ttnn.embedding(
            tokens, self.embed_tokens, layout=ttnn.TILE_LAYOUT, dtype=RESIDUAL_DTYPE
        )  # [1, S, 576]
        x = ttnn.reshape(x, [1, 1, padded, self.model_config.hidden_size])
        for layer in self.layers:
            x = layer.prefill(x, self.rope)
        logits = ttnn.linear(self.norm(x), self.lm_head)  # [1, 1, S, vocab]
        return ttnn.to_torch(logits).float()[0, :, :seq_len]  # [1, seq_len, vocab]

    def decode_step(self):
        """Run one decode step on the preallocated inputs and return logits [1, 1, 32, vocab]."""
        x = ttnn.embedding(
            self.decode_tokens, self.embed_tokens, layout=ttnn.TILE_LAYOUT, dtype=RESIDUAL_DTYPE
        )
        x = ttnn.reshape(x, [1, 1, DECODE_BATCH, self.model_config.hidden_size])
        rope_rows = self.rope.decode_rows(self.decode_rope_positions)
        for layer in self.layers:
            x = layer.decode(x, self.decode_positions, rope_rows)
        return ttnn.linear(self.norm(x), self.lm_head)

    def capture_decode_trace(self):
        """Compile the decode programs with one eager step, then capture the step as a trace."""
        self.decode_step()
        self.trace_id = ttnn.begin_trace_capture(self.device_handle, cq_id=0)
        self.trace_logits = self.decode_step()
        ttnn.end_trace_capture(self.device_handle, self.trace_id, cq_id=0)

    def decode(self, token_id: int, position: int):
        self.write_decode_inputs(token_id, position)
        if self.use_trace:
            if self.trace_id is None:
                self.capture_decode_trace()
            ttnn.execute_trace(self.device_handle, self.trace_id, cq_id=0, blocking=True)
            self.traced_decode_steps += 1
            logits = self.trace_logits
        else:
            logits = self.decode_step()
        return ttnn.to_torch(logits).float()[0, :, :1]  # user 0: [1, 1, vocab]

    def release_trace(self):
        if self.trace_id is not None:
            ttnn.release_trace(self.device_handle, self.trace_id)
            self.trace_id = None
            self.trace_logits = None

    def prepare_inputs_for_generation(self, input_ids, past_key_values=None, cache=None, **kwargs):
        # generate() passes the whole sequence each step; after prefill only the last token is new.
        # transformers 5 names the cache `cache`; 4.x names it `past_key_values`.
        cache = cache if cache is not None else past_key_values
        if isinstance(cache, DeviceKVCache):
            return {"input_ids": input_ids[:, -1:], "past_key_values": cache, "use_cache": True}
        return {"input_ids": input_ids, "past_key_values": None, "use_cache": True}

    def forward(
        self,
        input_ids,
        attention_mask=None,
        past_key_values=None,
        use_cache=True,
        cache=None,
        **kwargs,
    ):
        past_key_values = cache if cache is not None else past_key_values
        batch, seq_len = input_ids.shape
        if batch != 1:
            raise ValueError(f"batch {batch} is not supported; this model runs batch 1")
        if attention_mask is not None and not bool(attention_mask.all()):
            raise ValueError("padding in attention_mask is not supported; pass unpadded input_ids")
        if past_key_values is not None and seq_len != 1:
            raise ValueError(f"decode takes one new token per call, got {seq_len}")
        position = 0 if past_key_values is None else self.kv_cache.length
        if position + seq_len > self.max_seq_len:
            raise ValueError(
                f"sequence of {position + seq_len} tokens exceeds max_seq_len={self.max_seq_len}"
            )
        if past_key_values is None:
            logits = self.prefill(input_ids)
        else:
            logits = self.decode(int(input_ids[0, 0]), position)
        self.kv_cache.length = position + seq_len
        # Positional, because transformers 5 renamed the field past_key_values to cache.
        return CausalLMOutputWithPast(None, logits, self.kv_cache if use_cache else None)


def build_model(hf_model, tt_device, max_seq_len: int = 1024) -> SmolLM2ForCausalLM:
    """Build the ttnn model from a HF LlamaForCausalLM; max_seq_len sizes the KV cache and RoPE."""
    return SmolLM2ForCausalLM(hf_model, tt_device, max_seq_len)
