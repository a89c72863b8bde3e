# amaranth: UnusedElaboratable=no
"""The ECP5 PLL: divider search against a brute force, its instance in a board top, and a
bring-up bitstream clocked by it."""

import math
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

import fixar_hw.flow.build as fb
from fixar_hw.platforms import BoardTop
from fixar_hw.platforms.clocking import ECP5PLL, OUT_MHZ, PllSetting, ecp5_pll_setting


def _best_error(f_in: float, f_out: float) -> float:
    """The smallest |output - f_out| over every (CLKI_DIV, CLKFB_DIV) for which some CLKOP_DIV
    puts the VCO in 400..800 MHz and the phase detector at 3.125 MHz or more (brute force)."""
    best = math.inf
    for clki in range(1, 129):
        if f_in / clki < 3.125:
            continue
        for clkfb in range(1, 81):
            out = f_in * clkfb / clki
            if not 3.125 <= out <= 400:
                continue
            lo, hi = math.ceil(400 / out - 1e-12), math.floor(800 / out + 1e-12)
            if lo <= min(hi, 128):
                best = min(best, abs(out - f_out))
    return best


@given(f_in=st.sampled_from([12.0, 25.0, 48.0, 100.0]),
       f_out=st.floats(min_value=OUT_MHZ[0], max_value=OUT_MHZ[1]))
def test_pll_setting_is_valid_and_nearest(f_in, f_out):
    s = ecp5_pll_setting(f_in, f_out)
    assert s.valid and 1 <= s.clki_div <= 128 and 1 <= s.clkfb_div <= 80
    assert 1 <= s.clkop_div <= 128
    assert 400 <= s.f_in_mhz / s.clki_div * s.clkfb_div * s.clkop_div <= 800
    assert abs(s.f_out_mhz - f_out) <= _best_error(f_in, f_out) + 1e-9


@pytest.mark.parametrize(("f_in", "f_out", "dividers"), [
    (25.0, 12.5, (2, 1, 48)),     # 12.5 MHz, VCO 600 MHz
    (25.0, 50.0, (1, 2, 12)),
    (48.0, 12.0, (4, 1, 50)),
])
def test_pll_setting_known_values(f_in, f_out, dividers):
    s = ecp5_pll_setting(f_in, f_out)
    assert (s.clki_div, s.clkfb_div, s.clkop_div) == dividers
    assert s.f_out_mhz == f_out and s.f_vco_mhz == 600.0


def test_pll_setting_errors():
    with pytest.raises(TypeError, match="f_out_mhz"):
        ecp5_pll_setting(25.0, "12")
    with pytest.raises(ValueError, match="f_out_mhz"):
        ecp5_pll_setting(25.0, 1.0)
    with pytest.raises(ValueError, match="f_in_mhz"):
        ecp5_pll_setting(1000.0, 12.0)
    with pytest.raises(TypeError, match="setting"):
        ECP5PLL(None, (2, 1, 48))
    with pytest.raises(ValueError, match="setting"):
        ECP5PLL(None, PllSetting(25.0, 1, 80, 1))
    with pytest.raises(ValueError, match="clock_mhz must be None on the icebreaker"):
        BoardTop(None, "icebreaker", clock_mhz=6.0)
    with pytest.raises(TypeError, match=r"^clock_mhz must be a number of MHz, not '12'$"):
        BoardTop(None, "ulx3s-85f", clock_mhz="12")
    with pytest.raises(ValueError, match=r"^clock_mhz must be from 3.125 to 400 MHz"):
        BoardTop(None, "ulx3s-85f", clock_mhz=500)


def test_board_top_runs_from_the_pll():
    top = BoardTop(None, "ulx3s-85f", clock_mhz=12.5, baud=115200)
    assert top.run_mhz == 12.5 and top.divisor == round(12.5e6 / 115200)
    assert BoardTop(None, "ulx3s-85f").run_mhz == 25.0
    with pytest.raises(ValueError, match="baud"):
        BoardTop(None, "ulx3s-85f", clock_mhz=4.0, baud=2_000_000)


def test_bringup_bitstream_on_the_pll(tmp_path):
    """The ULX3S bring-up top clocked at 12.5 MHz by the PLL: nextpnr places the EHXPLLL,
    times the PLL's output against 12.5 MHz and the bitstream is packed."""
    report = fb.build(None, "ulx3s-85f", tmp_path, clock_mhz=12.5)
    assert report.clock_mhz == 12.5 and report.meets_timing
    assert (tmp_path / "top.bit").stat().st_size > 100_000
    netlist = (tmp_path / "top.il").read_text()
    assert "EHXPLLL" in netlist
    for name, value in (("CLKI_DIV", 2), ("CLKFB_DIV", 1), ("CLKOP_DIV", 48)):
        assert re.search(rf"parameter \\{name} {value}\b", netlist), name
    log = (tmp_path / "top.tim").read_text()
    # nextpnr derives the PLL output's constraint from the 25 MHz reference and times it
    assert "Derived frequency constraint of 12.5 MHz" in log
    assert re.search(r"Max frequency for clock +'[^']+': [0-9.]+ MHz \(PASS at 12\.50 MHz\)",
                     log)
    assert not re.search(r"at 25\.00 MHz", log)
