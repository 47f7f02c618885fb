"""scripts/run_eval.py with the command line of the yieldthought-agents bringup checker.

Each run must print exactly one YT_METRICS= line of JSON on stdout, also when it fails. The tt
mode runs use a copy of the repo's harness files in a temporary folder, so that a stand-in
model.py can sit at models/<hf-model>/<system>/functional/model.py. The slow test runs the real
SmolLM2 model.py.
"""

import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
MODEL_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
REAL_MODEL_PY = REPO_ROOT / "models" / MODEL_ID / "n150" / "functional" / "model.py"
# What scripts/run_eval.py needs from the repo: eval.py, bringup, the prompts and the emulator.
HARNESS_PATHS = ["eval.py", "scripts/run_eval.py", "bringup", "prompts", "ttnn_emulator"]

# A stand-in for a ttnn model.py that wraps the HF model in pure torch. TRACED_STEP is 1 when it
# counts a decode step as traced under use_trace, like a model that replays a ttnn trace, and 0
# for a model that ignores use_trace. FAIL_AT_STEP makes the given decode step raise.
STAND_IN_MODEL = """
import torch

TRACED_STEP = {traced_step}
FAIL_AT_STEP = {fail_at_step}


class StandInModel(torch.nn.Module):
    def __init__(self, hf_model):
        super().__init__()
        self.hf_model = hf_model
        self.use_trace = True
        self.traced_decode_steps = 0
        self.decode_steps = 0

    def forward(self, input_ids, past_key_values=None, use_cache=True, **kwargs):
        if past_key_values is not None:
            self.decode_steps += 1
            if self.decode_steps == FAIL_AT_STEP:
                raise RuntimeError("stand-in decode failure")
            if self.use_trace:
                self.traced_decode_steps += TRACED_STEP
        return self.hf_model(input_ids, cache=past_key_values, use_cache=use_cache)


def build_model(hf_model, tt_device, max_seq_len):
    return StandInModel(hf_model)
"""


def run_eval(*args, repo_root=REPO_ROOT, timeout=900):
    return subprocess.run(
        [sys.executable, str(repo_root / "scripts" / "run_eval.py"), *map(str, args)],
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def metrics_of(result):
    """Return the JSON of the only YT_METRICS= line on stdout."""
    lines = [line for line in result.stdout.splitlines() if line.startswith("YT_METRICS=")]
    assert len(lines) == 1, result.stdout
    return json.loads(lines[0].split("=", 1)[1])


def harness_copy(root: pathlib.Path, model_source: str, system: str = "n150") -> pathlib.Path:
    """Copy the harness into `root` and put `model_source` at the model.py path of MODEL_ID."""
    for relative in HARNESS_PATHS:
        source = REPO_ROOT / relative
        target = root / relative
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    model_path = root / "models" / MODEL_ID / system / "functional" / "model.py"
    model_path.parent.mkdir(parents=True)
    model_path.write_text(model_source)
    return root


def stand_in(traced_step=1, fail_at_step=0):
    return STAND_IN_MODEL.format(traced_step=traced_step, fail_at_step=fail_at_step)


def test_hf_mode_scores_itself_perfectly():
    result = run_eval(
        "--mode", "hf", "--hf-model", MODEL_ID, "--prefill-len", 32, "--decode-len", 12
    )
    assert result.returncode == 0, result.stderr
    metrics = metrics_of(result)
    assert metrics["mode"] == "hf"
    assert metrics["top1"] == 1.0
    assert metrics["top5"] == 1.0
    assert metrics["prefill_len"] == 32
    assert metrics["decode_len"] == 12
    assert metrics["total"] == 12
    assert metrics["batch"] == 1
    assert metrics["trace"] is False
    assert metrics["device"] == "cpu"
    assert "error" not in metrics
    # Progress goes to stderr, so stdout is the metrics line alone.
    assert result.stdout.strip().splitlines() == [f"YT_METRICS={json.dumps(metrics)}"]


def test_batch_other_than_one_rejected():
    result = run_eval("--mode", "hf", "--hf-model", MODEL_ID, "--batch", 2)
    assert result.returncode == 2
    assert "error: --batch 2 is not supported" in result.stderr
    metrics = metrics_of(result)
    assert "--batch 2 is not supported" in metrics["error"]
    assert metrics["top1"] is None


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["--mode", "tt", "--hf-model", MODEL_ID, "--trace", 2],
            "argument --trace: invalid choice",
        ),
        (["--hf-model", MODEL_ID], "the following arguments are required: --mode"),
        (
            ["--mode", "hf", "--hf-model", MODEL_ID, "--prefill-len", "abc"],
            "argument --prefill-len: invalid int",
        ),
    ],
)
def test_bad_command_line_still_prints_metrics(args, message):
    result = run_eval(*args)
    assert result.returncode == 2
    assert f"error: {message}" in result.stderr
    assert message in metrics_of(result)["error"]


