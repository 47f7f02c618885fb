#!/usr/bin/env python
"""Score a ttnn model.py against the HuggingFace reference model by teacher forcing.

Usage:
    python eval.py models/HuggingFaceTB/SmolLM2-135M-Instruct/n150/functional/model.py

The HF model (float32, CPU) generates greedy reference tokens after the prompt. The ttnn model
then prefills the prompt in one forward call (token by token with --prefill_decode) and is fed
the reference tokens one at a time. The logits of every step are scored top-1 and top-5 against
the next reference token.

model.py must define `build_model(hf_model, tt_device, max_seq_len)`, returning a model whose
`forward(input_ids, past_key_values=None, use_cache=True)` returns logits [1, seq, vocab] and
`past_key_values`. A call with `past_key_values=None` starts a new sequence. The optional
attributes `use_trace` (bool, set from --trace) and `traced_decode_steps` (int, decode steps run
through ttnn.execute_trace) drive the trace report.

Bad input prints one `error: ...` line on stderr and exits with status 2, before any device is
opened. Errors raised inside model.py keep their traceback and exit with status 1.
"""

import argparse
import dataclasses
import importlib.util
import json
import os
import pathlib
import sys
import time

REPO_ROOT = pathlib.Path(__file__).resolve().parent
DEFAULT_MODEL_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
# About 180 tokens of English prose with the SmolLM2 tokenizer.
DEFAULT_PROMPT_FILE = REPO_ROOT / "prompts" / "lisbon.txt"
DEVICE_VARIABLE = "BRINGUP_DEVICE"  # Read by bringup.environment when bringup is imported.


class UsageError(Exception):
    """Invalid input to the eval, reported as one `error:` line and exit status 2."""


class OneLineErrorParser(argparse.ArgumentParser):
    """An ArgumentParser that reports errors as the single line `error: <message>`."""

    def error(self, message):
        self.exit(2, f"error: {message}\n")


@dataclasses.dataclass
class Prompt:
    """The prompt as text to tokenize or as token ids, with a description for log lines."""

    description: str
    text: str | None = None
    ids: list[int] | None = None


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(
        description="Teacher-forcing top-1/top-5 accuracy of a ttnn model against its HF reference.",
    )

    parser.add_argument(
        "model_path",
        type=pathlib.Path,
        help="model.py that defines build_model(hf_model, tt_device, max_seq_len)",
    )

    parser.add_argument(
        "--model",
        default=DEFAULT_MODEL_ID,
        help=f"HF model id or local folder of the reference model (default {DEFAULT_MODEL_ID})",
    )

    parser.add_argument(
        "--revision",
        default=None,
        help=f"hub revision of --model; rejected for {DEFAULT_MODEL_ID}, which loads from a package",
    )

    prompt = parser.add_argument_group("prompt (pass at most one; default: prompts/lisbon.txt)")
    prompt.add_argument("--prompt", default=None, help="prompt text")

    prompt.add_argument(
        "--prompt_file",
        type=pathlib.Path,
        default=None,
        help="UTF-8 text file with the prompt; one trailing newline is removed",
    )

    prompt.add_argument(
        "--prompt_ids_file",
        type=pathlib.Path,
        default=None,
        help="JSON file with the prompt as a list of token ids",
    )

    parser.add_argument(
        "--max_new_tokens",
        type=int,
        default=100,
        help="reference tokens to generate and score (default 100)",
    )

    parser.add_argument(
        "--max_seq_len",
        type=int,
        default=1024,
        help="max_seq_len given to build_model, in tokens; must fit prompt + new tokens (default 1024)",
    )

    parser.add_argument(
        "--prefill_decode",
        action="store_true",
        help="prefill by feeding the prompt one token at a time through the decode path",
    )

    parser.add_argument("--device_id", type=int, default=0, help="device to open (default 0)")

    parser.add_argument(
        "--device",
        choices=("auto", "card", "emulator"),
        default=None,
        help=f"card or emulated n150; sets {DEVICE_VARIABLE} (default: ${DEVICE_VARIABLE}, else auto)",
    )

    parser.add_argument(
        "--trace",
        type=int,
        choices=(0, 1),
        default=1,
        help="1 runs decode through the model's ttnn trace (sets model.use_trace), 0 runs it eagerly",
    )

    return parser


