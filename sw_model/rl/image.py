"""Versioned binary weight images: fixed-point tensors for DMA into on-chip memories.

The NumPy fixed-point trainer writes a :class:`WeightImage` with :meth:`WeightImage.save`; the
hardware driver reads the file, checks it and DMAs every tensor payload into the accelerator's
on-chip memories as it is (payloads start 8-byte aligned from the start of the file and hold
the codes in little-endian words of the memory word width). :meth:`WeightImage.load` reads
it back into NumPy and checks everything a driver should check.

An image records the SHA-256 of the build configuration it is for (:func:`config_hash_of`), so
that a driver can refuse weights laid out for another accelerator build
(``expect_config_hash=``).

File layout, version 1
----------------------
Every integer is little-endian; ``u8``/``u16``/``u32`` are unsigned, ``i16`` is two's complement.
``align8(x)`` is ``x`` rounded up to a multiple of 8, and every padding byte is zero. Offsets
are from the start of the file.

Header (``H = 52 + M`` bytes):

======  ========  =========================================================================
offset  size      field
======  ========  =========================================================================
0       8         magic ``b"FXIMG\\x00\\r\\n"`` (the NUL and CR LF catch text-mode copies)
8       2         ``u16`` format version, 1
10      2         ``u16`` flags, 0 (every bit is reserved; a set bit is rejected)
12      4         ``u32`` tensor count ``N``
16      32        SHA-256 of the build configuration (:func:`config_hash_of`)
48      4         ``u32`` metadata length ``M`` (at most :data:`MAX_METADATA_BYTES`)
52      ``M``     metadata: a UTF-8 JSON object of strings; the writer emits canonical JSON
                  (sorted keys, no spaces, ``{}`` when empty)
======  ========  =========================================================================

Then ``N`` tensor records, in image order, the first at ``t = H`` and each next one at the
``end`` of the previous one. A record with name length ``L`` and ``D`` dimensions:

==================  ========  ================================================================
offset              size      field
==================  ========  ================================================================
``t``               2         ``u16`` name length ``L``, 1 to 64
``t+2``             ``L``     name, ASCII from ``[A-Za-z0-9_.]``, unique in the image
``t+2+L``           1         ``u8`` width, bits per code (1-64 signed, 1-63 unsigned)
``t+3+L``           2         ``i16`` frac, fraction bits (-256 to 256)
``t+5+L``           1         ``u8`` signed: 1 two's complement, 0 unsigned
``t+6+L``           1         ``u8`` number of dimensions ``D``, 0 to 4
``t+7+L``           ``4D``    ``u32`` dimensions, outermost first (C order)
``t+7+L+4D``        1         ``u8`` word bytes ``W``: the smallest of 1, 2, 4, 8 that holds
                              ``width`` bits
``t+8+L+4D``        0 to 7    zero padding up to ``p = align8(t+8+L+4D)``
``p``               ``n``     payload: ``n = W * prod(dims)`` bytes (``prod(()) = 1``), the
                              codes in C order, each a ``W``-byte little-endian word: two's
                              complement (sign-extended) for signed formats, zero-extended for
                              unsigned ones; every word must hold a code of the format
``p+n``             0 to 7    zero padding up to ``q = align8(p+n)``
``q``               4         ``u32`` CRC-32 (:func:`zlib.crc32`) of the ``n`` payload bytes
==================  ========  ================================================================

The record ends at ``end = q + 4``. Trailer, at ``e`` = the end of the last record (``H`` if
``N = 0``):

======  ====  ===============================================================================
offset  size  field
======  ====  ===============================================================================
``e``   4     ``u32`` CRC-32 of bytes ``[0, e)``: header, metadata and every record
``e+4`` 4     ``u32`` total length of the image, ``e + 8``; nothing may follow
======  ====  ===============================================================================

A driver can DMA ``data[p:p+n]`` (or ``data[p:q]``, padded to 8 bytes) of each record. Images
are at most ``2**32 - 1`` bytes. Any change to this layout bumps the version; a reader rejects
every version but its own.

Checks on reading
-----------------
:meth:`WeightImage.from_bytes` raises :class:`ImageError`, checking in this order:

1. the magic, then (as soon as 12 bytes are there) the version and the flags;
2. the structure, in file order: each section's length (a truncation names the section and the
   bytes expected and found), zero padding, and each payload's CRC;
3. the trailer: its CRC, the total length, and that nothing follows it;
4. once the bytes are known to be intact, their meaning: the metadata, each tensor's name,
   format, dimensions, word size and codes (inside the format, correctly extended), and
   unique names;
5. with ``expect_config_hash``, the configuration hash.

So a corrupted file is reported as corrupted (or truncated), not as a file with odd contents.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import struct
import tempfile
import types
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sw_model.errors import ImageError
from sw_model.numerics.fixed import FixedFormat

__all__ = [
    "ALIGNMENT",
    "FORMAT_VERSION",
    "MAGIC",
    "MAX_METADATA_BYTES",
    "MAX_NAME_LENGTH",
    "MAX_NDIM",
    "Tensor",
    "WeightImage",
    "config_hash_of",
    "word_bytes",
]

#: The first 8 bytes of every weight image.
MAGIC = b"FXIMG\x00\r\n"
#: The format version this module reads and writes.
FORMAT_VERSION = 1
#: Alignment of every payload, from the start of the file.
ALIGNMENT = 8
#: Longest tensor name.
MAX_NAME_LENGTH = 64
#: Most dimensions of a tensor.
MAX_NDIM = 4
#: Largest encoded metadata (UTF-8 JSON bytes).
MAX_METADATA_BYTES = 65536

_HEADER = struct.Struct("<8sHHI32sI")  # magic, version, flags, count, config hash, meta length
_DESC = struct.Struct("<BhBB")  # width, frac, signed, ndim
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_TRAILER = struct.Struct("<II")  # CRC-32, total length
_MAX_U32 = (1 << 32) - 1
_NAME_RE = re.compile(rf"[A-Za-z0-9_.]{{1,{MAX_NAME_LENGTH}}}")
_HASH_BYTES = 32


def word_bytes(width: int) -> int:
    """Storage word size of a ``width``-bit code: the smallest of 1, 2, 4 and 8 bytes.

    Parameters
    ----------
    width : int
        Bits per code, 1 to 64.

    Returns
    -------
    int
        1, 2, 4 or 8.
    """
    for size in (1, 2, 4):
        if width <= 8 * size:
            return size
    return 8


def config_hash_of(obj: object) -> bytes:
    """SHA-256 of the canonical JSON of a build configuration.

    The canonical JSON is ``json.dumps(obj, sort_keys=True, separators=(",", ":"))`` (ASCII,
    non-ASCII characters escaped), so key order and whitespace do not matter, but types do:
    ``1`` and ``1.0`` differ, while a tuple hashes as the list of its items.

    Parameters
    ----------
    obj : object
        A JSON-able object: dicts with string keys, lists, tuples, strings, finite numbers,
        booleans and ``None``.

    Returns
    -------
    bytes
        The 32-byte digest.

    Raises
    ------
    TypeError
        If ``obj`` holds something JSON cannot encode, or a dict key that is not a string.
    ValueError
        If ``obj`` holds a NaN or an infinity.

    Examples
    --------
    >>> config_hash_of({"b": [1, 2], "a": "x"}) == config_hash_of({"a": "x", "b": (1, 2)})
    True
    >>> config_hash_of({"a": 1}).hex()[:12]
    '015abd7f5cc5'
    """
    try:
        _check_json_keys(obj, "obj")
    except RecursionError:
        raise ValueError(
            "config_hash_of needs a JSON-able object, not a circular or too deeply nested one"
        ) from None
    try:
        text = json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except TypeError as exc:
        raise TypeError(f"config_hash_of needs a JSON-able object: {exc}") from None
    except ValueError as exc:
        raise ValueError(f"config_hash_of needs a JSON-able object: {exc}") from None
    return hashlib.sha256(text.encode("ascii")).digest()


def _check_json_keys(obj: object, where: str) -> None:
    # json.dumps would turn 1 into "1" silently, so that {1: x} and {"1": x} would collide.
    if isinstance(obj, dict):
        for key, value in obj.items():
            if not isinstance(key, str):
                raise TypeError(f"config_hash_of needs string keys, not {key!r} in {where}")
            _check_json_keys(value, f"{where}[{key!r}]")
    elif isinstance(obj, list | tuple):
        for i, value in enumerate(obj):
            _check_json_keys(value, f"{where}[{i}]")


def _short_hex(a: bytes, b: bytes) -> tuple[str, str]:
    """Abbreviated hex of two different digests, long enough to tell them apart."""
    ha, hb = a.hex(), b.hex()
    n = 12
    while n < len(ha) and ha[:n] == hb[:n]:
        n += 4
    return (ha[:n] + "..." if n < len(ha) else ha), (hb[:n] + "..." if n < len(hb) else hb)


def _align(offset: int) -> int:
    return -(-offset // ALIGNMENT) * ALIGNMENT


def _word_dtype(width: int, signed: bool) -> np.dtype:
    return np.dtype(f"<{'i' if signed else 'u'}{word_bytes(width)}")


def _encode_metadata(metadata: Mapping[str, str]) -> bytes:
    text = json.dumps(dict(metadata), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8")


@dataclass(frozen=True, eq=False)
class Tensor:
    """A named array of fixed-point codes.

    Parameters
    ----------
    name : str
        1 to 64 ASCII characters from ``[A-Za-z0-9_.]``.
    fmt : FixedFormat
        Format of every code.
    codes : array_like of int
        Codes of ``fmt``, 0 to 4 dimensions, each dimension below ``2**32``. A read-only
        ``int64`` copy is stored.

    Raises
    ------
    TypeError
        If ``name`` is not a string, ``fmt`` not a :class:`FixedFormat`, or ``codes`` does not
        hold integers.
    ValueError
        If ``name`` is invalid, ``codes`` has too many or too long dimensions, or holds a code
        outside ``fmt``.

    Notes
    -----
    Tensors compare equal when names, formats, shapes and codes are equal.

    Examples
    --------
    >>> t = Tensor("fc1.w", FixedFormat(4, 2), [[-8, 7], [0, 1]])
    >>> t
    Tensor('fc1.w', FixedFormat(4, 2), shape=(2, 2))
    >>> t.codes.dtype, t.codes.flags.writeable
    (dtype('int64'), False)
    """

    name: str
    fmt: FixedFormat
    codes: np.ndarray

    def __post_init__(self) -> None:
        name = self.name
        if not isinstance(name, str):
            raise TypeError(f"Tensor name must be a str, not {name!r}")
        if not _NAME_RE.fullmatch(name):
            raise ValueError(
                f"Tensor name must be 1 to {MAX_NAME_LENGTH} characters from [A-Za-z0-9_.], "
                f"not {name!r}"
            )
        if not isinstance(self.fmt, FixedFormat):
            raise TypeError(f"Tensor fmt must be a FixedFormat, not {self.fmt!r}")
        try:
            raw = np.asarray(self.codes)
        except ValueError as exc:
            raise ValueError(f"Tensor {name!r} codes must be a rectangular array: {exc}") from None
        if raw.ndim > MAX_NDIM:
            raise ValueError(
                f"Tensor {name!r} codes must have 0 to {MAX_NDIM} dimensions, not {raw.ndim}"
            )
        if any(d > _MAX_U32 for d in raw.shape):
            raise ValueError(
                f"Tensor {name!r} codes dimensions must be below 2**32, not {raw.shape}"
            )
        arr = self.fmt.check_codes(raw, f"Tensor {name!r} codes array")
        arr = np.array(arr, dtype=np.int64, copy=True)
        arr.setflags(write=False)
        object.__setattr__(self, "name", str(name))
        object.__setattr__(self, "codes", arr)

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of :attr:`codes`."""
        return self.codes.shape

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Tensor):
            return NotImplemented
        return (
            self.name == other.name
            and self.fmt == other.fmt
            and self.codes.shape == other.codes.shape
            and bool(np.array_equal(self.codes, other.codes))
        )

    def __hash__(self) -> int:
        return hash((self.name, self.fmt, self.codes.shape, self.codes.tobytes()))

    def __repr__(self) -> str:
        return f"Tensor({self.name!r}, {self.fmt!r}, shape={self.codes.shape})"

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuild through the constructor so that an unpickled array is read-only again.
        return (Tensor, (self.name, self.fmt, np.array(self.codes)))


