"""The public face: ``fixar_hw`` and ``sw_model`` export their parts from their home modules."""

import importlib
import importlib.metadata
import subprocess
import sys

import pytest

import fixar_hw
import sw_model

FIXAR_HW_HOMES = {
    "FixedMAC": "fixar_hw.arith.mac",
    "SP2ShiftAdd": "fixar_hw.arith.sp2",
    "MixedRowUnit": "fixar_hw.arith.row_unit",
    "DualPrecisionPE": "fixar_hw.arith.pe",
    "ActivationUnit": "fixar_hw.arith.activation",
    "PEArray": "fixar_hw.train.array",
    "TrainingEngine": "fixar_hw.train.engine",
    "FixarCore": "fixar_hw.soc.core",
    "FixarSoC": "fixar_hw.soc.system",
    "CoreConfig": "fixar_hw.config",
    "FixarDriver": "fixar_hw.host.driver",
}


def test_fixar_hw_all_is_the_parts_and_the_version():
    assert sorted(fixar_hw.__all__) == sorted([*FIXAR_HW_HOMES, "__version__"])
    assert isinstance(fixar_hw.__version__, str)
    assert fixar_hw.__version__ == importlib.metadata.version("fixar-hw")


@pytest.mark.parametrize("name", sorted(FIXAR_HW_HOMES))
def test_fixar_hw_name_is_its_home_modules_object(name):
    home = importlib.import_module(FIXAR_HW_HOMES[name])
    assert getattr(fixar_hw, name) is getattr(home, name)
    assert getattr(home, name).__module__ == FIXAR_HW_HOMES[name]


def test_star_import_gives_all():
    namespace: dict = {}
    exec("from fixar_hw import *", namespace)
    assert set(fixar_hw.__all__) <= set(namespace)
    namespace = {}
    exec("from sw_model import *", namespace)
    assert set(sw_model.__all__) <= set(namespace)


@pytest.mark.parametrize("name", sorted(sw_model.__all__))
def test_sw_model_name_is_its_home_modules_object(name):
    value = getattr(sw_model, name)
    home = sw_model._HOMES[name]
    assert value is getattr(importlib.import_module(home), name)
    assert home.startswith("sw_model.")


def test_unknown_names_raise_attribute_error():
    with pytest.raises(AttributeError, match=r"^module 'fixar_hw' has no attribute 'Nope'$"):
        fixar_hw.Nope  # noqa: B018
    with pytest.raises(AttributeError, match=r"^module 'sw_model' has no attribute 'Nope'$"):
        sw_model.Nope  # noqa: B018


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys\nprint('\\n'.join(sorted(sys.modules)))"],
        check=True, capture_output=True, text=True)
    return set(out.stdout.split())


def test_import_fixar_hw_is_light():
    mods = _modules_after("import fixar_hw")
    assert not {m for m in mods if m.startswith(("amaranth", "fixar_hw.", "sw_model"))}


def test_public_parts_do_not_pull_apps_flow_or_sim():
    mods = _modules_after("import fixar_hw\nfor n in fixar_hw.__all__: getattr(fixar_hw, n)")
    heavy = {m for m in mods if m.startswith(("fixar_hw.apps", "fixar_hw.flow", "fixar_hw.sim"))}
    assert not heavy


def test_sw_model_stays_numpy_only():
    mods = _modules_after("import sw_model\nfor n in sw_model.__all__: getattr(sw_model, n)")
    assert not {m for m in mods if m.startswith(("amaranth", "fixar_hw"))}
