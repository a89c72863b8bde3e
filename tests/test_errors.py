"""The exception hierarchy (fixar_hw.errors, sw_model.errors) and where each class is raised."""

from __future__ import annotations

import sys

import pytest

import fixar_hw.errors as fe
import sw_model.errors as se
from fixar_hw.config import CoreConfig
from fixar_hw.flow.build import fit_check
from fixar_hw.platforms.boards import BOARDS
from fixar_hw.tools import run_tool
from sw_model.arch.ddpg_config import DDPGConfig
from sw_model.rl.image import WeightImage


@pytest.mark.parametrize(("cls", "bases"), [
    (fe.FixarError, (Exception,)),
    (fe.ConfigError, (fe.FixarError, ValueError)),
    (fe.ImageError, (fe.FixarError, ValueError)),
    (fe.DoesNotFit, (fe.FixarError, ValueError)),
    (fe.ToolError, (fe.FixarError, RuntimeError)),
    (fe.BuildError, (fe.ToolError, fe.FixarError, RuntimeError)),
    (fe.CoreError, (fe.FixarError, RuntimeError)),
])
def test_hierarchy(cls, bases):
    assert all(issubclass(cls, base) for base in bases)


def test_one_class_each():
    """The golden model's classes are the hardware side's, and the raising modules use them."""
    import fixar_hw.flow.build as build
    import fixar_hw.host.driver as driver
    import sw_model.rl.image as image

    assert (fe.FixarError, fe.ConfigError, fe.ImageError) == (se.FixarError, se.ConfigError,
                                                              se.ImageError)
    assert image.ImageError is fe.ImageError
    assert (build.BuildError, build.DoesNotFit) == (fe.BuildError, fe.DoesNotFit)
    assert driver.CoreError is fe.CoreError


def test_a_bad_image_raises_image_error():
    with pytest.raises(fe.ImageError):
        WeightImage.from_bytes(b"not a weight image, just some bytes")


def test_bad_config_json_raises_config_error():
    for cls in (CoreConfig, DDPGConfig):
        with pytest.raises(fe.ConfigError, match=rf"^{cls.__name__} JSON is invalid: "):
            cls.from_json("{")
        with pytest.raises(fe.ConfigError, match=rf"^{cls.__name__} JSON must be an object, "
                                                 r"not \[1\]$"):
            cls.from_json("[1]")
    with pytest.raises(fe.ConfigError, match=r"^DDPGConfig JSON does not describe a valid "
                                             r"configuration: DDPGConfig has no field 'lr'$"):
        DDPGConfig.from_json('{"lr": 1}')


def test_a_tool_timeout_raises_tool_error(tmp_path):
    with pytest.raises(fe.ToolError, match=r"^a sleeper timed out after 0\.5 s") as info:
        run_tool([sys.executable, "-c", "import time; time.sleep(30)"], cwd=tmp_path,
                 timeout=0.5, what="a sleeper")
    assert info.value.timed_out
    with pytest.raises(fe.BuildError):
        run_tool([sys.executable, "-c", "raise SystemExit(1)"], cwd=tmp_path, timeout=60,
                 what="a failing step", error=fe.BuildError)


def test_a_design_that_does_not_fit_raises_does_not_fit():
    board = BOARDS["icebreaker"]
    used = {k: 2 * v + 1 for k, v in board.capacity.items()}
    with pytest.raises(fe.DoesNotFit, match=r"^icebreaker .* cannot hold this configuration"):
        fit_check(used, board)


def test_core_error_message():
    error = fe.CoreError("bus_error", addr=0x40, words=3)
    assert str(error) == "the core stopped on a fault: bus_error at bus word 0x40 after 3 words"
    assert (error.cause, error.addr, error.words) == ("bus_error", 0x40, 3)
