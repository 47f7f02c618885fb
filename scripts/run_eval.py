#!/usr/bin/env python
"""Run the teacher-forcing eval of eval.py for automation and print one YT_METRICS= line.

    python scripts/run_eval.py --mode hf --hf-model HuggingFaceTB/SmolLM2-135M-Instruct
    python scripts/run_eval.py --mode tt --hf-model HuggingFaceTB/SmolLM2-135M-Instruct --trace 1

The prompt is exactly --prefill-len token ids, made by tokenizing prompts/lisbon.txt and repeating
it as often as needed. `--mode hf` scores the HF model against its own greedy reference, which
checks the harness and should give 1.0 for top-1 and top-5. `--mode tt` scores
models/<hf-model>/<system>/functional/model.py on the card or the emulated n150.

stdout receives exactly one line starting with `YT_METRICS=`, followed by a JSON object. Progress
and errors go to stderr. On failure the JSON still contains what is known plus an "error" field, and
the exit status is 2 for bad input or 1 for a failure inside the eval.
"""

import argparse
import contextlib
import json
import os
import pathlib
import sys
import tempfile
import traceback

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))  # eval.py and the bringup package live at the repo root.

import eval as harness  # noqa: E402

DEFAULT_DECODE_LEN = 100
METRICS_PREFIX = "YT_METRICS="


def build_parser() -> argparse.ArgumentParser:
    parser = MetricsArgumentParser(
        description="Teacher-forcing eval for automation: prints one line YT_METRICS=<json> "
        "with top1, top5 and timings on stdout, everything else on stderr."
    )
    parser.add_argument(
        "--mode",
        choices=("hf", "tt"),
        required=True,
        help="hf scores the HF model against itself; tt scores the ttnn model.py",
    )
    parser.add_argument(
        "--hf-model", required=True, help="HF model id or local folder of the reference"
    )
    parser.add_argument("--revision", default=None, help="hub revision of --hf-model")
    parser.add_argument(
        "--prefill-len",
        type=int,
        default=None,
        help="prompt length in tokens, the default prompt cut or repeated to fit "
        "(default: the whole default prompt, prompts/lisbon.txt, 178 tokens)",
    )
    parser.add_argument(
        "--decode-len",
        type=int,
        default=DEFAULT_DECODE_LEN,
        help=f"reference tokens to generate and score (default {DEFAULT_DECODE_LEN})",
    )
    parser.add_argument("--batch", type=int, default=1, help="batch size; only 1 is supported")
    parser.add_argument(
        "--trace",
        type=int,
        choices=(0, 1),
        default=1,
        help="tt mode: 1 runs decode through the model's ttnn trace, 0 runs it eagerly (default 1)",
    )
    parser.add_argument(
        "--system",
        default=os.environ.get("YT_SYSTEM", "n150"),
        help="system folder under models/<hf-model>/ (default: $YT_SYSTEM, else n150)",
    )
    parser.add_argument(
        "--device",
        choices=("auto", "card", "emulator"),
        default=None,
        help="card or emulated n150; sets BRINGUP_DEVICE (default: $BRINGUP_DEVICE, else auto)",
    )
    return parser


def resolve_model_path(hf_model: str, system: str) -> pathlib.Path:
    path = REPO_ROOT / "models" / hf_model / system / "functional" / "model.py"
    if not path.is_file():
        raise harness.UsageError(
            f"model file not found: {path}; --mode tt evaluates models/<hf-model>/<system>/functional/model.py"
        )
    return path


