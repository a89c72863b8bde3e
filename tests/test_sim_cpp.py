"""The C++ testbenches of :mod:`fixar_hw.sim` are package files, handed to Verilator filled in.

* every ``fixar_hw/sim/cpp/*.cpp`` is shipped as package data and readable through
  :mod:`importlib.resources`;
* the text each Verilator build receives (array testbench, engine testbench, core harness) is
  its file with every ``@NAME@`` placeholder replaced, and nothing else changed;
* the build-cache keys depend on that text.

Nothing here runs Verilator: the builds are intercepted where they receive the C++ text.
"""

import re
import tomllib
from importlib.resources import files
from pathlib import Path

import pytest

from fixar_hw._util import never_elaborated
from fixar_hw.sim import _cpp
from fixar_hw.sim import array_verilator as av
from fixar_hw.sim import core_verilator as cv
from fixar_hw.sim import engine_verilator as ev

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("array_tb.cpp", "engine_tb.cpp", "core_lib.cpp")


class Intercepted(Exception):
    """Raised by a stand-in to stop a build once it has the C++ text."""


def template_values(name: str, text: str) -> dict[str, str]:
    """The placeholder values that turn ``cpp/<name>`` into ``text``; fails unless the rest of
    ``text`` is the file verbatim (one value per placeholder name, however often it occurs)."""
    template = _cpp.cpp_source(name)
    pattern, seen, pos = [], set(), 0
    for match in re.finditer(r"@(\w+)@", template):
        pattern.append(re.escape(template[pos:match.start()]))
        key = match.group(1)
        pattern.append(f"(?P={key})" if key in seen else f"(?P<{key}>.*?)")
        seen.add(key)
        pos = match.end()
    pattern.append(re.escape(template[pos:]))
    found = re.fullmatch("".join(pattern), text, flags=re.DOTALL)
    assert found is not None, f"the C++ text is not cpp/{name} with its placeholders filled in"
    values = found.groupdict()
    assert _cpp.render(name, values) == text
    assert all("@" not in value for value in values.values())
    return values


@pytest.mark.parametrize("name", SOURCES)
def test_sources_are_package_files(name):
    resource = files("fixar_hw.sim") / "cpp" / name
    assert resource.is_file()
    text = resource.read_text(encoding="utf-8")
    assert "#include" in text and text == _cpp.cpp_source(name)
    assert re.search(r"@TOP@", text)


def test_package_data_ships_every_source():
    with open(ROOT / "pyproject.toml", "rb") as handle:
        package_data = tomllib.load(handle)["tool"]["setuptools"]["package-data"]
    globs = package_data["fixar_hw.sim"]
    sim = ROOT / "fixar_hw" / "sim"
    shipped = {path.relative_to(sim).as_posix() for pattern in globs for path in sim.glob(pattern)}
    on_disk = {path.relative_to(sim).as_posix() for folder in ("cpp", "verilog")
               for path in (sim / folder).iterdir()}
    assert on_disk == shipped >= {f"cpp/{name}" for name in SOURCES}


def test_render_needs_every_placeholder():
    with pytest.raises(KeyError):
        _cpp.render("engine_tb.cpp", {"TOP": "x"})


def test_array_build_receives_its_file(monkeypatch, tmp_path):
    from sw_model.arch.aap import AAPConfig

    handed = {}

    def verilate(verilog, top, testbench, **kwargs):
        handed.update(top=top, testbench=testbench)
        raise Intercepted

    monkeypatch.setattr(av, "verilate", verilate)
    monkeypatch.setattr(av, "_verilog_cache_dir", lambda: tmp_path)
    monkeypatch.setattr(av, "design_digest", lambda: "digest")
    config = AAPConfig(size=2, cores=2, max_m=8, max_n=8, max_batch=4, addr_width=6)
    with pytest.raises(Intercepted):
        av.build(config)
    values = template_values("array_tb.cpp", handed["testbench"])
    assert handed["top"] == values["TOP"] == av.TOP
    assert values["CORES"] == "2" and values["MAGIC"] == hex(av._MAGIC)
    assert "w_rd___05F1___05Fen" in values["SAMPLE"]


def test_engine_build_receives_its_file(monkeypatch, tmp_path):
    from sw_model.arch.ddpg_config import DDPGConfig
    from sw_model.arch.engine import EngineConfig

    handed = {}

    def verilate(verilog, top, testbench, **kwargs):
        handed.update(top=top, testbench=testbench)
        raise Intercepted

    monkeypatch.setattr(ev, "verilate", verilate)
    def to_verilog(engine, name):
        never_elaborated(engine)  # the stand-in export does not elaborate it
        return f"module {name}();\nendmodule\n"

    monkeypatch.setattr(ev, "to_verilog", to_verilog)
    monkeypatch.setattr(ev, "_verilog_cache_dir", lambda: tmp_path)
    monkeypatch.setattr(ev, "design_digest", lambda: "digest")
    with pytest.raises(Intercepted):
        agent = DDPGConfig(hidden=(5,), precision="fixed", batch_size=4, buffer_size=16)
        ev.build(EngineConfig(agent, 3, 1, size=2, cores=2), program_depth=16)
    values = template_values("engine_tb.cpp", handed["testbench"])
    assert handed["top"] == values["TOP"] == ev.TOP
    assert values["PWE"] == "prog_wr___05Fen" and values["SR"] == "start___05Fready"
    assert "word[0]" in values["SETDATA"] and "t->perf" in values["GETPERF"]


def test_core_build_receives_its_file(monkeypatch, tmp_path):
    handed = {}

    def run_process(command, *, cwd, **kwargs):
        handed["harness"] = (Path(cwd) / "harness.cpp").read_text(encoding="utf-8")
        raise Intercepted

    monkeypatch.setattr(cv, "_require_verilator", lambda: ["verilator"])
    monkeypatch.setattr(cv, "run_tool", run_process)
    with pytest.raises(Intercepted):
        cv._build_library(tmp_path, "module fixar_core();\nendmodule\n", ("-O0",), 60)
    values = template_values("core_lib.cpp", handed["harness"])
    assert values["TOP"] == cv.TOP
    assert values["CSR_STALL"] == "csr___05Fstall" and values["DMA_DAT_R"] == "dma___05Fdat_r"


def test_core_library_key_covers_the_harness(monkeypatch):
    keys = []

    def cached_build(kind, key, product, build):
        keys.append(key)
        return Path(product)

    monkeypatch.setattr(cv, "core_verilog", lambda config: "module fixar_core();\nendmodule\n")
    monkeypatch.setattr(cv, "_verilator_version", lambda: "v")
    monkeypatch.setattr(cv, "_compiler_version", lambda: "c")
    monkeypatch.setattr(cv, "_cached_build", cached_build)
    cv.build_library(None)
    cv.build_library(None)
    monkeypatch.setattr(cv, "_harness_cpp", lambda: "// another harness\n")
    cv.build_library(None)
    assert keys[0] == keys[1] != keys[2]


def test_verilate_key_covers_the_testbench():
    from fixar_hw.flow import export

    first = export._build_key("module m();\nendmodule\n", "m", "int main() {}\n", ("-O0",))
    again = export._build_key("module m();\nendmodule\n", "m", "int main() {}\n", ("-O0",))
    other = export._build_key("module m();\nendmodule\n", "m", "int main() {return 0;}\n",
                              ("-O0",))
    assert first == again != other
