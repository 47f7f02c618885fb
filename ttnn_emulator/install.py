"""Swap the emulated n150's functions into the `ttnn` module.

After `install()`, model code keeps calling `ttnn.linear`, `ttnn.experimental.rotary_embedding`
and the rest as on a card; those names then refer to the emulator's functions. The real
host-side functions are kept in ORIGINALS, and the emulator uses them for every host tensor, so
packing, padding and conversions stay those of the wheel. Python-level ttnn functions that are
built on the replaced primitives (`ttnn.to_torch`, `ttnn.as_tensor`) are left as they are.
"""

import ttnn

# (module path, name) of every function the emulator replaces.
EMULATED = [
    ("", "from_torch"),
    ("", "to_device"),
    ("", "from_device"),
    ("", "is_tensor_storage_on_device"),
    ("", "to_layout"),
    ("", "typecast"),
    ("", "deallocate"),
    ("", "reshape"),
    ("", "slice"),
    ("", "embedding"),
    ("", "linear"),
    ("", "matmul"),
    ("", "rms_norm"),
    ("", "add"),
    ("", "mul"),
    ("", "silu"),
    ("", "concat"),
    ("", "transpose"),
    ("", "fill_cache"),
    ("experimental", "nlp_create_qkv_heads"),
    ("experimental", "nlp_create_qkv_heads_decode"),
    ("experimental", "nlp_concat_heads"),
    ("experimental", "rotary_embedding"),
    ("experimental", "rotary_embedding_llama"),
    ("experimental", "paged_update_cache"),
    ("transformer", "scaled_dot_product_attention"),
    ("transformer", "scaled_dot_product_attention_decode"),
    ("", "copy_host_to_device_tensor"),
    ("", "synchronize_device"),
    ("", "begin_trace_capture"),
    ("", "end_trace_capture"),
    ("", "execute_trace"),
    ("", "release_trace"),
    ("", "open_device"),
    ("", "close_device"),
]

# The real ttnn functions, by name, as they were before install().
ORIGINALS = {name: getattr(ttnn, name) for module, name in EMULATED if module == ""}
# The emulated function of `ttnn.slice` is ops.slice_, since `slice` is a Python builtin.
EMULATED_NAMES = {"slice": "slice_"}


def owner(module):
    return ttnn if module == "" else getattr(ttnn, module)


def install():
    """Point ttnn's op names at the emulated n150. Calling it again changes nothing."""
    from ttnn_emulator import ops

    for module, name in EMULATED:
        setattr(owner(module), name, getattr(ops, EMULATED_NAMES.get(name, name)))


def is_installed() -> bool:
    from ttnn_emulator import ops

    return ttnn.linear is ops.linear