def test_missing_model_py_reported():
    result = run_eval("--mode", "tt", "--hf-model", MODEL_ID, "--system", "nosuchsystem")
    assert result.returncode == 2
    assert "model file not found" in result.stderr
    metrics = metrics_of(result)
    assert "nosuchsystem/functional/model.py" in metrics["error"]
    assert metrics["system"] == "nosuchsystem"
    assert metrics["trace"] is False


def test_system_from_environment():
    env = {**os.environ, "YT_SYSTEM": "envsystem"}
    result = subprocess.run(
        [sys.executable, "scripts/run_eval.py", "--mode", "tt", "--hf-model", MODEL_ID],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 2
    metrics = metrics_of(result)
    assert metrics["system"] == "envsystem"
    assert "envsystem/functional/model.py" in metrics["error"]


def test_revision_of_packaged_model_rejected():
    result = run_eval("--mode", "hf", "--hf-model", MODEL_ID, "--revision", "v1.0")
    assert result.returncode == 2
    metrics = metrics_of(result)
    assert "revision 'v1.0' cannot be loaded" in metrics["error"]
    assert metrics["revision"] == "v1.0"


def test_tt_mode_with_trace(tmp_path):
    root = harness_copy(tmp_path, stand_in())
    result = run_eval(
        "--mode", "tt", "--hf-model", MODEL_ID, "--prefill-len", 40, "--decode-len", 9, "--trace", 1,
        "--device", "emulator", repo_root=root,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    metrics = metrics_of(result)
    assert metrics["top1"] == 1.0
    assert metrics["top5"] == 1.0
    assert metrics["trace"] is True
    assert metrics["traced_decode_steps"] == 8
    assert metrics["decode_steps"] == 8
    assert metrics["device"] == "emulator"
    assert metrics["model_path"] == str(
        root / "models" / MODEL_ID / "n150" / "functional" / "model.py"
    )
    assert metrics["prefill_ms"] > 0
    assert metrics["decode_ms_per_token"] > 0


def test_tt_mode_without_trace(tmp_path):
    root = harness_copy(tmp_path, stand_in())
    result = run_eval(
        "--mode", "tt", "--hf-model", MODEL_ID, "--prefill-len", 24, "--decode-len", 5, "--trace", 0,
        "--device", "emulator", repo_root=root,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    metrics = metrics_of(result)
    assert metrics["trace"] is False
    assert metrics["trace_requested"] is False
    assert metrics["traced_decode_steps"] == 0


def test_tt_mode_model_ignoring_trace(tmp_path):
    root = harness_copy(tmp_path, stand_in(traced_step=0))
    result = run_eval(
        "--mode", "tt", "--hf-model", MODEL_ID, "--prefill-len", 24, "--decode-len", 5, "--trace", 1,
        "--device", "emulator", repo_root=root,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    metrics = metrics_of(result)
    assert metrics["trace_requested"] is True
    assert metrics["trace"] is False
    assert "warning: --trace 1 was requested, but 0 of 4 decode steps" in result.stderr


def test_tt_mode_model_failure_reported(tmp_path):
    root = harness_copy(tmp_path, stand_in(fail_at_step=3))
    result = run_eval(
        "--mode", "tt", "--hf-model", MODEL_ID, "--prefill-len", 24, "--decode-len", 6,
        "--device", "emulator", repo_root=root,
    )  # fmt: skip
    assert result.returncode == 1
    assert "Traceback" in result.stderr
    metrics = metrics_of(result)
    assert metrics["error"] == "RuntimeError: stand-in decode failure"
    assert metrics["top1"] is None
    assert metrics["device"] == "emulator"


@pytest.mark.slow
@pytest.mark.parametrize("trace", [1, 0])
def test_real_model_accuracy(trace):
    if not REAL_MODEL_PY.is_file():
        pytest.skip(f"{REAL_MODEL_PY.relative_to(REPO_ROOT)} does not exist yet")
    result = run_eval("--mode", "tt", "--hf-model", MODEL_ID, "--trace", trace, timeout=3600)
    assert result.returncode == 0, result.stderr[-4000:]
    metrics = metrics_of(result)
    # The metrics include each top-1 miss with HF's logit margin, which separates near-ties from model errors.
    assert metrics["top1"] >= 0.95, metrics
    assert metrics["top5"] >= 0.99, metrics
    assert metrics["trace"] is bool(trace), metrics
    if trace:
        assert metrics["traced_decode_steps"] == metrics["decode_steps"]
    # ttnn's C++ log lines go to stderr too, so stdout is the metrics line alone.
    assert len(result.stdout.strip().splitlines()) == 1, result.stdout
