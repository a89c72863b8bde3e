"""Directives of the fixar-hw documentation.

``regmap``
    The register map of a configuration file (a path relative to the repository root), rendered
    from :func:`fixar_hw.soc.csr.register_map` at build time, so the page cannot drift from the
    hardware.

Sections numpydoc does not know
    The components document their ports in a ``Members`` section (as Amaranth's own components
    do), and a few classes have ``Timing`` or ``Formats`` sections. numpydoc drops sections it
    does not know, so they are taken out of the docstring before numpydoc reads it and put back
    after it, as a rubric followed by the section's text (a definition list for ``Members``).
"""

from __future__ import annotations

import inspect
import re
import warnings
from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import Directive
from numpydoc.docscrape import NumpyDocString
from sphinx.application import Sphinx

ROOT = Path(__file__).resolve().parents[2]


class RegisterMapDirective(Directive):
    """``regmap CONFIG.json``: the Markdown register map of one configuration."""

    required_arguments = 1
    has_content = False

    def run(self) -> list[nodes.Node]:
        from docutils.statemachine import StringList

        from fixar_hw.config import CoreConfig
        from fixar_hw.soc.csr import register_map

        path = ROOT / self.arguments[0]
        config = CoreConfig.from_json(path.read_text())
        text = register_map(config).to_markdown()
        # drop the generated top-level title: the page has its own headings
        lines = text.splitlines()[1:]
        container = nodes.container()
        self.state.nested_parse(StringList(lines, source=str(path)), self.content_offset,
                                container)
        return container.children


_NUMPYDOC_SECTIONS = {
    "Parameters", "Returns", "Yields", "Receives", "Raises", "Warns", "Other Parameters",
    "Attributes", "Methods", "See Also", "Notes", "Warnings", "References", "Examples", "Summary",
    "Extended Summary", "index",
}
_UNDERLINE = re.compile(r"^\s*-{3,}\s*$")
_KEPT_KEY = "fixar_docs_kept_sections"


def _section_starts(lines: list[str]) -> list[int]:
    return [i for i in range(len(lines) - 1)
            if lines[i].strip() and _UNDERLINE.match(lines[i + 1])
            and len(lines[i + 1].strip()) >= len(lines[i].strip())]


def _take_unknown_sections(app: Sphinx, what: str, name: str, obj: object, options: object,
                           lines: list[str]) -> None:
    if what == "module":
        return
    starts = _section_starts(lines)
    kept: list[tuple[str, list[str]]] = []
    for k in reversed(range(len(starts))):
        start = starts[k]
        end = starts[k + 1] if k + 1 < len(starts) else len(lines)
        title = lines[start].strip()
        if title in _NUMPYDOC_SECTIONS:
            continue
        kept.insert(0, (title, lines[start + 2:end]))
        del lines[start:end]
    if kept:
        store = getattr(app.env, _KEPT_KEY, None)
        if store is None:
            store = {}
            setattr(app.env, _KEPT_KEY, store)
        store[name] = kept


def _members_rst(body: list[str]) -> list[str]:
    """A ``Members`` section (numpydoc parameter style) as a definition list."""
    out: list[str] = []
    for param in NumpyDocString("")._parse_param_list(body):
        kind = param.type.strip()
        if kind and "``" not in kind and "`" not in kind:
            kind = f"``{kind}``"
        term = f"**{param.name}**" + (f" : {kind}" if kind else "")
        desc = [line for line in param.desc]
        while desc and not desc[-1].strip():
            desc.pop()
        if desc:
            out += [term] + ["   " + line if line.strip() else "" for line in desc] + [""]
        else:
            out += ["| " + term, ""]
    return out


def _put_back_unknown_sections(app: Sphinx, what: str, name: str, obj: object,
                               options: object, lines: list[str]) -> None:
    store = getattr(app.env, _KEPT_KEY, {})
    for title, body in store.pop(name, []):
        lines += ["", f".. rubric:: {title}", ""]
        if title == "Members":
            lines += _members_rst(body)
        else:
            lines += [line.rstrip() for line in body]


def _component_signature(app: Sphinx, what: str, name: str, obj: object, options: object,
                         signature: str | None, return_annotation: str | None
                         ) -> tuple[str, str | None] | None:
    """Amaranth's component metaclass hides ``__init__``'s signature: show that one."""
    if what != "class" or signature is None or "src_loc_at" not in signature:
        return None
    init = getattr(obj, "__init__", None)
    try:
        sig = inspect.signature(init)
    except (TypeError, ValueError):
        return None
    params = [p.replace(annotation=inspect.Parameter.empty)
              for p in list(sig.parameters.values())[1:]]
    return str(sig.replace(parameters=params, return_annotation=inspect.Signature.empty)), None


def setup(app: Sphinx) -> dict:
    # numpydoc's signature pass reads the raw docstrings and warns about the sections kept here
    warnings.filterwarnings("ignore", message=r"Unknown section ", category=UserWarning)
    app.connect("autodoc-process-signature", _component_signature)
    app.add_directive("regmap", RegisterMapDirective)
    # numpydoc mangles docstrings at the default priority (500)
    app.connect("autodoc-process-docstring", _take_unknown_sections, priority=400)
    app.connect("autodoc-process-docstring", _put_back_unknown_sections, priority=600)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
