#!/usr/bin/env python
"""Export the model code of the bring-up notebooks into model.py.

A code cell belongs to model.py when its first line is the marker `#| export`. The exporter takes
those cells from `notebooks/*.ipynb` in file-name order, drops the marker, joins the cells with two
blank lines and formats the result with `ruff format`. Imports may appear in the first exported
cell only, so the file has them once at the top. That cell also opens with the module docstring.

Usage:
    python scripts/export_model.py            # write model.py (only if it changed)
    python scripts/export_model.py --check    # exit 1 if model.py differs from a fresh export
"""

import argparse
import ast
import difflib
import json
import pathlib
import subprocess
import sys

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
MARKER = "#| export"
DEFAULT_OUTPUT = REPO_ROOT / "models/HuggingFaceTB/SmolLM2-135M-Instruct/n150/functional/model.py"


class ExportError(Exception):
    """A notebook or an argument that the exporter cannot use."""


def exported_cells(notebooks_dir: pathlib.Path) -> list:
    """Return (notebook name, cell number, source without marker) for every marked cell."""
    notebooks = sorted(notebooks_dir.glob("*.ipynb"))
    if not notebooks:
        raise ExportError(f"no notebooks found in {notebooks_dir}")
    cells = []
    for path in notebooks:
        try:
            notebook = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ExportError(f"{path.name} is not a readable notebook: {error}") from None
        cell_list = notebook.get("cells") if isinstance(notebook, dict) else None
        if not isinstance(cell_list, list):
            raise ExportError(f"{path.name} is not a notebook: it has no list of cells")
        for number, cell in enumerate(cell_list, start=1):
            if not isinstance(cell, dict) or cell.get("cell_type") != "code":
                continue
            source = cell.get("source", [])
            if isinstance(source, list) and all(isinstance(line, str) for line in source):
                source = "".join(source)
            if not isinstance(source, str):
                raise ExportError(f"{path.name} cell {number}: source is not text")
            first_line, _, rest = source.partition("\n")
            if first_line.strip() == MARKER:
                cells.append((path.name, number, rest.strip("\n")))
    if not cells:
        raise ExportError(f"no cell in {notebooks_dir} starts with {MARKER!r}")
    return cells


def check_imports(cells: list) -> None:
    """Raise ExportError if a marked cell other than the first one imports anything."""
    for index, (notebook, number, source) in enumerate(cells):
        try:
            tree = ast.parse(source)
        except SyntaxError as error:
            raise ExportError(f"{notebook} cell {number}: invalid Python: {error}") from None
        if index == 0:
            continue
        for node in tree.body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                raise ExportError(
                    f"{notebook} cell {number}: imports belong in the first exported cell "
                    f"({cells[0][0]} cell {cells[0][1]}), so model.py has them once at the top"
                )


def ruff_format(source: str) -> str:
    ruff = pathlib.Path(sys.executable).with_name("ruff")
    command = [
        str(ruff) if ruff.exists() else "ruff",
        "format",
        "--stdin-filename",
        "model.py",
        "-",
    ]
    try:
        result = subprocess.run(
            command, input=source, capture_output=True, text=True, cwd=REPO_ROOT, check=False
        )
    except FileNotFoundError:
        raise ExportError("ruff is not installed; run `make setup`") from None
    if result.returncode != 0:
        raise ExportError(f"ruff format failed: {result.stderr.strip()}")
    return result.stdout


def export(notebooks_dir: pathlib.Path) -> tuple:
    """Return the text of model.py and the list of cells it came from."""
    cells = exported_cells(notebooks_dir)
    check_imports(cells)
    return ruff_format("\n\n\n".join(source for _, _, source in cells) + "\n"), cells


def resolve_output(output: pathlib.Path) -> pathlib.Path:
    output = output.resolve()
    models_dir = (REPO_ROOT / "models").resolve()
    if models_dir not in output.parents or output.suffix != ".py" or output.is_dir():
        raise ExportError(
            f"refusing to write {output}: the output must be a .py file under {models_dir}"
        )
    return output


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description="Export the notebooks' #| export cells into model.py"
    )
    parser.add_argument(
        "--notebooks",
        type=pathlib.Path,
        default=REPO_ROOT / "notebooks",
        help="folder of the ordered notebooks (default: notebooks/)",
    )
    parser.add_argument(
        "--output",
        type=pathlib.Path,
        default=DEFAULT_OUTPUT,
        help="model.py to write, under models/ (default: the SmolLM2 n150 model)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if the output differs from a fresh export",
    )
    args = parser.parse_args(argv)

    try:
        output = resolve_output(args.output)
        text, cells = export(args.notebooks)
    except ExportError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    relative = output.relative_to(REPO_ROOT)
    current = output.read_text(encoding="utf-8") if output.exists() else None

    if args.check:
        if current == text:
            print(f"{relative} matches a fresh export of {len(cells)} cells")
            return 0
        diff = difflib.unified_diff(
            (current or "").splitlines(keepends=True),
            text.splitlines(keepends=True),
            fromfile=f"{relative} (committed)",
            tofile=f"{relative} (fresh export)",
        )
        sys.stdout.writelines(list(diff)[:80])
        print(
            f"error: {relative} differs from a fresh export; run scripts/export_model.py",
            file=sys.stderr,
        )
        return 1

    if current == text:
        print(f"{relative} is up to date ({len(cells)} cells)")
        return 0
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    sources = sorted({notebook for notebook, _, _ in cells})
    print(
        f"Wrote {relative}: {len(cells)} cells from {', '.join(sources)}, "
        f"{text.count(chr(10))} lines"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
