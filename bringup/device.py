"""Open the n150: the real card when one is present, the emulated n150 otherwise.

`BRINGUP_DEVICE=card|emulator|auto` overrides the choice (auto is the default). Both paths return
a device that model code drives with plain `import ttnn` calls.
"""

import ttnn

from bringup.environment import device_choice

# Enough for the decode trace of SmolLM2-135M on the card (about 30 layers x 25 ops).
DEFAULT_TRACE_REGION_SIZE = 32 * 1024 * 1024


def open_device(
    device_id=0,
    l1_small_size=ttnn.device.DEFAULT_L1_SMALL_SIZE,
    trace_region_size=DEFAULT_TRACE_REGION_SIZE,
):
    """Open device `device_id` with ttnn.open_device's keyword arguments; print its kind."""
    if device_choice() == "emulator":
        import ttnn_emulator

        ttnn_emulator.install()
        kind = (
            "emulated n150 (ttnn host library + torch math; no card). ttnn's warning that it "
            "uses a mock cluster descriptor is expected"
        )
    else:
        kind = "Tenstorrent card"
    device = ttnn.open_device(
        device_id=device_id,
        l1_small_size=l1_small_size,
        trace_region_size=trace_region_size,
    )
    print(f"Opened device {device_id}: {kind}")
    return device


def close_device(device) -> None:
    """Close a device returned by open_device."""
    ttnn.close_device(device)