def build_prompt_ids(tokenizer, prefill_len: int | None) -> list[int]:
    """Return exactly `prefill_len` token ids of the default English prompt, repeated as needed.

    With `prefill_len` None, return the whole prompt, the one eval.py uses by default.
    """
    text = harness.DEFAULT_PROMPT_FILE.read_text(encoding="utf-8").removesuffix("\n")
    if prefill_len is None:
        return tokenizer(text)["input_ids"]
    # The blank line separates the repeats, as between two paragraphs.
    ids = tokenizer(text + "\n\n")["input_ids"]
    repeats = -(-prefill_len // len(ids))
    return (ids * repeats)[:prefill_len]


def check_arguments(args) -> None:
    if args.batch != 1:
        raise harness.UsageError(
            f"--batch {args.batch} is not supported; the eval runs batch 1 only"
        )
    if args.prefill_len is not None and args.prefill_len < 1:
        raise harness.UsageError(f"--prefill-len must be at least 1, got {args.prefill_len}")
    if args.decode_len < 1:
        raise harness.UsageError(f"--decode-len must be at least 1, got {args.decode_len}")


def run(args, metrics: dict) -> None:
    """Run the eval for parsed `args` and add its results to `metrics`."""
    check_arguments(args)
    model_path = resolve_model_path(args.hf_model, args.system) if args.mode == "tt" else None
    metrics["model_path"] = str(model_path) if model_path else None
    # select_device also rejects an invalid BRINGUP_DEVICE, which importing bringup would raise.
    device_kind = harness.select_device(args.device)
    metrics["device"] = device_kind if model_path else "cpu"

    from bringup import hf

    try:
        hf.reject_packaged_revision(args.hf_model, args.revision)
    except ValueError as exc:
        raise harness.UsageError(str(exc)) from exc
    tokenizer = hf.load_hf_tokenizer(args.hf_model, args.revision)
    prompt_ids = build_prompt_ids(tokenizer, args.prefill_len)
    metrics["prefill_len"] = len(prompt_ids)

    with tempfile.TemporaryDirectory(prefix="run_eval-") as folder:
        ids_file = pathlib.Path(folder) / "prompt_ids.json"
        ids_file.write_text(json.dumps(prompt_ids), encoding="utf-8")
        argv = [
            # eval.py's parser requires a model path; hf mode clears it again below.
            str(model_path) if model_path else "hf-self-check.py",
            "--model",
            args.hf_model,
            "--prompt_ids_file",
            str(ids_file),
            "--max_new_tokens",
            str(args.decode_len),
            "--max_seq_len",
            str(max(1024, len(prompt_ids) + args.decode_len)),
            "--trace",
            str(args.trace),
        ]
        if args.revision is not None:
            argv += ["--revision", args.revision]
        if args.device is not None:
            argv += ["--device", args.device]
        eval_args = harness.build_parser().parse_args(argv)
        if model_path is None:
            eval_args.model_path = None
        results = harness.run(eval_args)

    metrics.update(results)
    # decode_len from eval.py counts the tokens scored, which is less after an early EOS.
    metrics["requested_decode_len"] = args.decode_len
    if args.mode == "tt" and args.trace and not metrics["trace"]:
        print(
            f"warning: --trace 1 was requested, but {metrics['traced_decode_steps']} of "
            f"{metrics['decode_steps']} decode steps ran through ttnn.execute_trace",
            file=sys.stderr,
        )


@contextlib.contextmanager
def stdout_to_stderr():
    """Send Python's and C++'s writes to stdout (file descriptor 1) to stderr while active.

    ttnn's C++ runtime logs some lines straight to file descriptor 1, past sys.stdout.
    """
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


class MetricsArgumentParser(argparse.ArgumentParser):
    """An ArgumentParser that reports a bad command line as one error line plus a metrics line.

    Automation parses the YT_METRICS line of every run, including a run whose arguments are wrong.
    """

    def error(self, message):
        print(f"error: {message}", file=sys.stderr, flush=True)
        print(METRICS_PREFIX + json.dumps({"error": message}), flush=True)
        self.exit(2)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    metrics = {
        "mode": args.mode,
        "hf_model": args.hf_model,
        "revision": args.revision,
        "system": args.system,
        "batch": args.batch,
        "prefill_len": args.prefill_len,
        "decode_len": args.decode_len,
        "trace_requested": bool(args.trace) if args.mode == "tt" else False,
        "trace": False,
        "traced_decode_steps": None,
        "top1": None,
        "top5": None,
        "total": 0,
        "prefill_ms": None,
        "decode_ms_per_token": None,
        "model_path": None,
        "device": None,
    }
    status = 0
    try:
        # Everything the eval prints goes to stderr, so stdout contains only the YT_METRICS line.
        with stdout_to_stderr():
            run(args, metrics)
    except harness.UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        metrics["error"] = str(exc)
        status = 2
    except Exception as exc:  # Any failure of the eval is reported in the metrics line.
        traceback.print_exc()
        metrics["error"] = f"{type(exc).__name__}: {exc}"
        status = 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        metrics["error"] = "interrupted"
        status = 130
    sys.stderr.flush()
    print(METRICS_PREFIX + json.dumps(metrics), flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
