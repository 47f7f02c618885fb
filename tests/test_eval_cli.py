"""eval.py as a command: bad input fails fast with one error line, and a stand-in model scores 1.0.

The stand-in model.py wraps the HF model in pure torch, so these tests check the harness and not
a ttnn model. The runs that reach a device use the emulated n150.
"""

import json
import pathlib
import subprocess
import sys

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
EVAL_PY = REPO_ROOT / "eval.py"
PROMPTS = REPO_ROOT / "prompts"

# A stand-in for a ttnn model.py: the HF reference itself, with the trace attributes of a real
# model. It counts a decode step as traced when use_trace is set, like a model that replays its
# decode trace with ttnn.execute_trace.
STAND_IN_MODEL = """
import torch


class StandInModel(torch.nn.Module):
    def __init__(self, hf_model):
        super().__init__()
        self.hf_model = hf_model
        self.use_trace = True
        self.traced_decode_steps = 0

    def forward(self, input_ids, past_key_values=None, use_cache=True, **kwargs):
        if past_key_values is not None and self.use_trace:
            self.traced_decode_steps += 1
        return self.hf_model(input_ids, past_key_values=past_key_values, use_cache=use_cache)


def build_model(hf_model, tt_device, max_seq_len):
    print(f"stand-in built on {tt_device!r} with max_seq_len {max_seq_len}", flush=True)
    return StandInModel(hf_model)
"""

# A stand-in that swaps the two best logits at decode step 3, which scores new token 3.
SWAPPING_MODEL = STAND_IN_MODEL.replace(
    "        return self.hf_model(input_ids, past_key_values=past_key_values, use_cache=use_cache)",
    """        outputs = self.hf_model(input_ids, past_key_values=past_key_values, use_cache=use_cache)
        if past_key_values is not None:
            self.decode_calls = getattr(self, "decode_calls", 0) + 1
            if self.decode_calls == 3:
                last = outputs.logits[0, -1]
                best, second = torch.topk(last, 2).indices.tolist()
                last[best], last[second] = last[second].clone(), last[best].clone()
        return outputs""",
)

# A model.py whose build_model fails after receiving the device. At exit it prints whether that
# device is still open, which shows whether eval.py closed it on the error path.
FAILING_BUILD_MODEL = """
import atexit

DEVICES = []


def report_devices():
    print(f"device open at exit: {[device.is_open for device in DEVICES]}", flush=True)


atexit.register(report_devices)


def build_model(hf_model, tt_device, max_seq_len):
    DEVICES.append(tt_device)
    raise RuntimeError("stand-in build failure")
"""


def run_eval_py(*args, env_update=None, timeout=600):
    env = None
    if env_update is not None:
        import os

        env = {**os.environ, **env_update}
    return subprocess.run(
        [sys.executable, str(EVAL_PY), *map(str, args)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


def assert_usage_error(result, *fragments):
    """Assert exit status 2 with exactly one `error:` line that contains every fragment."""
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1, result.stderr
    assert result.stderr.rstrip().splitlines()[-1] == error_lines[0]
    for fragment in fragments:
        assert fragment in error_lines[0]
    # Validation happens before any device is opened.
    assert "Opened device" not in result.stdout
    return error_lines[0]


def parse_accuracy(stdout, label):
    for line in stdout.splitlines():
        if line.startswith(f"{label} accuracy:"):
            return float(line.rsplit("(", 1)[1].rstrip(")"))
    raise AssertionError(f"no '{label} accuracy' line in:\n{stdout}")


@pytest.fixture
def stand_in(tmp_path):
    path = tmp_path / "model.py"
    path.write_text(STAND_IN_MODEL)
    return path


@pytest.fixture(scope="module")
def vocab_size():
    from bringup import hf

    return hf.load_hf_config(hf.PACKAGED_MODEL_ID).vocab_size


def write_json(path, value):
    path.write_text(json.dumps(value))
    return path


# ---------------------------------------------------------------------------------------------
# Bad input.


def test_missing_model_path(tmp_path):
    result = run_eval_py(tmp_path / "nope" / "model.py")
    assert_usage_error(result, "model file not found", "nope")


def test_model_path_not_python(tmp_path):
    text_file = tmp_path / "model.txt"
    text_file.write_text("build_model = None\n")
    assert_usage_error(run_eval_py(text_file), "is not a .py file")


def test_model_path_is_directory(tmp_path):
    folder = tmp_path / "model.py"
    folder.mkdir()
    assert_usage_error(run_eval_py(folder), "is not a .py file")


def test_model_without_build_model(tmp_path):
    path = tmp_path / "model.py"
    path.write_text("def make_model(hf_model, device, max_seq_len):\n    return None\n")
    assert_usage_error(run_eval_py(path), "does not define build_model")


@pytest.mark.parametrize("prompt", ["", "   \n\t "])
def test_empty_prompt(stand_in, prompt):
    assert_usage_error(run_eval_py(stand_in, "--prompt", prompt), "--prompt is empty")


def test_empty_prompt_file(stand_in, tmp_path):
    prompt_file = tmp_path / "prompt.txt"
    prompt_file.write_text("\n  \n")
    assert_usage_error(run_eval_py(stand_in, "--prompt_file", prompt_file), "is empty")


def test_missing_prompt_file(stand_in, tmp_path):
    missing = tmp_path / "absent.txt"
    assert_usage_error(
        run_eval_py(stand_in, "--prompt_file", missing), "--prompt_file", "not found"
    )


def test_prompt_file_not_utf8(stand_in, tmp_path):
    prompt_file = tmp_path / "latin1.txt"
    prompt_file.write_bytes("Caf\xe9 au lait in Lisbon".encode("latin-1"))
    assert_usage_error(run_eval_py(stand_in, "--prompt_file", prompt_file), "not valid UTF-8")


def test_prompt_ids_file_not_json(stand_in, tmp_path):
    ids_file = tmp_path / "ids.json"
    ids_file.write_text("[504, 3575,")
    assert_usage_error(run_eval_py(stand_in, "--prompt_ids_file", ids_file), "not valid JSON")


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ({"ids": [1, 2]}, "contains a JSON dict"),
        ("504 3575", "contains a JSON str"),
        ([504, "3575"], 'element 1 is "3575"'),
        ([504, 3575.0], "element 1 is 3575.0"),
        ([504, True], "element 1 is true"),
        ([[504, 3575]], "element 0 is [504, 3575]"),
        ([], "empty list"),
    ],
)
def test_prompt_ids_file_invalid(stand_in, tmp_path, value, fragment):
    ids_file = write_json(tmp_path / "ids.json", value)
    assert_usage_error(run_eval_py(stand_in, "--prompt_ids_file", ids_file), fragment)