# ---------------------------------------------------------------------------------------------
# Input checks. They run before the HF model is loaded and before a device is opened.


def check_numbers(args) -> None:
    if args.max_new_tokens < 1:
        raise UsageError(f"--max_new_tokens must be at least 1, got {args.max_new_tokens}")
    if args.max_seq_len < 2:
        raise UsageError(f"--max_seq_len must be at least 2, got {args.max_seq_len}")
    if args.device_id < 0:
        raise UsageError(f"--device_id must be 0 or more, got {args.device_id}")


def check_model_path(path: pathlib.Path) -> pathlib.Path:
    if not path.exists():
        raise UsageError(f"model file not found: {path}")
    if not path.is_file() or path.suffix != ".py":
        raise UsageError(f"model path {path} is not a .py file; pass the model.py to evaluate")
    return path.resolve()


def read_text_file(path: pathlib.Path, option: str) -> str:
    if not path.exists():
        raise UsageError(f"{option} {path} not found")
    if not path.is_file():
        raise UsageError(f"{option} {path} is not a file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"{option} {path} could not be read: {exc.strerror}") from exc
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"{option} {path} is not valid UTF-8 (invalid byte at offset {exc.start}); save it as UTF-8"
        ) from exc


def parse_prompt_ids(text: str, path: pathlib.Path) -> list[int]:
    try:
        ids = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"--prompt_ids_file {path} is not valid JSON ({exc.msg} at line {exc.lineno}); "
            "expected a list of token ids such as [504, 3575, 282]"
        ) from exc
    if not isinstance(ids, list):
        raise UsageError(
            f"--prompt_ids_file {path} contains a JSON {type(ids).__name__}; expected a list of token ids"
        )
    if not ids:
        raise UsageError(
            f"--prompt_ids_file {path} contains an empty list; the prompt needs at least one token id"
        )
    for index, token_id in enumerate(ids):
        # bool is a subclass of int in Python, but true/false are not token ids.
        if not isinstance(token_id, int) or isinstance(token_id, bool):
            raise UsageError(
                f"--prompt_ids_file {path}: element {index} is {json.dumps(token_id)}, not an integer token id"
            )
    return ids


def read_prompt(args) -> Prompt:
    """Return the prompt selected by --prompt, --prompt_file or --prompt_ids_file."""
    passed_options = [
        option
        for option, value in (
            ("--prompt", args.prompt),
            ("--prompt_file", args.prompt_file),
            ("--prompt_ids_file", args.prompt_ids_file),
        )
        if value is not None
    ]
    if len(passed_options) > 1:
        raise UsageError(f"pass only one prompt option, got {' and '.join(passed_options)}")

    if args.prompt_ids_file is not None:
        text = read_text_file(args.prompt_ids_file, "--prompt_ids_file")
        ids = parse_prompt_ids(text, args.prompt_ids_file)
        if len(ids) + args.max_new_tokens > args.max_seq_len:
            raise_too_long(len(ids), args)
        return Prompt(description=f"token ids from {args.prompt_ids_file}", ids=ids)

    if args.prompt is not None:
        text, description, option = args.prompt, "--prompt text", "--prompt"
    else:
        path = args.prompt_file if args.prompt_file is not None else DEFAULT_PROMPT_FILE
        text = read_text_file(path, "--prompt_file").removesuffix("\n")
        description, option = str(path), f"--prompt_file {path}"
    if not text.strip():
        raise UsageError(f"{option} is empty; the prompt needs at least one token")
    return Prompt(description=description, text=text)


def raise_too_long(prompt_len: int, args) -> None:
    raise UsageError(
        f"prompt ({prompt_len} tokens) + --max_new_tokens ({args.max_new_tokens}) = "
        f"{prompt_len + args.max_new_tokens} tokens exceeds --max_seq_len {args.max_seq_len}; "
        "raise --max_seq_len or shorten the prompt"
    )


