"""Tests of scripts/export_model.py: the committed model.py and the exporter's error handling."""

import importlib.util
import json
import pathlib
import subprocess
import sys

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
EXPORTER = REPO_ROOT / "scripts" / "export_model.py"
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
MARKER = "#| export"


def run_exporter(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(EXPORTER), *map(str, args)],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        check=False,
    )


def load_exporter():
    spec = importlib.util.spec_from_file_location("export_model", EXPORTER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_notebook(path: pathlib.Path, cells: list) -> None:
    """Write a minimal nbformat 4 notebook; `cells` is a list of (cell_type, source)."""
    notebook = {
        "cells": [
            {"cell_type": cell_type, "metadata": {}, "source": source}
            | ({"execution_count": None, "outputs": []} if cell_type == "code" else {})
            for cell_type, source in cells
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path.write_text(json.dumps(notebook), encoding="utf-8")


def test_committed_model_matches_fresh_export():
    result = run_exporter("--check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "matches a fresh export" in result.stdout


def test_export_is_deterministic():
    exporter = load_exporter()
    first, first_cells = exporter.export(NOTEBOOKS_DIR)
    second, second_cells = exporter.export(NOTEBOOKS_DIR)
    assert first == second
    assert first_cells == second_cells


def test_output_outside_models_rejected(tmp_path):
    output = tmp_path / "model.py"
    result = run_exporter("--output", output)
    assert result.returncode == 2
    assert "the output must be a .py file under" in result.stderr
    assert not output.exists()


def test_import_in_later_cell_rejected(tmp_path):
    write_notebook(
        tmp_path / "00_tiny.ipynb",
        [
            ("markdown", "# A tiny notebook"),
            ("code", f"{MARKER}\nimport math\n\nTWO_PI = 2 * math.pi"),
            ("code", f"{MARKER}\nimport os\n\nHOME = os.sep"),
        ],
    )
    result = run_exporter("--notebooks", tmp_path, "--check")
    assert result.returncode == 2
    assert "00_tiny.ipynb cell 3" in result.stderr
    assert "imports belong in the first exported cell" in result.stderr


def test_notebooks_without_markers_rejected(tmp_path):
    write_notebook(tmp_path / "00_plain.ipynb", [("code", "x = 1")])
    result = run_exporter("--notebooks", tmp_path, "--check")
    assert result.returncode == 2
    assert "no cell" in result.stderr
    assert f"starts with {MARKER!r}" in result.stderr


def test_malformed_notebook_one_line_error(tmp_path):
    (tmp_path / "00_broken.ipynb").write_text('{"cells": [', encoding="utf-8")
    result = run_exporter("--notebooks", tmp_path, "--check")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: 00_broken.ipynb is not a readable notebook")
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "content, message",
    [
        ("[]", "is not a notebook: it has no list of cells"),
        ('{"cells": null}', "is not a notebook: it has no list of cells"),
        ('{"cells": [{"cell_type": "code", "source": 7}]}', "cell 1: source is not text"),
    ],
)
def test_notebook_of_wrong_structure_one_line_error(tmp_path, content, message):
    (tmp_path / "00_odd.ipynb").write_text(content, encoding="utf-8")
    result = run_exporter("--notebooks", tmp_path, "--check")
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: 00_odd.ipynb {message}"


def test_output_that_is_a_directory_rejected(tmp_path):
    target = REPO_ROOT / "models" / "a_directory_named_like_a_module.py"
    target.mkdir()
    try:
        result = run_exporter("--output", target)
    finally:
        target.rmdir()
    assert result.returncode == 2
    assert "refusing to write" in result.stderr


@pytest.mark.parametrize("notebook", sorted(NOTEBOOKS_DIR.glob("*.ipynb")), ids=lambda p: p.name)
def test_exported_cells_start_with_marker_line(notebook):
    """A marker anywhere but on the first line would silently keep a cell out of model.py."""
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    for number, cell in enumerate(cells, start=1):
        lines = "".join(cell.get("source", [])).splitlines()
        for index, line in enumerate(lines):
            # Also catches "# | export", which is what a formatter makes of the marker.
            if line.replace(" ", "") != MARKER.replace(" ", ""):
                continue
            where = f"{notebook.name} cell {number} line {index + 1}"
            assert cell["cell_type"] == "code", f"{where}: export marker in a markdown cell"
            assert index == 0, f"{where}: the export marker must be the first line"
            assert line.strip() == MARKER, f"{where}: write the marker exactly as {MARKER!r}"
