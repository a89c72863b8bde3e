"""The layer contract (``[tool.importlinter]`` in ``pyproject.toml``), run by ``lint-imports``.

The packages are laid out as they are installed (``[tool.setuptools] package-dir``:
``platforms/`` becomes ``fixar_hw/platforms``, ``formal/`` becomes ``fixar_hw/formal``) in a
temporary directory, with the contract, and ``lint-imports`` checks that copy: it passes as it
is, and fails, naming the import, once a back edge is written into it.
"""

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"


def _lint_imports() -> str:
    script = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) \
        or shutil.which("lint-imports")
    if script is None:
        raise FileNotFoundError("lint-imports is not installed (pip install -e '.[test]')")
    return script


def _skip_links_and_caches(directory: str, names: list[str]) -> list[str]:
    return [n for n in names
            if n == "__pycache__" or os.path.islink(os.path.join(directory, n))]


def lay_out(dest: Path) -> Path:
    """Copy the packages into ``dest`` as the wheel installs them, with the contract."""
    mapping = tomllib.loads(PYPROJECT.read_text())["tool"]["setuptools"]["package-dir"]
    for package, source in sorted(mapping.items(), key=lambda kv: kv[0].count(".")):
        shutil.copytree(ROOT / source, dest.joinpath(*package.split(".")),
                        ignore=_skip_links_and_caches)
    shutil.copy(PYPROJECT, dest / "pyproject.toml")
    return dest


def lint(tree: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(tree), NO_COLOR="1", COLUMNS="200", TERM="dumb")
    return subprocess.run([_lint_imports(), "--no-cache", "--config", "pyproject.toml"],
                          cwd=tree, env=env, capture_output=True, text=True, timeout=120)


def add_import(tree: Path, module: str, imported: str) -> None:
    path = tree.joinpath(*module.split(".")).with_suffix(".py")
    path.write_text(path.read_text() + f"\nimport {imported}  # noqa: E402\n")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return lay_out(tmp_path / "installed")


def test_layout_has_every_package(tree):
    for package in ("fixar_hw", "fixar_hw.platforms", "fixar_hw.formal", "fixar_hw.formal.soc",
                    "sw_model"):
        assert tree.joinpath(*package.split("."), "__init__.py").is_file(), package


def test_contract_is_kept(tree):
    result = lint(tree)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(("module", "imported", "message"), [
    ("fixar_hw.arith.mac", "fixar_hw.apps.cli",
     "fixar_hw.arith is not allowed to import fixar_hw.apps"),
    ("fixar_hw.flow.build", "fixar_hw.host.driver",
     "fixar_hw.flow is not allowed to import fixar_hw.host"),
    ("fixar_hw.formal.soc.soc", "fixar_hw.sim.testing",
     "fixar_hw.formal is not allowed to import fixar_hw.sim"),
    ("sw_model.numerics.fixed", "amaranth", "sw_model.numerics.fixed -> amaranth"),
])
def test_back_edge_breaks_the_contract(tree, module, imported, message):
    add_import(tree, module, imported)
    result = lint(tree)
    assert result.returncode != 0, result.stdout
    assert "1 kept, 1 broken" in result.stdout, result.stdout
    assert message in result.stdout, result.stdout
    assert f"{module} -> {imported}" in result.stdout, result.stdout
