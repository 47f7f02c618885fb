"""Environment variables that must be set before ttnn is imported."""

import glob
import os
import pathlib

# auto: the card when /dev/tenstorrent* exists, else the emulator. card / emulator force one.
DEVICE_VARIABLE = "BRINGUP_DEVICE"
DEVICE_CHOICES = ("auto", "card", "emulator")
REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
CLUSTER_DESCRIPTOR = REPO_ROOT / "ttnn_emulator" / "n150_cluster.yaml"


def card_present() -> bool:
    """Return True when the kernel driver exposes a Tenstorrent card."""
    return bool(glob.glob("/dev/tenstorrent*"))


def device_choice() -> str:
    """Return "card" or "emulator" as chosen by BRINGUP_DEVICE (default auto)."""
    choice = os.environ.get(DEVICE_VARIABLE, "auto").strip().lower() or "auto"
    if choice not in DEVICE_CHOICES:
        raise ValueError(
            f"{DEVICE_VARIABLE}={choice!r} is invalid; use one of {', '.join(DEVICE_CHOICES)}"
        )
    if choice == "auto":
        return "card" if card_present() else "emulator"
    return choice


def configure_ttnn_environment() -> None:
    """Set ttnn's log levels, OpenMP's wait policy and, on the emulator, the cluster descriptor.

    Values the user has already set are kept.
    """
    # torch's OpenMP threads spin while they wait. When two processes share the 2 cores of a small
    # machine (a notebook kernel beside a test run), spinning made HF's 128-token prefill 12x
    # slower (14 s against 1.1 s with passive waiting). Read once, when torch loads OpenMP.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    # ttnn logs its whole CONFIG at DEBUG level through loguru when it is imported.
    os.environ.setdefault("LOGURU_LEVEL", "INFO")
    # The C++ runtime logs an info line for every driver event; warnings and errors still print.
    os.environ.setdefault("TT_LOGGER_LEVEL", "warn")
    if device_choice() == "emulator":
        # Without a cluster descriptor, ttnn cannot even pack a tile: "No chips detected".
        os.environ.setdefault("TT_METAL_MOCK_CLUSTER_DESC_PATH", str(CLUSTER_DESCRIPTOR))
