"""Helpers for the bring-up notebooks."""

import importlib.util
import pathlib
import sys

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
MODEL_PATH = REPO_ROOT / "models/HuggingFaceTB/SmolLM2-135M-Instruct/n150/functional/model.py"
MODEL_MODULE = "smollm2_model"


def import_model():
    """Import the exported model.py as the module `smollm2_model` and return it.

    Later notebooks build on the code that earlier notebooks exported, as a package built with
    nbdev imports its own exported modules: after `import_model()`,
    `from smollm2_model import RMSNorm` works. Re-export after editing an exported cell.
    """
    if MODEL_MODULE in sys.modules:
        return sys.modules[MODEL_MODULE]
    spec = importlib.util.spec_from_file_location(MODEL_MODULE, MODEL_PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[MODEL_MODULE] = module
    spec.loader.exec_module(module)
    return module
