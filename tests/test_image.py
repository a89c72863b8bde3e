"""Weight images against an independent reference: a hand-written ``struct.pack`` encoder."""

from __future__ import annotations

import hashlib
import json
import math
import os
import pickle
import re
import struct
import zlib
from dataclasses import dataclass, replace

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sw_model.errors import ImageError
from sw_model.numerics.fixed import FixedFormat
from sw_model.rl.image import Tensor, WeightImage, config_hash_of

from .strategies import codes, fixed_formats

MAGIC = b"FXIMG\x00\r\n"
HASH = bytes(range(32))


def exact(message: str) -> str:
    """A ``match`` pattern for exactly ``message``."""
    return "^" + re.escape(message) + "$"


# --- reference encoder ----------------------------------------------------------------------


@dataclass(frozen=True)
class Raw:
    """A tensor record field by field, as written (any values, to craft bad images too)."""

    name: bytes
    width: int
    frac: int
    signed: int
    dims: tuple[int, ...]
    word: int
    payload: bytes


def ref_word(width: int) -> int:
    return 1 if width <= 8 else 2 if width <= 16 else 4 if width <= 32 else 8


def ref_raw(name: str, fmt: FixedFormat, values: list[int], dims: tuple[int, ...]) -> Raw:
    word = ref_word(fmt.width)
    payload = b"".join(v.to_bytes(word, "little", signed=fmt.signed) for v in values)
    return Raw(name.encode("ascii"), fmt.width, fmt.frac, int(fmt.signed), dims, word, payload)


