#!/usr/bin/env python
"""Time the teacher-forcing eval of SmolLM2-135M: the ttnn model against HF, traced against eager.

One run feeds the same tokens (the default prompt, then 100 reference tokens) to three models.
They are HF float32 on the CPU with its own KV cache, the ttnn model with decode through the
trace, and the ttnn model with eager decode. It prints each wall time and the ratios. On the emulated n150
the ttnn numbers measure the emulator (torch math plus Python dispatch), not a card.

Usage: python benchmarks/bench_eval.py [--new_tokens 100]
"""

import argparse
import pathlib
import sys
import time

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

import bringup  # noqa: E402,F401 (sets ttnn's environment before ttnn is imported)
import torch  # noqa: E402

from bringup.device import close_device, open_device  # noqa: E402
from bringup.hf import load_hf_model  # noqa: E402
from bringup.notebook import import_model  # noqa: E402

PROMPT = REPO_ROOT / "prompts" / "lisbon.txt"


def teacher_forced(model, tokens, prompt_length):
    """Prefill the prompt, then feed each later token; return (prefill seconds, decode seconds)."""
    start = time.perf_counter()
    output = model(tokens[:, :prompt_length], use_cache=True)
    prefill = time.perf_counter() - start
    cache = output.cache
    start = time.perf_counter()
    for position in range(prompt_length, tokens.shape[1]):
        output = model(tokens[:, position : position + 1], cache=cache, use_cache=True)
        cache = output.cache
    return prefill, time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--new_tokens", type=int, default=100, help="decode steps to time")
    args = parser.parse_args()

    hf_model, tokenizer = load_hf_model("HuggingFaceTB/SmolLM2-135M-Instruct")
    prompt = tokenizer(PROMPT.read_text(encoding="utf-8"), return_tensors="pt").input_ids
    with torch.no_grad():
        tokens = hf_model.generate(prompt, max_new_tokens=args.new_tokens, do_sample=False)
    prompt_length = prompt.shape[1]
    decode_steps = tokens.shape[1] - prompt_length

    device = open_device()
    try:
        model = import_model().build_model(hf_model, device, 1024)
        with torch.no_grad():
            hf_prefill, hf_decode = teacher_forced(hf_model, tokens, prompt_length)
            model.use_trace = True
            teacher_forced(model, tokens[:, : prompt_length + 2], prompt_length)  # compile, capture
            tt_prefill, traced_decode = teacher_forced(model, tokens, prompt_length)
            model.use_trace = False
            _, eager_decode = teacher_forced(model, tokens, prompt_length)
    finally:
        close_device(device)

    def per_token(seconds):
        return 1000 * seconds / decode_steps

    print(f"Teacher forcing, {prompt_length}-token prompt + {decode_steps} decode steps")
    print(f"{'':28}{'prefill ms':>12}{'decode ms/token':>18}{'total s':>10}")
    rows = [
        ("HF float32 (CPU)", hf_prefill, hf_decode),
        ("ttnn, decode traced", tt_prefill, traced_decode),
        ("ttnn, decode eager", tt_prefill, eager_decode),
    ]
    for name, prefill, decode in rows:
        print(f"{name:28}{1000 * prefill:12.1f}{per_token(decode):18.1f}{prefill + decode:10.2f}")
    print(
        f"ttnn traced / HF wall time: {(tt_prefill + traced_decode) / (hf_prefill + hf_decode):.2f}x"
    )
    print(f"decode eager / traced: {eager_decode / traced_decode:.2f}x")


if __name__ == "__main__":
    main()
