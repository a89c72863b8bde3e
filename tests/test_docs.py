"""The documentation builds with warnings as errors, and its examples pass as doctests."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from fixar_hw._util import never_elaborated

DOCS = Path(__file__).resolve().parents[1] / "docs"


@pytest.fixture(scope="module")
def out(tmp_path_factory) -> Path:
    """One output folder for both builders: the doctest build reuses the html build's doctrees."""
    return tmp_path_factory.mktemp("docs")


def _sphinx(builder: str, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", builder,
         "-d", str(out / "doctrees"), str(DOCS), str(out / builder)],
        capture_output=True, text=True, timeout=600)


def test_html_builds_without_warnings(out):
    run = _sphinx("html", out)
    assert run.returncode == 0, run.stderr[-5000:]
    assert (out / "html" / "index.html").is_file()
    assert (out / "html" / "results.html").is_file()


def test_examples_pass_as_doctests(out):
    run = _sphinx("doctest", out)
    assert run.returncode == 0, run.stdout[-5000:] + run.stderr[-5000:]
    report = (out / "doctest" / "output.txt").read_text()
    assert "0 failures in tests" in report
    # the getting-started example, the numeric contract and the engine's program all ran
    for page in ("getting-started", "numerics", "parts/engine"):
        assert f"Document: {page}\n" in report


def test_readme_example_runs_and_prints_what_it_says(capsys):
    readme = (DOCS.parent / "README.md").read_text()
    code = re.search(r"## An example.*?```python\n(.*?)```", readme, re.S).group(1)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    for value in namespace.values():    # built to show their ports, never elaborated
        never_elaborated(value)
    promised = [line[2:] for line in code.splitlines() if line.startswith("# ")]
    assert capsys.readouterr().out.splitlines() == promised
