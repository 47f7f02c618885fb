"""The pinned environment: conda's environment.yml and pip's requirements agree."""

import importlib.metadata
import pathlib
import re

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]


def read_pins(path):
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = re.fullmatch(r"([A-Za-z0-9_.-]+)==([^\s]+)", line).groups()
            pins[name.lower()] = version
    return pins


def test_environment_yml_installs_requirements_txt():
    text = (REPO_ROOT / "environment.yml").read_text()
    assert re.search(r"^\s+- python=3\.12$", text, re.MULTILINE)
    assert re.search(r"^\s+- -r requirements\.txt$", text, re.MULTILINE)


def test_requirements_pin_every_package():
    for name in ("requirements.txt", "requirements-nodeps.txt"):
        pins = read_pins(REPO_ROOT / name)
        assert pins, name


def test_installed_versions_match_the_pins():
    pins = read_pins(REPO_ROOT / "requirements.txt") | read_pins(
        REPO_ROOT / "requirements-nodeps.txt"
    )
    for name, version in pins.items():
        assert importlib.metadata.version(name) == version, name
