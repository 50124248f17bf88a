"""The shape of the code, as import-linter's contracts in pyproject.toml state it: no service
imports another, shared/ imports none of them, no two modules import each other, directly or in
a loop, type-only imports included, and the live session's parts (gateway/live/) each import only
those below them; every module that others import says what it holds; and no module of the
services grows past MAX_MODULE_LINES."""

import ast
import subprocess
import sys
from pathlib import Path

import grimp

PACKAGES = ("shared", "gateway", "transcoder", "recognizer", "janitor", "cli")
ROOT = Path(__file__).parents[2]


def test_the_import_contracts_hold() -> None:
    linter = Path(sys.executable).parent / "lint-imports"
    checked = subprocess.run(
        [str(linter), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "3 kept, 0 broken" in checked.stdout


def test_every_module_another_imports_says_what_it_holds() -> None:
    graph = grimp.build_graph(*PACKAGES, include_external_packages=False)
    silent = []
    for module in sorted(graph.modules):
        if not graph.find_modules_that_directly_import(module):
            continue
        path = ROOT.joinpath(*module.split("."))
        source = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
        if not ast.get_docstring(ast.parse(source.read_text())):
            silent.append(module)
    assert silent == []


MAX_MODULE_LINES = 450


def test_no_module_of_the_services_is_over_450_lines() -> None:
    long_modules = {
        str(path.relative_to(ROOT)): lines
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
        if (lines := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert long_modules == {}
