"""An emulated Tenstorrent Wormhole n150 for running ttnn code on a machine without a card.

The real ttnn 0.81.1 wheel does every host-side step: tensor packing (bfloat16, bfloat8_b,
bfloat4_b, float32, integer types), tile padding, shapes and conversions. The emulator adds what
needs a card: device tensors, the ops' math (in torch, float32), the card's validation rules, a
program cache, and trace capture and replay. `install()` swaps these into the `ttnn` module, so
model code keeps plain `import ttnn` calls; `bringup.device.open_device` calls it when no card
is present.

Where it differs from silicon:
- Math runs in float32 and each result is rounded once to the output dtype. The card's matrix
  engine rounds inputs by math fidelity (LoFi to HiFi4) and accumulates in bfloat16 or float32
  by compute_kernel_config. Its SFPU evaluates exp, silu and rsqrt with approximations. So
  results on a card differ in the last bits, and accuracy measured here is an upper bound.
- Tile padding is not stored: a tensor holds its logical values only, so ops never read the
  padding garbage a card may leave there.
- Ops write their outputs interleaved; passing a sharded memory config to from_torch or
  to_device raises NotImplementedError, and sharding rules are not checked.
- Only the ops listed in `install.EMULATED` run on the emulated device (the ones a Llama-style
  decoder needs). Any other ttnn op given an emulated tensor fails inside ttnn with a TypeError
  that names `DeviceTensor`; add the op to `ops.py` to use it.
- Memory capacity (DRAM, L1, trace region size) is not accounted; only trace_region_size=0 fails.
- A program used inside a trace capture must have run once before the capture (the program
  cache), as on the card; outputs of a capture hold no data until ttnn.execute_trace, and
  reading them raises here where a card would return stale data.
"""

from ttnn_emulator.install import install, is_installed

__all__ = ["install", "is_installed"]