@pytest.mark.parametrize("bad_id", ["vocab", -1])
def test_prompt_ids_outside_vocabulary(stand_in, tmp_path, vocab_size, bad_id):
    bad_id = vocab_size if bad_id == "vocab" else bad_id
    ids_file = write_json(tmp_path / "ids.json", [504, 3575, bad_id, 282])
    result = run_eval_py(stand_in, "--prompt_ids_file", ids_file)
    assert_usage_error(result, "outside the vocabulary", f"0..{vocab_size - 1}", f"first {bad_id}")


def test_prompt_file_and_ids_file_together(stand_in, tmp_path):
    ids_file = write_json(tmp_path / "ids.json", [504, 3575])
    result = run_eval_py(
        stand_in, "--prompt_file", PROMPTS / "bread.txt", "--prompt_ids_file", ids_file
    )
    assert_usage_error(
        result, "pass only one prompt option, got --prompt_file and --prompt_ids_file"
    )


def test_ids_longer_than_max_seq_len(stand_in, tmp_path):
    ids_file = write_json(tmp_path / "ids.json", [504] * 60)
    result = run_eval_py(
        stand_in, "--prompt_ids_file", ids_file, "--max_new_tokens", 10, "--max_seq_len", 64
    )
    assert_usage_error(result, "prompt (60 tokens)", "70 tokens exceeds --max_seq_len 64")


def test_text_prompt_longer_than_max_seq_len(stand_in):
    # bread.txt is about 200 tokens, so 200 + 100 does not fit in 256.
    result = run_eval_py(stand_in, "--prompt_file", PROMPTS / "bread.txt", "--max_seq_len", 256)
    assert_usage_error(result, "exceeds --max_seq_len 256")


@pytest.mark.parametrize("count", [0, -3])
def test_max_new_tokens_not_positive(stand_in, count):
    result = run_eval_py(stand_in, "--max_new_tokens", count)
    assert_usage_error(result, f"--max_new_tokens must be at least 1, got {count}")


def test_invalid_bringup_device(stand_in):
    result = run_eval_py(stand_in, env_update={"BRINGUP_DEVICE": "gpu"})
    assert_usage_error(result, "BRINGUP_DEVICE='gpu' is invalid")


def test_invalid_device_option(stand_in):
    result = run_eval_py(stand_in, "--device", "gpu")
    assert_usage_error(result, "argument --device", "invalid choice")


@pytest.mark.skipif(
    bool(list(pathlib.Path("/dev").glob("tenstorrent*"))), reason="a card is present"
)
def test_card_requested_without_card(stand_in):
    result = run_eval_py(stand_in, "--device", "card")
    assert_usage_error(result, "/dev/tenstorrent* does not exist")