@dataclass(frozen=True)
class WeightImage:
    """A set of named fixed-point tensors for one accelerator build configuration.

    Parameters
    ----------
    tensors : sequence of Tensor
        The tensors, with unique names; their order is kept (and is the order in the file).
        Stored as a tuple.
    config_hash : bytes
        The 32-byte SHA-256 of the build configuration the image is for
        (:func:`config_hash_of`).
    metadata : Mapping[str, str], optional
        Small free-form notes (at most :data:`MAX_METADATA_BYTES` as UTF-8 JSON). Stored as a
        read-only mapping sorted by key.

    Raises
    ------
    TypeError
        If a field has the wrong type.
    ValueError
        If tensor names repeat, ``config_hash`` is not 32 bytes long, or ``metadata`` is too
        large or not encodable as UTF-8.

    Examples
    --------
    >>> img = WeightImage((Tensor("w", FixedFormat(4, 2), [-8, 7, -1]),),
    ...                   config_hash_of({"rows": 8}), {"step": "1000"})
    >>> img.names, img["w"].codes.tolist()
    (('w',), [-8, 7, -1])
    >>> WeightImage.from_bytes(img.to_bytes()) == img
    True
    """

    tensors: tuple[Tensor, ...]
    config_hash: bytes
    metadata: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        tensors = self.tensors
        if not isinstance(tensors, list | tuple):
            raise TypeError(
                f"WeightImage tensors must be a tuple or list of Tensor, not {tensors!r}"
            )
        seen: set[str] = set()
        for i, t in enumerate(tensors):
            if not isinstance(t, Tensor):
                raise TypeError(f"WeightImage tensors[{i}] must be a Tensor, not {t!r}")
            if t.name in seen:
                raise ValueError(f"WeightImage tensors must have unique names; {t.name!r} repeats")
            seen.add(t.name)
        h = self.config_hash
        if not isinstance(h, bytes | bytearray):
            raise TypeError(
                f"WeightImage config_hash must be bytes (a SHA-256 digest), not {h!r}"
            )
        if len(h) != _HASH_BYTES:
            raise ValueError(
                f"WeightImage config_hash must be {_HASH_BYTES} bytes (a SHA-256 digest), "
                f"not {len(h)}"
            )
        meta = self.metadata
        if not isinstance(meta, Mapping):
            raise TypeError(f"WeightImage metadata must be a mapping of str to str, not {meta!r}")
        for key, value in meta.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise TypeError(
                    f"WeightImage metadata must map str to str, not {key!r} to {value!r}"
                )
        try:
            size = len(_encode_metadata(meta))
        except UnicodeEncodeError as exc:
            raise ValueError(f"WeightImage metadata must be encodable as UTF-8: {exc}") from None
        if size > MAX_METADATA_BYTES:
            raise ValueError(
                f"WeightImage metadata must be at most {MAX_METADATA_BYTES} bytes as JSON, "
                f"not {size}"
            )
        object.__setattr__(self, "tensors", tuple(tensors))
        object.__setattr__(self, "config_hash", bytes(h))
        object.__setattr__(self, "metadata", types.MappingProxyType(dict(sorted(meta.items()))))

    # --- access -------------------------------------------------------------------------------

    @property
    def names(self) -> tuple[str, ...]:
        """Tensor names, in image order."""
        return tuple(t.name for t in self.tensors)

    def __getitem__(self, name: str) -> Tensor:
        """The tensor called ``name``.

        Raises
        ------
        KeyError
            If there is none.
        """
        for t in self.tensors:
            if t.name == name:
                return t
        raise KeyError(name)

    def __contains__(self, name: object) -> bool:
        return any(t.name == name for t in self.tensors)

    def __len__(self) -> int:
        return len(self.tensors)

    def __hash__(self) -> int:
        return hash((self.tensors, self.config_hash, tuple(self.metadata.items())))

    def __repr__(self) -> str:
        return (
            f"WeightImage(names={self.names!r}, config_hash={self.config_hash.hex()[:12]}..., "
            f"metadata={dict(self.metadata)!r})"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (WeightImage, (self.tensors, self.config_hash, dict(self.metadata)))

    # --- bytes --------------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """Encode the image (layout in the module docstring).

        Returns
        -------
        bytes
            The image file contents.

        Raises
        ------
        ValueError
            If the image would exceed ``2**32 - 1`` bytes.
        """
        meta = _encode_metadata(self.metadata)
        out = bytearray(
            _HEADER.pack(MAGIC, FORMAT_VERSION, 0, len(self.tensors), self.config_hash, len(meta))
        )
        out += meta
        for t in self.tensors:
            name = t.name.encode("ascii")
            fmt = t.fmt
            dtype = _word_dtype(fmt.width, fmt.signed)
            out += _U16.pack(len(name)) + name
            out += _DESC.pack(fmt.width, fmt.frac, int(fmt.signed), t.codes.ndim)
            out += struct.pack(f"<{t.codes.ndim}I", *t.codes.shape)
            out += bytes([dtype.itemsize])
            out += bytes(_align(len(out)) - len(out))
            payload = t.codes.astype(dtype).tobytes(order="C")
            out += payload
            out += bytes(_align(len(out)) - len(out))
            out += _U32.pack(zlib.crc32(payload))
        total = len(out) + _TRAILER.size
        if total > _MAX_U32:
            raise ValueError(f"weight image would be {total} bytes, more than 2**32 - 1")
        out += _TRAILER.pack(zlib.crc32(out), total)
        return bytes(out)

    @classmethod
    def from_bytes(
        cls, data: bytes | bytearray | memoryview, *, expect_config_hash: bytes | None = None
    ) -> WeightImage:
        """Decode and check an image.

        Parameters
        ----------
        data : bytes-like
            The image file contents.
        expect_config_hash : bytes, optional
            The 32-byte hash of the build configuration the caller runs; an image for any
            other configuration is rejected.

        Returns
        -------
        WeightImage

        Raises
        ------
        ImageError
            If ``data`` is not a valid version-1 weight image, or not for
            ``expect_config_hash``.
        TypeError, ValueError
            If ``data`` is not bytes-like or ``expect_config_hash`` is not 32 bytes (caller
            errors, not image errors).
        """
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(f"data must be bytes-like, not {type(data).__name__}")
        if expect_config_hash is not None:
            if not isinstance(expect_config_hash, bytes | bytearray):
                raise TypeError(
                    f"expect_config_hash must be bytes (a SHA-256 digest), "
                    f"not {expect_config_hash!r}"
                )
            if len(expect_config_hash) != _HASH_BYTES:
                raise ValueError(
                    f"expect_config_hash must be {_HASH_BYTES} bytes, "
                    f"not {len(expect_config_hash)}"
                )
        data = bytes(data)
        parsed = _Parser(data).parse()
        image = parsed.build()
        if expect_config_hash is not None and image.config_hash != bytes(expect_config_hash):
            got, want = _short_hex(image.config_hash, bytes(expect_config_hash))
            raise ImageError(
                f"weight image is for configuration {got}, not the expected {want}"
            )
        return image

    # --- files --------------------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the image to ``path`` atomically.

        The bytes go to a temporary file in the same directory, which is flushed, synced to
        disk and renamed over ``path`` with :func:`os.replace`; the directory is synced
        where the platform allows. On any failure (including an interrupt) ``path`` is left
        as it was and the temporary file is removed. A new file gets mode ``0o644``; an
        existing one keeps its mode. A symbolic link at ``path`` is replaced, not followed.

        Parameters
        ----------
        path : str or os.PathLike
            Destination file.
        """
        data = self.to_bytes()
        path = os.fspath(path)
        directory = os.path.dirname(os.path.abspath(path))
        try:
            mode = os.stat(path, follow_symlinks=False).st_mode & 0o7777
        except FileNotFoundError:
            mode = 0o644
        fd, tmp = tempfile.mkstemp(
            prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory
        )
        try:
            with os.fdopen(fd, "wb") as f:
                if hasattr(os, "fchmod"):
                    os.fchmod(f.fileno(), mode)
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        _fsync_directory(directory)

    @classmethod
    def load(
        cls, path: str | os.PathLike[str], *, expect_config_hash: bytes | None = None
    ) -> WeightImage:
        """Read and check the image file at ``path``.

        Parameters
        ----------
        path : str or os.PathLike
            Image file.
        expect_config_hash : bytes, optional
            As for :meth:`from_bytes`.

        Returns
        -------
        WeightImage

        Raises
        ------
        ImageError
            As for :meth:`from_bytes`.
        OSError
            If the file cannot be read.
        """
        with open(path, "rb") as f:
            data = f.read()
        return cls.from_bytes(data, expect_config_hash=expect_config_hash)


def _fsync_directory(directory: str) -> None:
    # Makes the rename durable on POSIX; not possible (nor needed) everywhere.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


# --- reading ----------------------------------------------------------------------------------


@dataclass
class _Record:
    """One tensor record as found by the structural pass; nothing checked but its integrity."""

    index: int
    name: bytes
    width: int
    frac: int
    signed: int
    dims: tuple[int, ...]
    word: int
    payload: slice

    @property
    def label(self) -> str:
        return f"tensor #{self.index} ({self.name.decode('ascii', 'backslashreplace')!r})"


@dataclass
class _Parsed:
    data: bytes
    config_hash: bytes
    metadata: slice
    records: list[_Record]

    def build(self) -> WeightImage:
        """Semantic pass: the bytes are intact, now check what they mean."""
        metadata = _decode_metadata(self.data[self.metadata])
        tensors = []
        first: dict[str, int] = {}
        for rec in self.records:
            tensor = _decode_tensor(rec, self.data)
            if tensor.name in first:
                raise ImageError(
                    f"duplicate tensor name {tensor.name!r} "
                    f"(tensors #{first[tensor.name]} and #{rec.index})"
                )
            first[tensor.name] = rec.index
            tensors.append(tensor)
        try:
            return WeightImage(tuple(tensors), self.config_hash, metadata)
        except (TypeError, ValueError) as exc:  # pragma: no cover - every case is checked above
            raise ImageError(str(exc)) from None


class _Parser:
    """Structural pass: find every section, check lengths, padding and CRCs."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.view = memoryview(data)

    def need(self, offset: int, size: int, section: str) -> None:
        have = max(len(self.data) - offset, 0)
        if size > have:
            raise ImageError(
                f"truncated weight image in {section}: expected {size} bytes at offset {offset}, "
                f"found {have}"
            )

    def zero_padding(self, start: int, stop: int, where: str) -> None:
        pad = self.data[start:stop]
        if pad.count(0) != len(pad):
            bad = start + next(i for i, b in enumerate(pad) if b)
            raise ImageError(f"nonzero padding {where} at offset {bad}")

    def parse(self) -> _Parsed:
        data = self.data
        head = data[: len(MAGIC)]
        if head != MAGIC[: len(head)]:
            hint = ""
            if head.startswith(b"FXIMG\x00"):
                hint = "; its line-end bytes changed, so it was probably copied in text mode"
            raise ImageError(
                f"not a fixar weight image (bad magic {head!r}, expected {MAGIC!r}{hint})"
            )
        if len(data) >= 12:  # the version decides what the rest means: check it first
            version, flags = struct.unpack_from("<HH", data, 8)
            if version != FORMAT_VERSION:
                raise ImageError(
                    f"unsupported weight image version {version} "
                    f"(this reader supports version {FORMAT_VERSION})"
                )
            if flags:
                raise ImageError(
                    f"unsupported weight image flags 0x{flags:04x} "
                    f"(version {FORMAT_VERSION} defines none)"
                )
        self.need(0, _HEADER.size, "header")
        _, _, _, count, config_hash, meta_len = _HEADER.unpack_from(data, 0)
        off = _HEADER.size
        self.need(off, meta_len, "metadata")
        metadata = slice(off, off + meta_len)
        off += meta_len
        records = []
        for index in range(count):
            rec, off = self.record(index, off)
            records.append(rec)
        self.need(off, _TRAILER.size, "trailer")
        stored, total = _TRAILER.unpack_from(data, off)
        computed = zlib.crc32(self.view[:off])
        if stored != computed:
            raise ImageError(
                f"CRC mismatch in trailer: stored 0x{stored:08x}, computed 0x{computed:08x}"
            )
        end = off + _TRAILER.size
        if total != end:
            raise ImageError(f"trailer total length {total} does not match the image length {end}")
        if len(data) > end:
            extra = len(data) - end
            raise ImageError(
                f"trailing garbage: {extra} byte{'s' if extra != 1 else ''} after the end of "
                f"the image at offset {end}"
            )
        return _Parsed(data, config_hash, metadata, records)

    def record(self, index: int, off: int) -> tuple[_Record, int]:
        data = self.data
        section = f"tensor #{index} descriptor"
        self.need(off, 2, section)
        (name_len,) = _U16.unpack_from(data, off)
        self.need(off + 2, name_len + _DESC.size, section)
        name = data[off + 2 : off + 2 + name_len]
        off += 2 + name_len
        width, frac, signed, ndim = _DESC.unpack_from(data, off)
        off += _DESC.size
        self.need(off, 4 * ndim + 1, section)
        dims = struct.unpack_from(f"<{ndim}I", data, off)
        word = data[off + 4 * ndim]
        off += 4 * ndim + 1
        rec = _Record(index, name, width, frac, signed, dims, word, slice(0, 0))
        start = _align(off)
        nbytes = word * math.prod(dims)
        self.need(off, start - off, f"padding before {rec.label} payload")
        self.zero_padding(off, start, f"before {rec.label} payload")
        self.need(start, nbytes, f"{rec.label} payload")
        rec.payload = slice(start, start + nbytes)
        off = start + nbytes
        crc_at = _align(off)
        self.need(off, crc_at - off, f"padding after {rec.label} payload")
        self.zero_padding(off, crc_at, f"after {rec.label} payload")
        self.need(crc_at, 4, f"{rec.label} payload CRC")
        (stored,) = _U32.unpack_from(data, crc_at)
        computed = zlib.crc32(self.view[rec.payload])
        if stored != computed:
            raise ImageError(
                f"CRC mismatch in {rec.label} payload: stored 0x{stored:08x}, "
                f"computed 0x{computed:08x}"
            )
        return rec, crc_at + 4


def _decode_metadata(raw: bytes) -> dict[str, str]:
    if len(raw) > MAX_METADATA_BYTES:
        raise ImageError(
            f"metadata is {len(raw)} bytes, more than the {MAX_METADATA_BYTES} allowed"
        )

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out = dict(items)
        if len(out) != len(items):
            raise ImageError("metadata repeats a key")
        return out

    try:
        meta = json.loads(raw.decode("utf-8"), object_pairs_hook=pairs)
    except ImageError:
        raise
    except (ValueError, RecursionError) as exc:  # bad UTF-8, bad JSON, absurd numbers
        raise ImageError(f"metadata is not UTF-8 JSON: {exc}") from None
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise ImageError(f"metadata must be a JSON object of strings, not {meta!r:.80}")
    try:
        size = len(_encode_metadata(meta))
    except UnicodeEncodeError as exc:  # a lone surrogate written as a \u escape
        raise ImageError(f"metadata is not valid Unicode: {exc}") from None
    if size > MAX_METADATA_BYTES:
        raise ImageError(f"metadata is more than the {MAX_METADATA_BYTES} bytes allowed")
    return meta


def _decode_tensor(rec: _Record, data: bytes) -> Tensor:
    label = rec.label
    try:
        name = rec.name.decode("ascii")
    except UnicodeDecodeError:
        name = ""
    if not _NAME_RE.fullmatch(name):
        raise ImageError(
            f"{label}: invalid name (must be 1 to {MAX_NAME_LENGTH} characters "
            f"from [A-Za-z0-9_.])"
        )
    if rec.signed not in (0, 1):
        raise ImageError(f"{label}: signed flag must be 0 or 1, not {rec.signed}")
    try:
        fmt = FixedFormat(rec.width, rec.frac, bool(rec.signed))
    except ValueError as exc:
        raise ImageError(f"{label}: invalid format: {exc}") from None
    if len(rec.dims) > MAX_NDIM:
        raise ImageError(f"{label}: {len(rec.dims)} dimensions, at most {MAX_NDIM} are supported")
    dtype = _word_dtype(fmt.width, fmt.signed)
    if rec.word != dtype.itemsize:
        raise ImageError(
            f"{label}: word size {rec.word} bytes does not match width {fmt.width} "
            f"(expected {dtype.itemsize})"
        )
    words = np.frombuffer(data, dtype=dtype, count=math.prod(rec.dims), offset=rec.payload.start)
    if words.size:
        lo, hi = int(words.min()), int(words.max())
        if lo < fmt.min_int or hi > fmt.max_int:
            bad = lo if lo < fmt.min_int else hi
            raise ImageError(
                f"{label} holds code {bad}, outside {fmt!r} codes [{fmt.min_int}, {fmt.max_int}]"
            )
    return Tensor(name, fmt, words.astype(np.int64).reshape(rec.dims))