def ref_meta(meta: dict[str, str]) -> bytes:
    return json.dumps(meta, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def ref_encode(records, config_hash=HASH, meta=b"{}", *, version=1, flags=0, count=None,
               pad=b"\0", total=None) -> bytes:
    """Encode an image as the layout describes, with correct CRCs whatever the fields hold."""
    out = bytearray(MAGIC)
    out += struct.pack("<HHI", version, flags, len(records) if count is None else count)
    out += config_hash + struct.pack("<I", len(meta)) + meta
    for r in records:
        out += struct.pack("<H", len(r.name)) + r.name
        out += struct.pack("<BhBB", r.width, r.frac, r.signed, len(r.dims))
        out += b"".join(struct.pack("<I", d) for d in r.dims) + struct.pack("<B", r.word)
        out += pad * (-len(out) % 8)
        assert len(out) % 8 == 0  # payloads are 8-byte aligned from the start of the file
        out += r.payload
        out += pad * (-len(out) % 8)
        out += struct.pack("<I", zlib.crc32(r.payload))
    out += struct.pack("<I", zlib.crc32(out))
    out += struct.pack("<I", len(out) + 4 if total is None else total)
    return bytes(out)


W = Raw(b"w", 4, 2, 1, (3,), 1, bytes([0xF8, 0x07, 0xFF]))  # FixedFormat(4, 2): -8, 7, -1


def small_image() -> WeightImage:
    return WeightImage(
        (
            Tensor("w", FixedFormat(4, 2), [-8, 7, -1]),
            Tensor("fc.b", FixedFormat(12, 0, signed=False), [[4095, 0], [1, 2]]),
            Tensor("s", FixedFormat(64, 3), np.int64(-(2**63))),
            Tensor("e", FixedFormat(20, 30), np.zeros((2, 0, 3), dtype=np.int64)),
        ),
        HASH,
        {"step": "10", "note": "é"},
    )


# --- golden bytes ---------------------------------------------------------------------------


def test_golden_bytes():
    img = WeightImage((Tensor("w", FixedFormat(4, 2), [-8, 7, -1]),), HASH, {"k": "v"})
    meta = b'{"k":"v"}'
    payload = bytes([0xF8, 0x07, 0xFF])  # -8, 7, -1 as sign-extended bytes
    want = b"".join([
        b"FXIMG\x00\r\n",                    # 0: magic
        struct.pack("<H", 1),                # 8: version
        struct.pack("<H", 0),                # 10: flags
        struct.pack("<I", 1),                # 12: tensor count
        HASH,                                # 16: config hash
        struct.pack("<I", len(meta)),        # 48: metadata length 9
        meta,                                # 52: metadata, ends at 61
        struct.pack("<H", 1), b"w",          # 61: name length, name
        struct.pack("<B", 4),                # 64: width
        struct.pack("<h", 2),                # 65: frac
        struct.pack("<B", 1),                # 67: signed
        struct.pack("<B", 1),                # 68: ndim
        struct.pack("<I", 3),                # 69: dims[0]
        struct.pack("<B", 1),                # 73: word bytes
        bytes(6),                            # 74: padding to 80
        payload,                             # 80: payload
        bytes(5),                            # 83: padding to 88
        struct.pack("<I", zlib.crc32(payload)),  # 88: payload CRC
    ])
    want += struct.pack("<I", zlib.crc32(want)) + struct.pack("<I", 100)  # 92: trailer
    assert len(want) == 100
    data = img.to_bytes()
    assert data == want
    assert data.hex() == (
        "4658494d47000d0a0100000001000000000102030405060708090a0b0c0d0e0f"
        "101112131415161718191a1b1c1d1e1f090000007b226b223a2276227d010077"
        "04020001010300000001000000000000f807ff00000000003082d526e0576f56"
        "64000000"
    )
    assert WeightImage.from_bytes(want) == img


# --- round trips ----------------------------------------------------------------------------


@st.composite
def tensor_specs(draw, name: str):
    frac = draw(st.one_of(st.none(), st.sampled_from([-256, -1, 0, 256])))
    fmt = draw(fixed_formats(max_width=64, frac=frac))
    ndim = draw(st.integers(0, 4))
    shape = tuple(draw(st.lists(st.integers(0, 3), min_size=ndim, max_size=ndim)))
    n = math.prod(shape)
    values = draw(st.lists(codes(fmt), min_size=n, max_size=n))
    return name, fmt, shape, values


@st.composite
def image_specs(draw):
    names = draw(st.lists(st.from_regex(r"[A-Za-z0-9_.]{1,64}", fullmatch=True),
                          max_size=4, unique=True))
    specs = [draw(tensor_specs(name)) for name in names]
    meta = draw(st.dictionaries(st.text(max_size=8), st.text(max_size=16), max_size=3))
    config = draw(st.binary(min_size=32, max_size=32))
    return specs, meta, config


@given(image_specs())
def test_round_trip(spec):
    specs, meta, config = spec
    tensors = tuple(Tensor(name, fmt, np.array(values, dtype=np.int64).reshape(shape))
                    for name, fmt, shape, values in specs)
    img = WeightImage(tensors, config, meta)
    data = img.to_bytes()
    records = [ref_raw(name, fmt, values, shape) for name, fmt, shape, values in specs]
    assert data == ref_encode(records, config, ref_meta(meta))
    back = WeightImage.from_bytes(data, expect_config_hash=config)
    assert back == img
    assert back.names == tuple(name for name, *_ in specs)
    assert back.config_hash == config
    assert dict(back.metadata) == meta
    for name, fmt, shape, values in specs:
        t = back[name]
        assert t.fmt == fmt
        assert t.codes.dtype == np.int64 and t.codes.shape == shape
        assert t.codes.reshape(-1).tolist() == values
        assert not t.codes.flags.writeable


def test_save_load(tmp_path):
    img = small_image()
    path = tmp_path / "weights.fximg"
    img.save(path)
    assert path.read_bytes() == img.to_bytes()
    assert WeightImage.load(path, expect_config_hash=HASH) == img
    assert WeightImage.load(str(path)) == img
    assert os.listdir(tmp_path) == ["weights.fximg"]
    img2 = WeightImage(img.tensors[:1], HASH)
    img2.save(path)  # over an existing file
    assert WeightImage.load(path) == img2
    assert os.listdir(tmp_path) == ["weights.fximg"]


# --- corruption -----------------------------------------------------------------------------


def test_every_bit_flip_is_detected():
    data = small_image().to_bytes()
    for offset in range(len(data)):
        for bit in range(8):
            bad = bytearray(data)
            bad[offset] ^= 1 << bit
            with pytest.raises(ImageError):
                WeightImage.from_bytes(bytes(bad))


@given(st.data())
def test_random_damage_raises_image_error(data):
    good_bytes = small_image().to_bytes()
    bad = bytearray(good_bytes)
    for _ in range(data.draw(st.integers(1, 6))):
        bad[data.draw(st.integers(0, len(bad) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(bad) + 4))
    bad = bytes(bad[:cut]) + data.draw(st.binary(max_size=4)) if cut < len(bad) else bytes(bad)
    if bad == good_bytes:
        return
    with pytest.raises(ImageError):
        WeightImage.from_bytes(bad)


@given(st.binary(max_size=200))
def test_random_bytes_after_a_good_header_raise_image_error(tail):
    with pytest.raises(ImageError):
        WeightImage.from_bytes(MAGIC + struct.pack("<HHI", 1, 0, 2) + HASH + tail)


def test_every_truncation_is_detected():
    data = small_image().to_bytes()
    for n in range(len(data)):
        with pytest.raises(ImageError, match=r"^truncated weight image in "):
            WeightImage.from_bytes(data[:n])


def test_truncation_messages():
    data = ref_encode([W], meta=b'{"k":"v"}')  # the golden layout
    cases = [
        (0, "header: expected 52 bytes at offset 0, found 0"),
        (30, "header: expected 52 bytes at offset 0, found 30"),
        (55, "metadata: expected 9 bytes at offset 52, found 3"),
        (62, "tensor #0 descriptor: expected 2 bytes at offset 61, found 1"),
        (64, "tensor #0 descriptor: expected 6 bytes at offset 63, found 1"),
        (71, "tensor #0 descriptor: expected 5 bytes at offset 69, found 2"),
        (77, "padding before tensor #0 ('w') payload: expected 6 bytes at offset 74, found 3"),
        (82, "tensor #0 ('w') payload: expected 3 bytes at offset 80, found 2"),
        (90, "tensor #0 ('w') payload CRC: expected 4 bytes at offset 88, found 2"),
        (99, "trailer: expected 8 bytes at offset 92, found 7"),
    ]
    for n, where in cases:
        with pytest.raises(ImageError, match=exact(f"truncated weight image in {where}")):
            WeightImage.from_bytes(data[:n])


def test_crc_messages():
    data = ref_encode([W], meta=b'{"k":"v"}')
    bad = bytearray(data)
    bad[81] ^= 0x10  # payload byte 1
    stored, computed = zlib.crc32(W.payload), zlib.crc32(bytes(bad[80:83]))
    with pytest.raises(ImageError, match=exact(
            f"CRC mismatch in tensor #0 ('w') payload: stored 0x{stored:08x}, "
            f"computed 0x{computed:08x}")):
        WeightImage.from_bytes(bytes(bad))
    bad = bytearray(data)
    bad[20] ^= 0x01  # config hash
    stored, computed = zlib.crc32(data[:92]), zlib.crc32(bytes(bad[:92]))
    with pytest.raises(ImageError, match=exact(
            f"CRC mismatch in trailer: stored 0x{stored:08x}, computed 0x{computed:08x}")):
        WeightImage.from_bytes(bytes(bad))


def good() -> bytes:
    return ref_encode([W])


IMAGE_ERRORS = [
    (b"PK\x03\x04" + good()[4:],
     "not a fixar weight image (bad magic b'PK\\x03\\x04G\\x00\\r\\n', "
     "expected b'FXIMG\\x00\\r\\n')"),
    (b"hello", "not a fixar weight image (bad magic b'hello', expected b'FXIMG\\x00\\r\\n')"),
    (good().replace(b"\r\n", b"\n", 1),
     "not a fixar weight image (bad magic b'FXIMG\\x00\\n\\x01', expected b'FXIMG\\x00\\r\\n'; "
     "its line-end bytes changed, so it was probably copied in text mode)"),
    (ref_encode([W], version=2), "unsupported weight image version 2 (this reader supports "
                                 "version 1)"),
    (ref_encode([W], version=2)[:12], "unsupported weight image version 2 (this reader "
                                      "supports version 1)"),
    (ref_encode([W], flags=4), "unsupported weight image flags 0x0004 (version 1 defines none)"),
    (good() + b"\0", "trailing garbage: 1 byte after the end of the image at offset 92"),
    (good() + good(), "trailing garbage: 92 bytes after the end of the image at offset 92"),
    (ref_encode([W], total=93), "trailer total length 93 does not match the image length 92"),
    (ref_encode([W], pad=b"\1"), "nonzero padding before tensor #0 ('w') payload at offset 67"),
    (ref_encode([W, W]), "duplicate tensor name 'w' (tensors #0 and #1)"),
    (ref_encode([W, replace(W, name=b"v"), W]), "duplicate tensor name 'w' (tensors #0 and #2)"),
    (ref_encode([replace(W, payload=b"\xf8\x08\xff")]),
     "tensor #0 ('w') holds code 8, outside FixedFormat(4, 2) codes [-8, 7]"),
    (ref_encode([replace(W, payload=b"\xf8\x0f\xff")]),  # -1 not sign-extended
     "tensor #0 ('w') holds code 15, outside FixedFormat(4, 2) codes [-8, 7]"),
    (ref_encode([Raw(b"u", 12, 0, 0, (1,), 2, b"\x00\x10")]),
     "tensor #0 ('u') holds code 4096, outside FixedFormat(12, 0, signed=False) codes [0, 4095]"),
    (ref_encode([replace(W, word=2, payload=bytes(6))]),
     "tensor #0 ('w'): word size 2 bytes does not match width 4 (expected 1)"),
    (ref_encode([replace(W, width=0)]),
     "tensor #0 ('w'): invalid format: FixedFormat width must be from 1 to 64 for signed "
     "formats, not 0"),
    (ref_encode([replace(W, frac=-300)]),
     "tensor #0 ('w'): invalid format: FixedFormat frac must be from -256 to 256, not -300"),
    (ref_encode([replace(W, signed=2)]), "tensor #0 ('w'): signed flag must be 0 or 1, not 2"),
    (ref_encode([replace(W, dims=(1, 1, 1, 1, 3))]),
     "tensor #0 ('w'): 5 dimensions, at most 4 are supported"),
    (ref_encode([replace(W, name=b"a b")]),
     "tensor #0 ('a b'): invalid name (must be 1 to 64 characters from [A-Za-z0-9_.])"),
    (ref_encode([replace(W, name=b"")]),
     "tensor #0 (''): invalid name (must be 1 to 64 characters from [A-Za-z0-9_.])"),
    (ref_encode([], meta=b"{"), "metadata is not UTF-8 JSON: Expecting property name enclosed "
                                "in double quotes: line 1 column 2 (char 1)"),
    (ref_encode([], meta=b""), "metadata is not UTF-8 JSON: Expecting value: line 1 column 1 "
                               "(char 0)"),
    (ref_encode([], meta=b'{"a":1}'), "metadata must be a JSON object of strings, not {'a': 1}"),
    (ref_encode([], meta=b'["a"]'), "metadata must be a JSON object of strings, not ['a']"),
    (ref_encode([], meta=b'{"a":"1","a":"2"}'), "metadata repeats a key"),
]


@pytest.mark.parametrize("data, msg", IMAGE_ERRORS, ids=[m[:48] for _, m in IMAGE_ERRORS])
def test_image_errors(data, msg):
    with pytest.raises(ImageError, match=exact(msg)):
        WeightImage.from_bytes(data)


def test_image_error_is_value_error():
    assert issubclass(ImageError, ValueError)


def test_config_hash_mismatch(tmp_path):
    img = small_image()
    path = tmp_path / "w.fximg"
    img.save(path)
    other = bytes([0xFF] * 32)
    with pytest.raises(ImageError, match=exact(
            "weight image is for configuration 000102030405..., not the expected "
            "ffffffffffff...")):
        WeightImage.load(path, expect_config_hash=other)
    # digests that share a long prefix are shown until they differ
    near = HASH[:7] + b"\xee" + HASH[8:]
    with pytest.raises(ImageError, match=exact(
            "weight image is for configuration 0001020304050607..., not the expected "
            "00010203040506ee...")):
        WeightImage.from_bytes(img.to_bytes(), expect_config_hash=near)
    last = HASH[:31] + b"\xee"
    with pytest.raises(ImageError, match=exact(
            f"weight image is for configuration {HASH.hex()}, not the expected {last.hex()}")):
        WeightImage.from_bytes(img.to_bytes(), expect_config_hash=last)


def test_from_bytes_argument_errors():
    with pytest.raises(TypeError, match=exact("data must be bytes-like, not str")):
        WeightImage.from_bytes("FXIMG")
    with pytest.raises(ValueError, match=exact("expect_config_hash must be 32 bytes, not 3")):
        WeightImage.from_bytes(good(), expect_config_hash=b"abc")
    with pytest.raises(TypeError, match=r"^expect_config_hash must be bytes"):
        WeightImage.from_bytes(good(), expect_config_hash=HASH.hex())
    assert WeightImage.from_bytes(bytearray(good())) == WeightImage.from_bytes(memoryview(good()))


# --- atomic save ----------------------------------------------------------------------------


@pytest.mark.parametrize("target, exc", [
    ("replace", OSError("disk on fire")),
    ("fsync", OSError("disk on fire")),
    ("replace", KeyboardInterrupt()),
])
@pytest.mark.parametrize("existing", [True, False])
def test_save_is_atomic(tmp_path, monkeypatch, target, exc, existing):
    path = tmp_path / "w.fximg"
    if existing:
        path.write_bytes(b"old contents")

    def boom(*args, **kwargs):
        raise exc

    monkeypatch.setattr(os, target, boom)
    with pytest.raises(type(exc)):
        small_image().save(path)
    monkeypatch.undo()
    if existing:
        assert path.read_bytes() == b"old contents"
        assert os.listdir(tmp_path) == ["w.fximg"]
    else:
        assert os.listdir(tmp_path) == []


def test_save_keeps_mode(tmp_path):
    path = tmp_path / "w.fximg"
    small_image().save(path)
    assert path.stat().st_mode & 0o777 == 0o644
    path.chmod(0o600)
    small_image().save(path)
    assert path.stat().st_mode & 0o777 == 0o600


def test_save_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError):
        small_image().save(tmp_path / "nope" / "w.fximg")
    assert os.listdir(tmp_path) == []


# --- construction ---------------------------------------------------------------------------


def test_tensor_stores_read_only_copy():
    src = np.array([[1, -2], [3, 4]], dtype=np.int32)
    t = Tensor("w", FixedFormat(8, 0), src)
    src[0, 0] = 99
    assert t.codes.tolist() == [[1, -2], [3, 4]] and t.codes.dtype == np.int64
    with pytest.raises(ValueError):
        t.codes[0, 0] = 5
    assert t.shape == (2, 2)
    assert t == Tensor("w", FixedFormat(8, 0), [[1, -2], [3, 4]])
    assert t != Tensor("w", FixedFormat(8, 1), [[1, -2], [3, 4]])
    assert t != Tensor("w", FixedFormat(8, 0), [1, -2, 3, 4])
    assert hash(t) == hash(Tensor("w", FixedFormat(8, 0), [[1, -2], [3, 4]]))
    assert repr(t) == "Tensor('w', FixedFormat(8, 0), shape=(2, 2))"
    back = pickle.loads(pickle.dumps(t))
    assert back == t and not back.codes.flags.writeable


def test_image_access():
    img = small_image()
    assert img.names == ("w", "fc.b", "s", "e")
    assert img["fc.b"].codes.tolist() == [[4095, 0], [1, 2]]
    assert "s" in img and "x" not in img and len(img) == 4
    with pytest.raises(KeyError):
        img["x"]
    assert list(img.metadata) == ["note", "step"]
    assert img.metadata == {"step": "10", "note": "é"}
    with pytest.raises(TypeError):
        img.metadata["x"] = "y"
    assert pickle.loads(pickle.dumps(img)) == img
    assert hash(img) == hash(small_image())
    assert WeightImage(list(img.tensors), bytearray(HASH)).tensors == img.tensors
    assert WeightImage((), HASH).metadata == {}


FMT = FixedFormat(4, 0)


@pytest.mark.parametrize("args, exc, msg", [
    ((3, FMT, []), TypeError, "Tensor name must be a str, not 3"),
    (("a b", FMT, []), ValueError,
     "Tensor name must be 1 to 64 characters from [A-Za-z0-9_.], not 'a b'"),
    (("", FMT, []), ValueError,
     "Tensor name must be 1 to 64 characters from [A-Za-z0-9_.], not ''"),
    (("x" * 65, FMT, []), ValueError,
     f"Tensor name must be 1 to 64 characters from [A-Za-z0-9_.], not '{'x' * 65}'"),
    (("w\n", FMT, []), ValueError,
     "Tensor name must be 1 to 64 characters from [A-Za-z0-9_.], not 'w\\n'"),
    (("w", 8, []), TypeError, "Tensor fmt must be a FixedFormat, not 8"),
    (("w", FMT, [1.5]), TypeError,
     "Tensor 'w' codes array must hold integers, not an array of float64"),
    (("w", FMT, [True]), TypeError,
     "Tensor 'w' codes array must hold integers, not an array of bool"),
    (("w", FMT, [0, 8]), ValueError,
     "Tensor 'w' codes array holds 8, outside FixedFormat(4, 0) codes [-8, 7]"),
    (("w", FMT, np.zeros((1,) * 5, dtype=np.int64)), ValueError,
     "Tensor 'w' codes must have 0 to 4 dimensions, not 5"),
    (("w", FMT, np.broadcast_to(np.int64(0), (2**32,))), ValueError,
     "Tensor 'w' codes dimensions must be below 2**32, not (4294967296,)"),
])
def test_tensor_errors(args, exc, msg):
    with pytest.raises(exc, match=exact(msg)):
        Tensor(*args)


T = Tensor("w", FMT, [1])


@pytest.mark.parametrize("kwargs, exc, msg", [
    (dict(tensors=T), TypeError,
     "WeightImage tensors must be a tuple or list of Tensor, not "
     "Tensor('w', FixedFormat(4, 0), shape=(1,))"),
    (dict(tensors=(T, 3)), TypeError, "WeightImage tensors[1] must be a Tensor, not 3"),
    (dict(tensors=(T, T)), ValueError, "WeightImage tensors must have unique names; 'w' repeats"),
    (dict(config_hash=HASH.hex()), TypeError,
     f"WeightImage config_hash must be bytes (a SHA-256 digest), not '{HASH.hex()}'"),
    (dict(config_hash=HASH[:31]), ValueError,
     "WeightImage config_hash must be 32 bytes (a SHA-256 digest), not 31"),
    (dict(metadata=[("a", "b")]), TypeError,
     "WeightImage metadata must be a mapping of str to str, not [('a', 'b')]"),
    (dict(metadata={"a": 1}), TypeError, "WeightImage metadata must map str to str, not 'a' to 1"),
    (dict(metadata={"a": "x" * 70000}), ValueError,
     "WeightImage metadata must be at most 65536 bytes as JSON, not 70008"),
])
def test_image_construction_errors(kwargs, exc, msg):
    args = dict(tensors=(T,), config_hash=HASH) | kwargs
    with pytest.raises(exc, match=exact(msg)):
        WeightImage(**args)


def test_metadata_must_be_utf8():
    with pytest.raises(ValueError, match=r"^WeightImage metadata must be encodable as UTF-8: "):
        WeightImage((), HASH, {"a": "\ud800"})
    with pytest.raises(ImageError, match=r"^metadata is not valid Unicode: "):
        WeightImage.from_bytes(ref_encode([], meta=b'{"a":"\\ud800"}'))


# --- configuration hash ---------------------------------------------------------------------


def test_config_hash_of():
    want = hashlib.sha256(b'{"a":"x","b":[1,2.5,true,null],"c":{"d":"\\u00e9"}}').digest()
    assert config_hash_of({"c": {"d": "é"}, "b": (1, 2.5, True, None), "a": "x"}) == want
    assert config_hash_of({"a": 1}) != config_hash_of({"a": 1.0})
    msg = "config_hash_of needs string keys, not 1 in obj['a']"
    with pytest.raises(TypeError, match=exact(msg)):
        config_hash_of({"a": {1: "x"}})
    with pytest.raises(TypeError, match=r"^config_hash_of needs a JSON-able object: "):
        config_hash_of({"a": {1, 2}})
    with pytest.raises(ValueError, match=r"^config_hash_of needs a JSON-able object: "):
        config_hash_of([float("nan")])
    loop: list = []
    loop.append(loop)
    with pytest.raises(ValueError, match=exact(
            "config_hash_of needs a JSON-able object, not a circular or too deeply nested one")):
        config_hash_of(loop)