def test_emulator_device_id_other_than_zero(stand_in):
    result = run_eval_py(stand_in, "--device", "emulator", "--device_id", "1")
    assert_usage_error(result, "--device_id 1 not found", "device 0")


def test_revision_of_packaged_model(stand_in):
    result = run_eval_py(stand_in, "--revision", "main")
    assert_usage_error(result, "revision 'main' cannot be loaded", "local folder")


# ---------------------------------------------------------------------------------------------
# Full runs with the stand-in model on the emulated n150.


def test_stand_in_scores_perfectly_with_trace(stand_in):
    result = run_eval_py(
        stand_in,
        "--device",
        "emulator",
        "--prompt_file",
        PROMPTS / "bread.txt",
        "--max_new_tokens",
        8,
    )
    assert result.returncode == 0, result.stderr
    assert "Opened device 0: emulated n150" in result.stdout
    assert "stand-in built on <emulated n150 device 0, open> with max_seq_len 1024" in result.stdout
    assert parse_accuracy(result.stdout, "Top-1") == 1.0
    assert parse_accuracy(result.stdout, "Top-5") == 1.0
    assert "Decode length: 8 reference tokens scored (requested 8)" in result.stdout
    assert "Decode trace: on, 7 of 7 decode steps through ttnn.execute_trace" in result.stdout


def test_stand_in_without_trace(stand_in):
    result = run_eval_py(
        stand_in,
        "--device",
        "emulator",
        "--prompt_file",
        PROMPTS / "lighthouse.txt",
        "--max_new_tokens",
        6,
        "--trace",
        0,
    )
    assert result.returncode == 0, result.stderr
    assert parse_accuracy(result.stdout, "Top-1") == 1.0
    assert "Decode trace: off" in result.stdout


def test_stand_in_prefill_decode(stand_in):
    prompt = "Potters in the village still fire their bowls in a wood kiln"
    result = run_eval_py(
        stand_in,
        "--device",
        "emulator",
        "--prompt",
        prompt,
        "--max_new_tokens",
        5,
        "--prefill_decode",
    )
    assert result.returncode == 0, result.stderr
    prompt_len = int(result.stdout.split("Prefill length: ", 1)[1].split(" ", 1)[0])
    assert "(token by token)" in result.stdout
    assert parse_accuracy(result.stdout, "Top-1") == 1.0
    # The prompt's tokens after the first and the 4 scored decode steps all use the decode path.
    expected_steps = prompt_len - 1 + 4
    assert f"Decode trace: on, {expected_steps} of {expected_steps} decode steps" in result.stdout


def test_reference_stopping_at_eos(stand_in, tmp_path):
    from bringup import hf

    tokenizer = hf.load_hf_tokenizer(hf.PACKAGED_MODEL_ID)
    chat = [
        {"role": "user", "content": "Reply with one word: what colour is the sky on a clear day?"}
    ]
    ids = tokenizer.apply_chat_template(chat, add_generation_prompt=True)["input_ids"]
    ids_file = write_json(tmp_path / "ids.json", ids)

    result = run_eval_py(
        stand_in, "--device", "emulator", "--prompt_ids_file", ids_file, "--max_new_tokens", 60
    )
    assert result.returncode == 0, result.stderr
    assert "The reference stopped at EOS after" in result.stdout
    scored = int(result.stdout.split("Decode length: ", 1)[1].split(" ", 1)[0])
    assert 1 <= scored < 60
    assert (
        "reference tokens scored (requested 60, the reference stopped early at EOS)"
        in result.stdout
    )
    assert parse_accuracy(result.stdout, "Top-1") == 1.0


def test_top1_miss_reported(tmp_path):
    path = tmp_path / "model.py"
    path.write_text(SWAPPING_MODEL)
    assert SWAPPING_MODEL != STAND_IN_MODEL
    prompt = "The best way to learn a new language is"
    result = run_eval_py(path, "--device", "emulator", "--prompt", prompt, "--max_new_tokens", 8)
    assert result.returncode == 0, result.stderr
    assert parse_accuracy(result.stdout, "Top-1") == 0.875
    assert parse_accuracy(result.stdout, "Top-5") == 1.0
    assert "Top-1 misses: 1 " in result.stdout
    assert "  step 3: expected " in result.stdout


def test_build_failure_closes_device(tmp_path):
    path = tmp_path / "model.py"
    path.write_text(FAILING_BUILD_MODEL)
    result = run_eval_py(
        path, "--device", "emulator", "--prompt", "Hello there", "--max_new_tokens", 2
    )
    assert result.returncode == 1
    assert "RuntimeError: stand-in build failure" in result.stderr
    assert "device open at exit: [False]" in result.stdout
