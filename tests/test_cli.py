"""The fixar-hw command line."""

import subprocess
import sys

import pytest

from fixar_hw.apps.cli import main


def test_prove_list_and_unknown(capsys):
    assert main(["prove", "--list", "mac.cover"]) == 0
    assert "mac.cover.s4xu4_n3" in capsys.readouterr().out
    assert main(["prove", "nope"]) == 2
    assert "no proof matches 'nope'" in capsys.readouterr().err


@pytest.mark.formal
def test_prove_runs_and_prints_table():
    proc = subprocess.run([sys.executable, "-m", "fixar_hw.apps.cli", "prove", "mac.cover",
                           "mac.mutant"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "property" in proc.stdout and "seconds" in proc.stdout
    assert "FAIL (expected FAIL)" in proc.stdout


def _tiny_core_config():
    from fixar_hw.config import CoreConfig
    from sw_model.arch.ddpg_config import DDPGConfig
    from sw_model.arch.engine import EngineConfig

    cfg = DDPGConfig(hidden=(3,), precision="fixed", batch_size=2, buffer_size=8)
    return CoreConfig(EngineConfig(cfg, 2, 1, size=2, cores=1), dma_addr_width=12)


def test_export_writes_verilog_and_register_map(tmp_path, capsys):
    import json

    from fixar_hw.soc.csr import register_map

    config = _tiny_core_config()
    (tmp_path / "cfg.json").write_text(config.to_json())
    out = tmp_path / "fixar_core.v"
    assert main(["export", "--config", str(tmp_path / "cfg.json"), "-o", str(out),
                 "--regmap", str(tmp_path / "regs")]) == 0
    text = out.read_text()
    assert "module fixar_core(" in text.replace(" (", "(")
    # the documented port list names every port of the module
    header = [line for line in text.splitlines() if line.startswith("//   input")
              or line.startswith("//   output")]
    names = {line.split()[3] for line in header}
    assert {"clk", "rst", "csr__adr", "csr__ack", "dma__cyc", "dma__err", "irq"} <= names
    for name in names:
        assert f" {name}" in text.split(");", 1)[0]
    assert f"0x{config.config_id:08x}" in text
    doc = json.loads((tmp_path / "regs" / "fixar_core_regs.json").read_text())
    assert doc == json.loads(register_map(config).to_json())
    assert "#define FIXAR_REG_STATUS" in (tmp_path / "regs" / "fixar_core_regs.h").read_text()
    assert "| `STATUS` |" in (tmp_path / "regs" / "fixar_core_regs.md").read_text()


def test_export_rejects_bad_configs(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"engine": {"obs_dim": 3}}')
    assert main(["export", "--config", str(bad), "-o", str(tmp_path / "x.v")]) == 2
    assert "needs a 'ddpg' entry" in capsys.readouterr().err
    assert not (tmp_path / "x.v").exists()
    assert main(["export", "--config", str(tmp_path / "missing.json")]) == 2
