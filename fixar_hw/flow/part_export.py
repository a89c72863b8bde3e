"""Export any part a user instantiates as Verilog: the netlist, its documentation and a wrapper.

:data:`PARTS` maps a part name (``mac``, ``sp2``, ``row-unit``, ``pe``, ``array``, ``engine``,
``core``, ``soc``) to the component that builds it and the parameters it takes;
:func:`export_part` validates the parameters, builds the component and writes, for a module
``<name>`` with file stem ``<stem>`` (by default the module name):

``<stem>.v``
    The module, written by :func:`fixar_hw.flow.export.to_verilog` (Amaranth's bundled Yosys;
    no absolute paths), preceded by a comment header (:func:`port_header`): the part and its
    parameters, the reset (synchronous, active-high ``rst``), every port with its direction,
    width, signedness and role, every field of a structured port (stream payloads) with its bit
    range, and the value of every output after reset.
``<stem>_wrap.v``
    Unless ``wrapper=False``: module ``<name>_wrap`` (:func:`wrapper_verilog`), which
    instantiates ``<name>`` and has one port per payload field (``i_a``, ``i_b``, ``i_last``,
    ``o_value``...) and per handshake signal (``i_valid``, ``i_ready``...), so no one slices
    vectors by hand. The core keeps its name, so a design may use either.
``<stem>.vlt``
    A Verilator configuration file (:func:`verilator_waivers`) that waives, for ``<stem>.v``
    only, the warning classes the generator's netlists produce, so that
    ``verilator-cli --lint-only -Wall <stem>.vlt <stem>.v`` (and the same with
    ``<stem>_wrap.v`` before ``<stem>.v``) reports no warning.

Everything is validated and generated in memory before the first file is written: a bad part
name, a bad parameter or an unwritable destination raises before anything is written.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from amaranth.hdl import Shape
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In

from fixar_hw.config import CoreConfig
from fixar_hw.flow.export import _RESERVED_WORDS, _atomic_write_text, _check_identifier, to_verilog
from sw_model.numerics.fixed import FixedFormat
from sw_model.numerics.sp2 import SP2Format

__all__ = [
    "GENERATOR_WARNINGS",
    "PARTS",
    "ExportedPart",
    "Part",
    "export_part",
    "load_params",
    "parse_params",
    "port_header",
    "verilator_waivers",
    "wrapper_verilog",
]

#: Verilator ``-Wall`` warning classes that Amaranth's netlists (Yosys ``write_verilog``)
#: produce, waived file by file in every ``.vlt``: operands of a cell narrower or wider than its
#: result (Yosys cells extend or cut them by definition; WIDTHEXPAND, WIDTHTRUNC), registers
#: with both an initial value and a reset (PROCASSINIT), intermediate wires and payload views
#: that are partly or never read (UNUSEDSIGNAL), state machines whose ``case`` leaves the unused
#: state codes to hold (CASEINCOMPLETE), and submodules named ``<name>.<child>``, which no file
#: name can match (DECLFILENAME).
GENERATOR_WARNINGS: tuple[str, ...] = (
    "CASEINCOMPLETE",
    "DECLFILENAME",
    "PROCASSINIT",
    "UNUSEDSIGNAL",
    "WIDTHEXPAND",
    "WIDTHTRUNC",
)

# ---------------------------------------------------------------------------
# Parameters
# ---------------------------------------------------------------------------

_FIXED_TEXT = re.compile(r"([su]?)(\d+)\.(-?\d+)")
_SP2_TEXT = re.compile(r"(\d+)(?::(\d+))?")


def _fixed_format(value: object, where: str) -> FixedFormat:
    """A FixedFormat from ``"s12.8"``/``"u8.8"``/``"12.8"`` or ``{"width", "frac", "signed"}``."""
    if isinstance(value, FixedFormat):
        return value
    if isinstance(value, str):
        match = _FIXED_TEXT.fullmatch(value.strip())
        if match is None:
            raise ValueError(f"{where} must be a fixed-point format such as 's12.8' (signed, 12 "
                             f"bits, 8 fraction bits) or 'u8.8' (unsigned), not {value!r}")
        sign, width, frac = match.groups()
        return FixedFormat(int(width), int(frac), signed=sign != "u")
    if isinstance(value, Mapping):
        unknown = set(value) - {"width", "frac", "signed"}
        if unknown or not {"width", "frac"} <= set(value):
            raise ValueError(f"{where} must have the keys 'width', 'frac' and optionally "
                             f"'signed', not {dict(value)!r}")
        return FixedFormat(value["width"], value["frac"], signed=value.get("signed", True))
    raise TypeError(f"{where} must be a format string such as 's12.8' or an object with "
                    f"'width' and 'frac', not {value!r}")


def _sp2_format(value: object, where: str) -> SP2Format:
    """An SP2Format from ``5``, ``"5"``, ``"5:3"`` (m:m1) or ``{"m": 5, "m1": 3}``."""
    if isinstance(value, SP2Format):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return SP2Format(value)
    if isinstance(value, str):
        match = _SP2_TEXT.fullmatch(value.strip())
        if match is None:
            raise ValueError(f"{where} must be an SP2 code width 'M' or 'M:M1' (e.g. '5' or "
                             f"'5:3'), not {value!r}")
        m, m1 = match.groups()
        return SP2Format(int(m), None if m1 is None else int(m1))
    if isinstance(value, Mapping):
        if set(value) - {"m", "m1"} or "m" not in value:
            raise ValueError(f"{where} must have the key 'm' and optionally 'm1', not "
                             f"{dict(value)!r}")
        return SP2Format(value["m"], value.get("m1"))
    raise TypeError(f"{where} must be an SP2 format such as '5' or '5:3', not {value!r}")


def _integer(value: object, where: str) -> int:
    if isinstance(value, str):
        try:
            return int(value.strip(), 0)
        except ValueError:
            raise ValueError(f"{where} must be an integer, not {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{where} must be an integer, not {value!r}")
    return value


def _number(value: object, where: str) -> float:
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            raise ValueError(f"{where} must be a number, not {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{where} must be a number, not {value!r}")
    return value


def _text(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{where} must be a string, not {value!r}")
    return value


_KINDS: dict[str, Callable[[object, str], Any]] = {
    "fixed": _fixed_format,
    "sp2": _sp2_format,
    "int": _integer,
    "number": _number,
    "str": _text,
}


def _show(value: object) -> str:
    """A parameter value as the header prints it (formats in their ``s12.8`` spelling)."""
    if isinstance(value, FixedFormat):
        return f"{'s' if value.signed else 'u'}{value.width}.{value.frac}"
    if isinstance(value, SP2Format):
        return f"{value.m}:{value.m1}"
    return repr(value)


@dataclass(frozen=True)
class Part:
    """One exportable part.

    Attributes
    ----------
    name : str
        The part's name on the command line (``mac``, ``row-unit``...).
    component : str
        The class it builds (for messages and the header).
    module : str
        The default Verilog module name.
    params : dict of str to (kind, default)
        Parameters: kind ``"fixed"`` (a :class:`~sw_model.numerics.fixed.FixedFormat`),
        ``"sp2"``, ``"int"``, ``"number"`` or ``"str"``, and the default value.
    needs_config : bool
        Whether the part is built from a :class:`~fixar_hw.config.CoreConfig`.
    build : callable
        ``build(params, config)`` returns the component.
    """

    name: str
    component: str
    module: str
    params: dict[str, tuple[str, Any]]
    needs_config: bool
    build: Callable[[dict[str, Any], CoreConfig | None], wiring.Component] = field(repr=False)


def _build_mac(p: dict[str, Any], _: CoreConfig | None) -> wiring.Component:
    from fixar_hw.arith.mac import FixedMAC

    return FixedMAC(p["a_fmt"], p["b_fmt"], p["out_fmt"], max_terms=p["max_terms"],
                    rounding=p["rounding"], overflow=p["overflow"])


def _build_sp2(p: dict[str, Any], _: CoreConfig | None) -> wiring.Component:
    from fixar_hw.arith.sp2 import SP2ShiftAdd

    return SP2ShiftAdd(p["x_fmt"], p["sp2_fmt"])


def _build_row_unit(p: dict[str, Any], _: CoreConfig | None) -> wiring.Component:
    from fixar_hw.arith.row_unit import MixedRowUnit

    return MixedRowUnit(p["x_fmt"], p["sp2_fmt"], p["fix_fmt"], p["alpha_fmt"], p["out_fmt"],
                        n_fixed=p["n_fixed"], n_sp2=p["n_sp2"], max_cols=p["max_cols"],
                        rounding=p["rounding"], overflow=p["overflow"])


def _build_pe(p: dict[str, Any], _: CoreConfig | None) -> wiring.Component:
    from fixar_hw.arith.pe import DualPrecisionPE

    return DualPrecisionPE(p["w_width"], p["a_width"])


def _build_array(_: dict[str, Any], config: CoreConfig | None) -> wiring.Component:
    from fixar_hw.train.array import PEArray

    aap = config.engine.aap
    return PEArray(aap)


def _build_engine(p: dict[str, Any], config: CoreConfig | None) -> wiring.Component:
    from fixar_hw.train.engine import TrainingEngine

    return TrainingEngine(config.engine, p["program_depth"])


def _build_core(_: dict[str, Any], config: CoreConfig | None) -> wiring.Component:
    from fixar_hw.soc.core import FixarCore

    return FixarCore(config)


def _build_soc(p: dict[str, Any], config: CoreConfig | None) -> wiring.Component:
    from fixar_hw.soc.system import FixarSoC

    sram = None if p["sram_words"] == 0 else p["sram_words"]
    return FixarSoC(config, clk_freq=p["clk_freq"], baud=p["baud"], sram_words=sram,
                    link=p["link"])


_MODES = {"rounding": ("str", "half_even"), "overflow": ("str", "saturate")}

#: Every exportable part, by its command-line name.
PARTS: dict[str, Part] = {part.name: part for part in (
    Part("mac", "FixedMAC", "fixed_mac",
         {"a_fmt": ("fixed", FixedFormat(12, 8)), "b_fmt": ("fixed", FixedFormat(10, 6)),
          "out_fmt": ("fixed", FixedFormat(16, 8)), "max_terms": ("int", 16), **_MODES},
         False, _build_mac),
    Part("sp2", "SP2ShiftAdd", "sp2_shift_add",
         {"x_fmt": ("fixed", FixedFormat(12, 8)), "sp2_fmt": ("sp2", SP2Format(5))},
         False, _build_sp2),
    Part("row-unit", "MixedRowUnit", "mixed_row_unit",
         {"x_fmt": ("fixed", FixedFormat(12, 8)), "sp2_fmt": ("sp2", SP2Format(5)),
          "fix_fmt": ("fixed", FixedFormat(8, 6)),
          "alpha_fmt": ("fixed", FixedFormat(8, 6, signed=False)),
          "out_fmt": ("fixed", FixedFormat(16, 8)), "n_fixed": ("int", 2), "n_sp2": ("int", 2),
          "max_cols": ("int", 16), **_MODES},
         False, _build_row_unit),
    Part("pe", "DualPrecisionPE", "dual_precision_pe",
         {"w_width": ("int", 16), "a_width": ("int", 16)}, False, _build_pe),
    Part("array", "PEArray", "aap_array", {}, True, _build_array),
    Part("engine", "TrainingEngine", "training_engine", {"program_depth": ("int", 256)}, True,
         _build_engine),
    Part("core", "FixarCore", "fixar_core", {}, True, _build_core),
    Part("soc", "FixarSoC", "fixar_soc",
         {"clk_freq": ("number", 25e6), "baud": ("int", 115200), "sram_words": ("int", 0),
          "link": ("str", "uart")},
         True, _build_soc),
)}


def _part(name: object) -> Part:
    if not isinstance(name, str):
        raise TypeError(f"part must be a string, not {name!r}")
    if name not in PARTS:
        raise ValueError(f"unknown part {name!r}; the parts are {', '.join(PARTS)}")
    return PARTS[name]


def parse_params(part: str, params: Mapping[str, object] | None = None) -> dict[str, Any]:
    """The parameters of ``part``: defaults overridden by ``params``, each checked and parsed.

    Parameters
    ----------
    part : str
        A key of :data:`PARTS`.
    params : mapping of str to object, optional
        Values as text (``"s12.8"``, ``"16"``) or as JSON values (objects for formats,
        numbers).

    Returns
    -------
    dict
        Every parameter of the part, parsed.

    Raises
    ------
    ValueError, TypeError
        Naming the part and the parameter: an unknown part or parameter, or a bad value.
    """
    spec = _part(part)
    if params is None:
        params = {}
    if not isinstance(params, Mapping):
        raise TypeError(f"part {part!r}: params must be a mapping, not {params!r}")
    out = {key: default for key, (_, default) in spec.params.items()}
    for key, value in params.items():
        if key not in spec.params:
            known = ", ".join(spec.params) or "none"
            raise ValueError(f"part {part!r} has no parameter {key!r} (its parameters: "
                             f"{known})")
        where = f"part {part!r} parameter {key!r}"
        try:
            out[key] = _KINDS[spec.params[key][0]](value, where)
        except (TypeError, ValueError) as exc:
            if str(exc).startswith(where):
                raise
            raise type(exc)(f"{where}: {exc}") from None
    return out


# ---------------------------------------------------------------------------
# Ports: the header and the wrapper
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Field:
    path: tuple[str, ...]
    offset: int
    width: int
    signed: bool


@dataclass(frozen=True)
class _Port:
    name: str
    direction: str
    width: int
    signed: bool
    role: str
    init: int
    fields: tuple[_Field, ...]
    wrap_prefix: tuple[str, ...]


def _leaves(layout: data.Layout, prefix: tuple[str, ...], base: int) -> list[_Field]:
    out: list[_Field] = []
    if not isinstance(layout, (data.StructLayout, data.ArrayLayout)):
        return [_Field(prefix, base, layout.size, False)]
    for key, fld in layout:
        path = (*prefix, str(key))
        if isinstance(fld.shape, data.Layout):
            out += _leaves(fld.shape, path, base + fld.offset)
        else:
            shape = Shape.cast(fld.shape)
            out.append(_Field(path, base + fld.offset, shape.width, shape.signed))
    return out


def _role(component: wiring.Component, path: tuple[Any, ...]) -> str:
    sig: wiring.Signature = component.signature
    owner: wiring.Signature | None = None
    owner_path: list[str] = []
    for step in path[:-1]:
        if isinstance(step, int):
            owner_path[-1] += f"[{step}]"
            continue
        sig = sig.members[step].signature
        owner = sig.flip() if isinstance(sig, wiring.FlippedSignature) else sig
        owner_path.append(step)
    leaf = str(path[-1])
    where = ".".join(owner_path)
    if isinstance(owner, stream.Signature):
        return f"stream {where}: {leaf}"
    if owner is not None:
        kind = type(owner).__qualname__.replace(".Signature", "")
        return f"{kind} {where}: {leaf}"
    return "port"


def _ports(component: wiring.Component) -> list[_Port]:
    roles: dict[str, str] = {}
    if hasattr(component, "port_table"):
        roles = {name: role for name, _, _, role in component.port_table()}
    out = []
    for path, member, value in component.signature.flatten(component):
        name = "__".join(str(p) for p in path)
        shape = Shape.cast(member.shape)
        fields: tuple[_Field, ...] = ()
        if isinstance(member.shape, data.Layout):
            fields = tuple(_leaves(member.shape, (), 0))
        raw = value.as_value() if hasattr(value, "as_value") else value
        init = int(getattr(raw, "init", 0))
        prefix = tuple(str(p) for p in path)
        if fields and prefix[-1] == "payload":
            prefix = prefix[:-1]
        out.append(_Port(name, "input" if member.flow == In else "output", shape.width,
                         shape.signed, roles.get(name) or _role(component, path), init, fields,
                         prefix))
    return out


_MODULE_PORTS = re.compile(r"^module\s+(\S+)\s*\(([^)]*)\);", re.MULTILINE)


def _module_ports(verilog: str, name: str) -> list[str]:
    for match in _MODULE_PORTS.finditer(verilog):
        if match.group(1) == name:
            return [p.strip() for p in match.group(2).split(",") if p.strip()]
    raise ValueError(f"module {name!r} not found in the exported Verilog")


def _range(offset: int, width: int) -> str:
    return f"[{offset}]" if width == 1 else f"[{offset + width - 1}:{offset}]"


def port_header(component: wiring.Component, name: str, verilog: str) -> str:
    """The ``//`` comment documenting the ports of ``component`` exported as module ``name``.

    Lists ``clk``/``rst`` (when the module has them) and every port of the component's
    signature: ``//   <direction> <width>  <name> <signed|unsigned> <role>``; then every field
    of a port whose shape is an :mod:`amaranth.lib.data` layout (stream payloads), with its bit
    range; then the reset and the value of each output after it.

    Parameters
    ----------
    component : amaranth.lib.wiring.Component
    name : str
        The module name.
    verilog : str
        The exported module (its port list tells whether it has ``clk`` and ``rst``).

    Returns
    -------
    str
        ``//`` lines, each ending in a newline.
    """
    ports = _ports(component)
    verilog_ports = _module_ports(verilog, name)
    lines = ["// Ports (direction, width, name, signedness, role):"]
    clocked = "clk" in verilog_ports
    if clocked:
        lines.append(f"//   {'input':6} {1:3}  {'clk':16} {'unsigned':8}  clock (rising edge)")
    if "rst" in verilog_ports:
        lines.append(f"//   {'input':6} {1:3}  {'rst':16} {'unsigned':8}  synchronous reset, "
                     "active high")
    for p in ports:
        sign = "signed" if p.signed else "unsigned"
        lines.append(f"//   {p.direction:6} {p.width:3}  {p.name:16} {sign:8}  {p.role}")
    structured = [p for p in ports if p.fields]
    if structured:
        lines.append("// Fields (bit range, field, signedness), LSB first:")
        for p in structured:
            order = ", ".join(".".join(f.path) for f in reversed(p.fields))
            lines.append(f"//   {p.name} = {{{order}}}")
            for f in p.fields:
                sign = "signed" if f.signed else "unsigned"
                lines.append(f"//     {p.name + _range(f.offset, f.width):24} "
                             f"{'.'.join(f.path):16} {sign}")
    if clocked:
        lines.append("// Reset: synchronous, active high: rst high at a rising edge of clk sets")
        lines.append("//   every register to its reset value; registers also start at it")
        lines.append("//   (Verilog initial values), so no reset is needed after power-up.")
        outs = [p for p in ports if p.direction == "output"]
        if outs:
            lines.append("// Outputs after reset:")
            lines += [f"//   {p.name} = {p.init:#x}" for p in outs]
    else:
        lines.append("// Combinational: no clock, no reset.")
    missing = [p.name for p in ports if p.name not in verilog_ports]
    if missing:
        raise ValueError(f"ports {missing!r} of the signature are missing from module {name!r}")
    return "\n".join(lines) + "\n"


def _wrap_names(ports: list[_Port]) -> dict[tuple[str, tuple[str, ...]], str]:
    """Wrapper port names: ``(port, field path) -> name``, path ``()`` for a whole port."""
    names: dict[tuple[str, tuple[str, ...]], str] = {}
    for p in ports:
        if p.fields:
            for f in p.fields:
                names[(p.name, f.path)] = "_".join((*p.wrap_prefix, *f.path))
        else:
            names[(p.name, ())] = "_".join(p.wrap_prefix)
    clash = {n for n in names.values() if list(names.values()).count(n) > 1}
    clash |= {"clk", "rst"} & set(names.values())
    for key, value in names.items():
        if value in clash:
            port, path = key
            names[key] = "__".join((port, *path)) if path else port
        if names[key] in _RESERVED_WORDS:
            names[key] += "_"
    return names


def wrapper_verilog(component: wiring.Component, name: str, verilog: str) -> str:
    """Module ``<name>_wrap``: ``name`` with one port per payload field and handshake signal.

    A port ``i__payload`` of layout ``{a, b, last}`` becomes the ports ``i_a``, ``i_b`` and
    ``i_last`` (signed where the field is), ``i__valid`` becomes ``i_valid``; other ports
    become their path joined with ``_`` (``csr__adr`` -> ``csr_adr``). A name that would clash
    keeps the netlist's spelling.

    Parameters
    ----------
    component : amaranth.lib.wiring.Component
    name : str
        The module the wrapper instantiates.
    verilog : str
        Its Verilog (for its ``clk`` and ``rst`` ports).

    Returns
    -------
    str
        The Verilog source of ``<name>_wrap``.
    """
    ports = _ports(component)
    names = _wrap_names(ports)
    verilog_ports = _module_ports(verilog, name)
    decls: list[str] = [f"input  wire {port}" for port in ("clk", "rst") if port in verilog_ports]
    body: list[str] = []
    conns = [f".{port}({port})" for port in ("clk", "rst") if port in verilog_ports]

    def decl(direction: str, width: int, signed: bool, ident: str) -> str:
        sign = " signed" if signed else ""
        rng = "" if width == 1 else f" [{width - 1}:0]"
        return f"{direction:6} wire{sign}{rng} {ident}"

    for p in ports:
        if not p.fields:
            decls.append(decl(p.direction, p.width, p.signed, names[(p.name, ())]))
            conns.append(f".{p.name}({names[(p.name, ())]})")
            continue
        inner = f"{p.name}_w"
        body.append(f"  wire [{p.width - 1}:0] {inner};" if p.width > 1 else f"  wire {inner};")
        for f in p.fields:
            ident = names[(p.name, f.path)]
            decls.append(decl(p.direction, f.width, f.signed, ident))
            if p.direction == "input":
                body.append(f"  assign {inner}{_range(f.offset, f.width)} = {ident};")
            else:
                body.append(f"  assign {ident} = {inner}{_range(f.offset, f.width)};")
        covered = sum(f.width for f in p.fields)
        if covered != p.width:
            raise ValueError(f"the fields of port {p.name!r} cover {covered} of its {p.width} "
                             "bits")
        conns.append(f".{p.name}({inner})")
    lines = [f"// {name}_wrap: {name} with one port per payload field (fixar-hw export).",
             f"module {name}_wrap (",
             ",\n".join(f"  {d}" for d in decls),
             ");"]
    lines += body
    lines.append(f"  {name} core (")
    lines.append(",\n".join(f"    {c}" for c in conns))
    lines.append("  );")
    lines.append("endmodule")
    return "\n".join(lines) + "\n"


def verilator_waivers(stem: str, name: str) -> str:
    """The Verilator configuration file for ``<stem>.v`` (module ``name``).

    One ``lint_off -rule X -file "*<stem>.v"`` line per class of :data:`GENERATOR_WARNINGS`;
    when the file stem is not the module name, ``DECLFILENAME`` for ``<stem>_wrap.v`` too.

    Parameters
    ----------
    stem : str
        The Verilog file's name without ``.v``.
    name : str
        The module name.

    Returns
    -------
    str
        The ``.vlt`` text.
    """
    lines = ["`verilator_config",
             f"// Warning classes of the generated netlist {stem}.v (Amaranth, Yosys",
             "// write_verilog), waived for that file only; the wrapper is lint-clean."]
    lines += [f'lint_off -rule {rule} -file "*{stem}.v"' for rule in GENERATOR_WARNINGS]
    if stem != name:
        lines.append(f'lint_off -rule DECLFILENAME -file "*{stem}_wrap.v"')
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------
# Export
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportedPart:
    """What :func:`export_part` wrote.

    Attributes
    ----------
    verilog, vlt : pathlib.Path
        The netlist and the Verilator configuration file.
    wrapper : pathlib.Path or None
        The wrapper, unless it was skipped.
    module : str
        The module name (the wrapper's is ``module + "_wrap"``).
    """

    verilog: Path
    vlt: Path
    wrapper: Path | None
    module: str


def _check_destination(directory: Path) -> None:
    """Raise unless ``directory`` exists as a writable directory or can be created."""
    probe = directory
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        raise ValueError(f"output directory {str(directory)!r}: {str(probe)!r} is not a "
                         "directory")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ValueError(f"output directory {str(directory)!r}: {str(probe)!r} is not writable")


def _config_header(part: Part, params: dict[str, Any], config: CoreConfig | None,
                   name: str) -> list[str]:
    lines = [f"// {name}: fixar-hw {part.component} (fixar-hw export {part.name})"]
    if config is not None:
        lines.append(f"// Configuration (config id 0x{config.config_id:08x}):")
        lines += [f"//   {line}" for line in config.to_json().splitlines()]
    if params:
        lines.append("// Parameters:")
        lines += [f"//   {key} = {_show(value)}" for key, value in params.items()]
    return lines


def documented(component: wiring.Component, name: str, netlist: str, *, part: str,
               params: Mapping[str, Any] | None = None,
               config: CoreConfig | None = None) -> str:
    """``netlist`` (module ``name`` exported from ``component``) preceded by the comment that
    documents it: the part, its configuration or parameters, and :func:`port_header`.

    Every export of a part, ``fixar-hw export`` as well as the Verilator models, writes this
    text, so a module has one header wherever it was written.

    Parameters
    ----------
    component : amaranth.lib.wiring.Component
        What was exported.
    name : str
        The module name.
    netlist : str
        :func:`fixar_hw.flow.export.to_verilog` of ``component``.
    part : str
        A key of :data:`PARTS`.
    params : mapping, optional
        The part's parsed parameters (:func:`parse_params`).
    config : CoreConfig, optional
        The configuration the part was built from.

    Returns
    -------
    str
    """
    header = _config_header(_part(part), dict(params or {}), config, name)
    return "\n".join(header) + "\n" + port_header(component, name, netlist) + netlist


def export_part(
    part: str,
    params: Mapping[str, object] | None = None,
    out_dir: str | os.PathLike[str] = ".",
    *,
    config: CoreConfig | None = None,
    name: str | None = None,
    stem: str | None = None,
    wrapper: bool = True,
) -> ExportedPart:
    """Export ``part`` as Verilog with its header, wrapper and Verilator waivers.

    Parameters
    ----------
    part : str
        A key of :data:`PARTS`.
    params : mapping, optional
        Parameters (see :func:`parse_params`); defaults for the rest.
    out_dir : str or os.PathLike
        Destination directory; created if missing.
    config : CoreConfig, optional
        Required by the parts built from a configuration (``array``, ``engine``, ``core``,
        ``soc``), refused by the others.
    name : str, optional
        Module name; default the part's (:attr:`Part.module`).
    stem : str, optional
        File name stem; default the module name.
    wrapper : bool
        Also write ``<stem>_wrap.v``. Default ``True``.

    Returns
    -------
    ExportedPart

    Raises
    ------
    ValueError, TypeError
        On a bad part, parameter, name or configuration, or an unwritable ``out_dir``, before
        anything is written; the message names the part and the parameter.
    """
    spec = _part(part)
    parsed = parse_params(part, params)
    if spec.needs_config:
        if config is None:
            raise ValueError(f"part {part!r} needs a configuration (--config cfg.json)")
        if not isinstance(config, CoreConfig):
            raise TypeError(f"part {part!r}: config must be a CoreConfig, not {config!r}")
    elif config is not None:
        raise ValueError(f"part {part!r} takes parameters, not a configuration")
    name = spec.module if name is None else name
    _check_identifier(name, "name", allow_dollar=False)
    stem = name if stem is None else stem
    if not isinstance(stem, str) or not stem or "/" in stem or stem in (".", ".."):
        raise ValueError(f"stem must be a file name without a directory, not {stem!r}")
    if not isinstance(wrapper, bool):
        raise TypeError(f"wrapper must be a bool, not {wrapper!r}")
    directory = Path(out_dir)
    _check_destination(directory)
    try:
        component = spec.build(parsed, config)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"part {part!r}: {exc}") from None

    netlist = to_verilog(component, name=name)
    text = documented(component, name, netlist, part=spec.name, params=parsed, config=config)
    wrap_text = wrapper_verilog(component, name, netlist) if wrapper else None
    vlt_text = verilator_waivers(stem, name)

    directory.mkdir(parents=True, exist_ok=True)
    verilog_path = directory / f"{stem}.v"
    vlt_path = directory / f"{stem}.vlt"
    _atomic_write_text(verilog_path, text)
    _atomic_write_text(vlt_path, vlt_text)
    wrap_path = None
    if wrap_text is not None:
        wrap_path = directory / f"{stem}_wrap.v"
        _atomic_write_text(wrap_path, wrap_text)
    return ExportedPart(verilog_path, vlt_path, wrap_path, name)


def load_params(path: str | os.PathLike[str]) -> dict[str, object]:
    """Parameters from a JSON file holding one object.

    Raises
    ------
    OSError
        If the file cannot be read.
    ValueError
        If it is not JSON or not an object.
    """
    text = Path(path).read_text(encoding="utf-8")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{os.fspath(path)}: not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ValueError(f"{os.fspath(path)}: parameters must be a JSON object, not {doc!r}")
    return doc
