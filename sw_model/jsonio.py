"""The JSON round trip of the frozen configuration classes (NumPy-free).

:class:`sw_model.arch.ddpg_config.DDPGConfig` and :class:`fixar_hw.config.CoreConfig` write
themselves as canonical JSON (sorted keys) with :func:`dumps_config` and read it back with
:func:`loads_config`. The text is canonical because identities hang on it: the ``CONFIG_ID``
register is a CRC-32 of the compact form, the build cache keys and the weight images' metadata
hold the configuration's JSON, and ``examples/configs/*.json`` are compared with their
definitions byte for byte.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Protocol, TypeVar

from sw_model.errors import ConfigError

__all__ = ["dumps_config", "loads_config"]

T = TypeVar("T", covariant=True)


class _FromDict(Protocol[T]):
    def from_dict(self, data: dict[str, Any]) -> T: ...


def dumps_config(data: Mapping[str, Any], *, indent: int | None = None,
                 compact: bool = False) -> str:
    """Canonical JSON text of a configuration's ``to_dict()``: keys sorted at every level.

    Parameters
    ----------
    data : mapping
        A JSON-able mapping.
    indent : int, optional
        Indentation of nested levels (None: one line).
    compact : bool
        No space after ``,`` and ``:`` (the form that configuration ids are computed from).

    Returns
    -------
    str
    """
    separators = (",", ":") if compact else None
    return json.dumps(data, sort_keys=True, indent=indent, separators=separators)


def loads_config(cls: _FromDict[T], text: str | bytes, what: str) -> T:
    """Read a configuration from JSON text with ``cls.from_dict``.

    Parameters
    ----------
    cls : class
        A configuration class with a ``from_dict`` class method.
    text : str or bytes
        The JSON text (a UTF-8 byte string is decoded).
    what : str
        The class's name for messages (``"CoreConfig"``).

    Returns
    -------
    object
        The configuration.

    Raises
    ------
    ConfigError
        If ``text`` is not JSON (``"CoreConfig JSON is invalid: ..."``), is not a JSON object,
        or describes an invalid configuration (the message of the ``TypeError`` or
        ``ValueError`` that ``from_dict`` raised, which is chained). A ``ValueError``.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{what} JSON is invalid: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{what} JSON must be an object, not {data!r}")
    try:
        return cls.from_dict(data)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"{what} JSON does not describe a valid configuration: {exc}") from exc
