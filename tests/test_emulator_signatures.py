"""Every emulated function has the signature of the ttnn 0.81.1 function it replaces.

C++ ops carry their signature as nanobind text (`__nb_signature__`): "def f(a: T, b: U = \\0, *,
c: V = \\1) -> R", where `\\N` is a placeholder for the N-th entry of the tuple of default values
that comes with the text. Python ops are read with inspect.signature.
"""

import ast
import inspect

import pytest

from emulator_support import REAL_OPS, install_module
from ttnn_emulator import ops

POSITIONAL = inspect.Parameter.POSITIONAL_OR_KEYWORD
KEYWORD_ONLY = inspect.Parameter.KEYWORD_ONLY
NO_DEFAULT = inspect.Parameter.empty

# ttnn.open_device's nanobind text shows its five keyword-only parameters without defaults, but its
# docstring calls l1_small_size, trace_region_size, dispatch_core_config and worker_l1_size optional,
# so only names and kinds are compared for it.
NAMES_AND_KINDS_ONLY = {("", "open_device")}


def split_top_level(text, separator=","):
    """Split `text` at `separator` where it is outside brackets and quotes."""
    parts, depth, quote, current = [], 0, None, []
    for char in text:
        if quote:
            if char == quote:
                quote = None
        elif char in "\"'":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == separator and depth == 0:
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    if "".join(current).strip():
        parts.append("".join(current).strip())
    return parts


def parameter_text(signature_text):
    """Return the text between the parentheses of a nanobind "def name(...) -> R" line."""
    start = signature_text.index("(") + 1
    depth = 1
    for position in range(start, len(signature_text)):
        char = signature_text[position]
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return signature_text[start:position]
    raise ValueError(f"unbalanced parentheses in {signature_text!r}")


def parse_nanobind(signature_text, defaults):
    """Return [(name, kind, default)] of a nanobind signature, `self` left out."""
    parameters = []
    kind = POSITIONAL
    for item in split_top_level(parameter_text(signature_text)):
        item = item.replace("\\*", "*")
        if item == "*":
            kind = KEYWORD_ONLY
            continue
        if item == "/":
            continue
        name_and_type, has_default, default_text = item.partition("=")
        name = name_and_type.split(":")[0].strip()
        if name == "self":
            continue
        default = NO_DEFAULT
        if has_default:
            default_text = default_text.strip()
            if default_text.startswith("\\"):
                default = defaults[int(default_text[1:])]
            else:
                default = ast.literal_eval(default_text)
        parameters.append((name, kind, default))
    return parameters


def inspect_parameters(function):
    return [(p.name, p.kind, p.default) for p in inspect.signature(function).parameters.values()]


def real_overloads(real):
    """Return the parameter lists of every overload of a real ttnn function."""
    function = getattr(real, "function", real)
    if type(function).__name__ == "nb_func":
        signatures = function.__nb_signature__
    elif inspect.isfunction(function):
        return [inspect_parameters(function)]
    else:
        signatures = type(function).__call__.__nb_signature__
    return [parse_nanobind(text, defaults or ()) for text, _doc, defaults in signatures]


def same_default(real, emulated):
    if real is NO_DEFAULT or emulated is NO_DEFAULT:
        return real is emulated
    return type(real) is type(emulated) and real == emulated


def same_parameters(real, emulated, compare_defaults=True):
    if [(n, k) for n, k, _ in real] != [(n, k) for n, k, _ in emulated]:
        return False
    if not compare_defaults:
        return True
    return all(same_default(r, e) for (_, _, r), (_, _, e) in zip(real, emulated))


def describe(parameters):
    marks = {POSITIONAL: "", KEYWORD_ONLY: "*"}
    return ", ".join(
        f"{marks[k]}{n}" + ("" if d is NO_DEFAULT else f"={d!r}") for n, k, d in parameters
    )


@pytest.mark.parametrize(
    "module, name",
    install_module.EMULATED,
    ids=[f"{m}.{n}" if m else n for m, n in install_module.EMULATED],
)
def test_signature_matches_ttnn(module, name):
    real = REAL_OPS[(module, name)]
    emulated = getattr(ops, install_module.EMULATED_NAMES.get(name, name))
    overloads = real_overloads(real)
    assert overloads, f"no signature found for the real {name}"

    emulated_parameters = inspect_parameters(emulated)
    compare_defaults = (module, name) not in NAMES_AND_KINDS_ONLY
    matches = [o for o in overloads if same_parameters(o, emulated_parameters, compare_defaults)]
    real_text = "\n  ".join(describe(o) for o in overloads)
    assert matches, (
        f"emulated {name}({describe(emulated_parameters)}) matches no real overload:\n  {real_text}"
    )


def test_installed_names_point_at_emulator():
    for module, name in install_module.EMULATED:
        emulated = getattr(ops, install_module.EMULATED_NAMES.get(name, name))
        assert getattr(install_module.owner(module), name) is emulated, f"{module}.{name}"


def test_parser_reads_defaults_and_kinds():
    # A hand-written nanobind line with every form the real texts use.
    text = (
        "def __call__(self, a: ttnn.Tensor, b: dict[str, int] | None = \\0, \\*, "
        'c: "ns::Config" | None = \\1, d: bool = True) -> None'
    )
    parsed = parse_nanobind(text, (None, [1, 2]))
    assert parsed == [
        ("a", POSITIONAL, NO_DEFAULT),
        ("b", POSITIONAL, None),
        ("c", KEYWORD_ONLY, [1, 2]),
        ("d", KEYWORD_ONLY, True),
    ]


def test_default_comparison_checks_types():
    assert not same_default(0, 0.0)
    assert not same_default(False, 0)
    assert not same_default(None, NO_DEFAULT)
    assert same_default([], [])
