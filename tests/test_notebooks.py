"""Tests of the bring-up notebooks: their committed outputs, and a full run of all of them (slow)."""

import json
import pathlib
import re
import time

import nbformat
import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
CELL_TIMEOUT_S = 600
MAX_NOTEBOOK_BYTES = 1_000_000
# Paths of this machine that must not show in committed outputs.
MACHINE_PATHS = ("/work/", "/root/", "/home/", "/tmp/")
# IPython colors its tracebacks with ANSI escape sequences, which a failure message strips.
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")
# The device opens right after the imports, except in notebook 07 (its sixth code cell). That
# notebook runs eval.py first, which opens the device in its own process, and a card can be open
# in one process at a time.
DEVICE_OPEN_WITHIN_CODE_CELLS = 6


def read_notebook(path: pathlib.Path):
    return nbformat.read(path, as_version=4)


def code_cells(notebook) -> list:
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def output_texts(cell) -> list:
    """Return the text of a code cell's outputs; images are skipped, as base64 can hold any path."""
    texts = []
    for output in cell.get("outputs", []):
        if output.output_type == "stream":
            texts.append(output.text)
        elif output.output_type == "error":
            texts.extend([output.ename, output.evalue, *output.traceback])
        else:
            for mime, value in output.get("data", {}).items():
                if mime.startswith("text/") or mime == "application/json":
                    texts.append(value if isinstance(value, str) else json.dumps(value))
    return texts


def test_notebooks_exist():
    assert NOTEBOOKS, f"no notebooks in {NOTEBOOKS_DIR}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
class TestCommittedNotebook:
    def test_size_below_limit(self, path):
        size = path.stat().st_size
        assert size < MAX_NOTEBOOK_BYTES, f"{path.name} is {size} bytes; clear large outputs"

    def test_kernel_is_python3(self, path):
        assert read_notebook(path).metadata.get("kernelspec", {}).get("name") == "python3"

    def test_first_cell_is_markdown(self, path):
        notebook = read_notebook(path)
        assert notebook.cells, f"{path.name} has no cells"
        assert notebook.cells[0].cell_type == "markdown"

    def test_outputs_from_one_clean_run(self, path):
        counts = [cell.execution_count for cell in code_cells(read_notebook(path))]
        expected = list(range(1, len(counts) + 1))
        assert counts == expected, (
            f"{path.name}: execution counts {counts}; re-run the notebook top to bottom"
        )

    def test_no_error_outputs(self, path):
        for number, cell in enumerate(read_notebook(path).cells, start=1):
            errors = [out for out in cell.get("outputs", []) if out.output_type == "error"]
            assert not errors, f"{path.name} cell {number}: {errors[0].ename}: {errors[0].evalue}"

    def test_no_machine_paths_in_outputs(self, path):
        for number, cell in enumerate(read_notebook(path).cells, start=1):
            if cell.cell_type != "code":
                continue
            for text in output_texts(cell):
                for machine_path in MACHINE_PATHS:
                    assert machine_path not in text, (
                        f"{path.name} cell {number}: output contains {machine_path!r}"
                    )

    def test_device_opened_near_top(self, path):
        cells = code_cells(read_notebook(path))[:DEVICE_OPEN_WITHIN_CODE_CELLS]
        assert any("open_device(" in cell.source for cell in cells), (
            f"{path.name}: none of the first {DEVICE_OPEN_WITHIN_CODE_CELLS} code cells "
            "calls open_device("
        )

    def test_last_code_cell_closes_device(self, path):
        cells = code_cells(read_notebook(path))
        assert cells, f"{path.name} has no code cells"
        assert "close_device(" in cells[-1].source, (
            f"{path.name}: last code cell: {cells[-1].source!r}"
        )


@pytest.mark.slow
def test_all_notebooks_run_in_order(capsys):
    """Execute every notebook top to bottom, in file-name order, on in-memory copies."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError

    assert NOTEBOOKS, f"no notebooks in {NOTEBOOKS_DIR}"
    times = {}
    for path in NOTEBOOKS:
        notebook = read_notebook(path)  # an in-memory copy, so the committed file is never written
        client = NotebookClient(
            notebook,
            timeout=CELL_TIMEOUT_S,
            kernel_name="python3",
            resources={"metadata": {"path": str(NOTEBOOKS_DIR)}},
        )
        start = time.perf_counter()
        failure = None
        with client.setup_kernel():
            for index, cell in enumerate(notebook.cells):
                try:
                    client.execute_cell(cell, index)
                except (CellExecutionError, CellTimeoutError) as error:
                    first_line = cell.source.splitlines()[0] if cell.source else ""
                    failure = (
                        f"{path.name} cell {index + 1} ({first_line!r}) failed:\n"
                        + ANSI_ESCAPE.sub("", str(error))
                    )
                    break
        # Outside the except block, so the report does not repeat the error as a chained one.
        if failure is not None:
            pytest.fail(failure, pytrace=False)
        times[path.name] = time.perf_counter() - start
        with capsys.disabled():
            print(f"\n{path.name}: {times[path.name]:.0f} s", end="")
    with capsys.disabled():
        print(f"\nall {len(times)} notebooks: {sum(times.values()):.0f} s")