def select_device(choice: str | None) -> str:
    """Set BRINGUP_DEVICE from --device, import bringup, and return "card" or "emulator"."""
    if choice is not None:
        os.environ[DEVICE_VARIABLE] = choice
    try:
        # Importing bringup prepares ttnn's environment and rejects an invalid BRINGUP_DEVICE.
        import bringup  # noqa: F401
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    from bringup.environment import card_present, device_choice

    kind = device_choice()
    if kind == "card" and not card_present():
        raise UsageError(
            "a Tenstorrent card was requested but /dev/tenstorrent* does not exist; "
            "use --device emulator or auto"
        )
    return kind


def load_model_module(path: pathlib.Path):
    """Import model.py and return it; raise UsageError when it has no build_model."""
    spec = importlib.util.spec_from_file_location("ttnn_model_under_eval", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    if not callable(getattr(module, "build_model", None)):
        raise UsageError(
            f"{path} does not define build_model(hf_model, tt_device, max_seq_len); add that function"
        )
    return module


# ---------------------------------------------------------------------------------------------
# Reference tokens from the HF model.


@dataclasses.dataclass
class Reference:
    """The prompt followed by the greedy HF continuation, as one token sequence."""

    hf_model: object
    tokenizer: object
    tokens: object  # torch.LongTensor [prompt_len + new_tokens]
    # The HF logits that chose each new token, float32 [new_tokens, vocab].
    hf_logits: object
    prompt_len: int
    requested_new_tokens: int
    vocab_size: int

    @property
    def new_tokens(self) -> int:
        return int(self.tokens.shape[0]) - self.prompt_len


def tokenize_prompt(prompt: Prompt, args) -> list[int]:
    """Return the prompt's token ids, checked against the vocabulary and --max_seq_len."""
    from bringup import hf

    try:
        config = hf.load_hf_config(args.model, args.revision)
    except OSError as exc:
        raise UsageError(
            f"could not load the HF model {args.model!r}: {exc}; pass a local folder or a reachable hub id"
        ) from exc
    vocab_size = config.vocab_size
    if prompt.ids is not None:
        ids = prompt.ids
        bad = [token_id for token_id in ids if not 0 <= token_id < vocab_size]
        if bad:
            raise UsageError(
                f"--prompt_ids_file contains {len(bad)} token ids outside the vocabulary of {args.model} "
                f"(0..{vocab_size - 1}), first {bad[0]}"
            )
    else:
        tokenizer = hf.load_hf_tokenizer(args.model, args.revision)
        ids = tokenizer(prompt.text)["input_ids"]
    if len(ids) + args.max_new_tokens > args.max_seq_len:
        raise_too_long(len(ids), args)
    return ids


def generate_reference(
    hf_model, tokenizer, prompt_ids: list[int], max_new_tokens: int
) -> Reference:
    """Generate up to `max_new_tokens` greedy tokens after `prompt_ids` with the HF model."""
    import torch

    input_ids = torch.tensor([prompt_ids], dtype=torch.long)
    print(f"Generating {max_new_tokens} reference tokens greedily with the HF model...", flush=True)
    start = time.perf_counter()
    with torch.no_grad():
        output = hf_model.generate(
            input_ids,
            attention_mask=torch.ones_like(input_ids),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            use_cache=True,
            pad_token_id=hf_model.generation_config.pad_token_id,
            return_dict_in_generate=True,
            output_logits=True,
        )
    reference = Reference(
        hf_model=hf_model,
        tokenizer=tokenizer,
        tokens=output.sequences[0].cpu(),
        hf_logits=torch.cat(output.logits).float().cpu(),
        prompt_len=len(prompt_ids),
        requested_new_tokens=max_new_tokens,
        vocab_size=hf_model.config.vocab_size,
    )
    print(
        f"Generated {reference.new_tokens} tokens in {time.perf_counter() - start:.1f} s",
        flush=True,
    )
    if reference.new_tokens < max_new_tokens:
        print(
            f"The reference stopped at EOS after {reference.new_tokens} of {max_new_tokens} tokens; "
            f"scoring those {reference.new_tokens}",
            flush=True,
        )
    return reference


def prepare_reference(args, prompt: Prompt) -> Reference:
    """Load the HF model and generate the reference tokens for `prompt`."""
    from bringup import hf

    prompt_ids = tokenize_prompt(prompt, args)
    print(f"Prompt: {prompt.description}, {len(prompt_ids)} tokens", flush=True)
    hf_model, tokenizer = hf.load_hf_model(args.model, args.revision)
    return generate_reference(hf_model, tokenizer, prompt_ids, args.max_new_tokens)


# ---------------------------------------------------------------------------------------------
# Teacher forcing.


@dataclasses.dataclass
class Score:
    """Hits of one teacher-forcing run and the time spent in the model's forward calls."""

    top1_hits: int = 0
    top5_hits: int = 0
    total: int = 0
    # Forward calls with a KV cache and one token, including those of --prefill_decode.
    decode_calls: int = 0
    prefill_ms: float = 0.0
    decode_step_ms: list = dataclasses.field(default_factory=list)
    top1_misses: list = dataclasses.field(default_factory=list)

    def add(self, logits, reference: "Reference", step: int) -> None:
        """Score the logits of new token `step` (0 is the token after the prompt)."""
        import torch

        target_id = int(reference.tokens[reference.prompt_len + step])
        top5 = torch.topk(logits.float(), k=5).indices
        predicted_id = int(top5[0])
        self.top1_hits += int(predicted_id == target_id)
        self.top5_hits += int((top5 == target_id).any().item())
        self.total += 1
        if predicted_id != target_id:
            hf_logits = reference.hf_logits[step]
            # A small gap means HF itself nearly chose the predicted token (a near tie).
            gap = float(hf_logits[target_id] - hf_logits[predicted_id])
            self.top1_misses.append(
                {
                    "step": step,
                    "expected": target_id,
                    "predicted": predicted_id,
                    "hf_logit_gap": round(gap, 4),
                }
            )


def returned_cache(outputs):
    """Return the KV cache of a forward call, to pass back as past_key_values."""
    # transformers 5 names the output field `cache` and keeps `past_key_values` as a deprecated
    # alias that logs a warning; models written for transformers 4 set `past_key_values`.
    cache = getattr(outputs, "cache", None)
    if cache is None:
        cache = getattr(outputs, "past_key_values", None)
    if cache is None:
        raise RuntimeError(
            "the model returned no past_key_values although use_cache=True was passed"
        )
    return cache


class HFForwardAdapter:
    """The HF model behind the forward interface that eval.py uses for ttnn models.

    transformers 5.25 accepts `past_key_values` only as a deprecated name of `cache`.
    """

    def __init__(self, hf_model):
        self.hf_model = hf_model

    def __call__(self, input_ids, past_key_values=None, use_cache=True):
        return self.hf_model(input_ids, cache=past_key_values, use_cache=use_cache)


def last_logits(outputs, vocab_size: int):
    """Return the logits of the last position of a forward call as a [vocab] tensor."""
    logits = outputs.logits
    if logits.dim() != 3 or logits.shape[0] != 1 or logits.shape[-1] != vocab_size:
        raise RuntimeError(
            f"the model returned logits of shape {tuple(logits.shape)}; expected [1, seq, {vocab_size}]"
        )
    return logits[0, -1, :]


def score_model(model, reference: Reference, prefill_decode: bool = False) -> Score:
    """Feed `reference` to `model` by teacher forcing and score each step's logits."""
    import torch
    from tqdm import tqdm

    tokens = reference.tokens
    prompt_len = reference.prompt_len
    score = Score()
    with torch.no_grad():
        start = time.perf_counter()
        if prefill_decode:
            past = None
            for position in range(prompt_len):
                outputs = model(tokens[position].view(1, 1), past_key_values=past, use_cache=True)
                past = returned_cache(outputs)
            score.decode_calls += prompt_len - 1
        else:
            outputs = model(tokens[:prompt_len].unsqueeze(0), past_key_values=None, use_cache=True)
        score.prefill_ms = (time.perf_counter() - start) * 1000
        past = returned_cache(outputs)
        score.add(last_logits(outputs, reference.vocab_size), reference, step=0)
        print(f"Prefill: {prompt_len} tokens in {score.prefill_ms:.1f} ms", flush=True)

        # Step i feeds reference token prompt_len + i - 1 and scores token prompt_len + i.
        steps = range(1, reference.new_tokens)
        # A redraw every few seconds keeps logs that are not a terminal readable.
        for step in tqdm(steps, desc="Decode", unit="token", disable=not steps, mininterval=5):
            position = prompt_len + step - 1
            start = time.perf_counter()
            outputs = model(tokens[position].view(1, 1), past_key_values=past, use_cache=True)
            score.decode_step_ms.append((time.perf_counter() - start) * 1000)
            past = returned_cache(outputs)
            score.add(last_logits(outputs, reference.vocab_size), reference, step)
            score.decode_calls += 1
    return score


# ---------------------------------------------------------------------------------------------
# The ttnn model on a device.


def run_on_device(module, reference: Reference, args, device_kind: str) -> dict:
    """Open the device, build the ttnn model, score it, and close the device on every path."""
    from bringup.device import close_device, open_device

    print(f"Opening device {args.device_id} ({device_kind})...", flush=True)
    device = open_device(device_id=args.device_id)
    try:
        print(f"Building the ttnn model (max_seq_len {args.max_seq_len})...", flush=True)
        start = time.perf_counter()
        tt_model = module.build_model(reference.hf_model, device, args.max_seq_len)
        build_s = time.perf_counter() - start
        print(f"Built the ttnn model in {build_s:.1f} s", flush=True)
        if hasattr(tt_model, "eval"):
            tt_model.eval()
        has_trace_switch = hasattr(tt_model, "use_trace")
        tt_model.use_trace = bool(args.trace)
        if args.trace and not has_trace_switch:
            print(
                "warning: the model has no use_trace attribute; --trace 1 may have no effect",
                flush=True,
            )
        traced_before = getattr(tt_model, "traced_decode_steps", None)

        score = score_model(tt_model, reference, args.prefill_decode)

        traced_after = getattr(tt_model, "traced_decode_steps", None)
        traced = (
            None if traced_before is None or traced_after is None else traced_after - traced_before
        )
    finally:
        close_device(device)
    return {"build_s": build_s, "score": score, "traced_decode_steps": traced}


# ---------------------------------------------------------------------------------------------
# Report.


def summarize(score: Score, reference: Reference, trace_requested: bool, traced) -> dict:
    steps_ms = score.decode_step_ms
    # The first decode step often compiles programs or captures the trace, so it is kept apart.
    timed_steps = steps_ms[1:] if len(steps_ms) > 1 else steps_ms
    return {
        "top1": score.top1_hits / score.total,
        "top5": score.top5_hits / score.total,
        "total": score.total,
        "prefill_len": reference.prompt_len,
        "decode_len": reference.new_tokens,
        "requested_decode_len": reference.requested_new_tokens,
        "reference_stopped_early": reference.new_tokens < reference.requested_new_tokens,
        "decode_steps": score.decode_calls,
        "trace_requested": trace_requested,
        "traced_decode_steps": traced,
        "trace": bool(trace_requested and traced and traced == score.decode_calls),
        "prefill_ms": round(score.prefill_ms, 3),
        "decode_ms_per_token": round(sum(timed_steps) / len(timed_steps), 3)
        if timed_steps
        else None,
        "first_decode_ms": round(steps_ms[0], 3) if steps_ms else None,
        "top1_misses": score.top1_misses,
    }


def trace_line(metrics: dict) -> str:
    traced = metrics["traced_decode_steps"]
    steps = metrics["decode_steps"]
    if metrics["trace_requested"]:
        if traced is None:
            return "Decode trace: requested, but the model has no traced_decode_steps counter"
        return f"Decode trace: on, {traced} of {steps} decode steps through ttnn.execute_trace"
    if traced:
        return f"Decode trace: off, yet {traced} of {steps} decode steps ran through ttnn.execute_trace"
    return "Decode trace: off"


def print_misses(misses: list, tokenizer, limit: int = 10) -> None:
    print(
        f"Top-1 misses: {len(misses)} (the HF logit gap is HF's margin for its token over the model's)"
    )
    for miss in misses[:limit]:
        expected = tokenizer.decode([miss["expected"]])
        predicted = tokenizer.decode([miss["predicted"]])
        print(
            f"  step {miss['step']}: expected {expected!r}, model predicted {predicted!r}, "
            f"HF logit gap {miss['hf_logit_gap']:.3f}"
        )
    if len(misses) > limit:
        print(f"  ... {len(misses) - limit} more")


def print_report(metrics: dict, tokenizer) -> None:
    prefill_mode = "token by token" if metrics.get("prefill_decode") else "one forward call"
    print(f"Prefill length: {metrics['prefill_len']} tokens ({prefill_mode})")
    stopped = ", the reference stopped early at EOS" if metrics["reference_stopped_early"] else ""
    print(
        f"Decode length: {metrics['decode_len']} reference tokens scored "
        f"(requested {metrics['requested_decode_len']}{stopped})"
    )
    print(f"Prefill time: {metrics['prefill_ms']:.1f} ms")
    steps = metrics["decode_len"] - 1
    if steps > 1:
        print(
            f"Decode time: {metrics['decode_ms_per_token']:.1f} ms/token (mean of the last {steps - 1} "
            f"steps; the first step took {metrics['first_decode_ms']:.1f} ms, which can include "
            "program compile and trace capture)"
        )
    elif steps == 1:
        print(f"Decode time: {metrics['decode_ms_per_token']:.1f} ms/token (1 step)")
    if metrics["device"] != "cpu":
        print(trace_line(metrics))
    if metrics["top1_misses"]:
        print_misses(metrics["top1_misses"], tokenizer)
    print(f"Top-1 accuracy: {metrics['top1'] * 100:.2f}% ({metrics['top1']:.4f})")
    print(f"Top-5 accuracy: {metrics['top5'] * 100:.2f}% ({metrics['top5']:.4f})", flush=True)


def run(args) -> dict:
    """Run the eval described by parsed `args` and return its metrics.

    With `args.model_path` None, no device is opened and the HF model is scored against itself,
    which checks the harness (expect 1.0 for top-1 and top-5). Raises UsageError for bad input.
    """
    check_numbers(args)
    model_path = check_model_path(args.model_path) if args.model_path is not None else None
    prompt = read_prompt(args)
    device_kind = select_device(args.device)
    if device_kind == "emulator" and args.device_id != 0:
        raise UsageError(f"--device_id {args.device_id} not found: the emulated n150 is device 0")
    from bringup import hf

    try:
        hf.reject_packaged_revision(args.model, args.revision)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    module = load_model_module(model_path) if model_path is not None else None

    start = time.perf_counter()
    reference = prepare_reference(args, prompt)
    print(f"HF reference ready in {time.perf_counter() - start:.1f} s", flush=True)

    if module is None:
        print("Scoring the HF model against its own reference (no device)...", flush=True)
        score = score_model(HFForwardAdapter(reference.hf_model), reference, args.prefill_decode)
        metrics = summarize(score, reference, trace_requested=False, traced=None)
        metrics.update(device="cpu", model_path=None, build_s=None)
    else:
        result = run_on_device(module, reference, args, device_kind)
        metrics = summarize(
            result["score"], reference, bool(args.trace), result["traced_decode_steps"]
        )
        metrics.update(
            device=device_kind, model_path=str(model_path), build_s=round(result["build_s"], 3)
        )
    metrics["prefill_decode"] = bool(args.prefill_decode)
    print_report(metrics, reference.tokenizer)
    return metrics


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        run(args)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2
    except KeyboardInterrupt:
        # The device is already closed by run_on_device's finally block.
        print("error: interrupted", file=sys.stderr, flush=True)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
