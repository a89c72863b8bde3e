"""The host side of the UART bridge: encoding, decoding, and SerialBus against a fake bridge.

The fake bridge is a second, independent implementation of the byte protocol (documented in
:mod:`fixar_hw.soc.bridges`) over a dict memory with failing addresses, so these tests are fast;
``tests/test_bridges.py`` runs the same driver against the simulated hardware.
"""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fixar_hw.host.serial_link import (
    BusError,
    SerialBus,
    decode_read_reply,
    decode_write_reply,
    encode_read,
    encode_write,
    read_reply_length,
)


class FakeBridgePort:
    """A port that answers like the bridge: memory ``mem``, accesses to ``bad`` fail."""

    def __init__(self, mem: dict, bad: set, data_width: int = 32, addr_width: int = 32,
                 drop: int = 0) -> None:
        self.mem, self.bad = mem, bad
        self.bpw = data_width // 8
        self.amask = (1 << addr_width) - 1
        self.inbox = bytearray()
        self.outbox = bytearray()
        self.commands = []
        self.drop = drop  # reply bytes to lose at the end of each read (to test timeouts)

    def write(self, data: bytes) -> int:
        self.inbox += data
        self._run()
        return len(data)

    def read(self, n: int) -> bytes:
        out = bytes(self.outbox[:n])
        del self.outbox[:n]
        return out

    def _run(self) -> None:
        while self.inbox:
            cmd = self.inbox[0]
            if cmd not in (1, 2):
                del self.inbox[:1]
                self.outbox.append(0xFF)
                continue
            if len(self.inbox) < 7:
                return
            addr = int.from_bytes(self.inbox[1:5], "little")
            count = int.from_bytes(self.inbox[5:7], "little")
            if cmd == 1 and len(self.inbox) < 7 + count * self.bpw:
                return
            self.commands.append((cmd, addr, count))
            body = self.inbox[7:7 + count * self.bpw] if cmd == 1 else b""
            del self.inbox[:7 + len(body)]
            done, status, data = 0, 0, bytearray()
            for i in range(count):
                a = (addr + i) & self.amask
                if status or a in self.bad:
                    status = 1
                    data += bytes(self.bpw)
                    continue
                if cmd == 1:
                    self.mem[a] = int.from_bytes(body[i * self.bpw:(i + 1) * self.bpw], "little")
                else:
                    data += self.mem.get(a, 0).to_bytes(self.bpw, "little")
                done += 1
            reply = (bytes(data) if cmd == 2 else b"") + bytes([status]) \
                + done.to_bytes(2, "little")
            self.outbox += reply[:len(reply) - self.drop]


def test_encodings():
    assert encode_write(0x04030201, [0x11223344, 5]) == bytes(
        [1, 1, 2, 3, 4, 2, 0, 0x44, 0x33, 0x22, 0x11, 5, 0, 0, 0])
    assert encode_write(0x10, [0xAB, 0xCD], data_width=8) == bytes(
        [1, 0x10, 0, 0, 0, 2, 0, 0xAB, 0xCD])
    assert encode_read(0x10, 0x0102) == bytes([2, 0x10, 0, 0, 0, 2, 1])
    assert read_reply_length(3, 16) == 9


def test_decodings():
    assert decode_write_reply(bytes([0, 3, 0]), 3) == (0, 3)
    assert decode_write_reply(bytes([1, 1, 0]), 3) == (1, 1)
    words, status, done = decode_read_reply(bytes([1, 2, 3, 4, 0, 0, 0, 0, 1, 1, 0]), 2)
    assert (words, status, done) == ([0x04030201, 0], 1, 1)
    with pytest.raises(OSError, match=r"^a write reply has 3 bytes, not 2$"):
        decode_write_reply(bytes([0, 3]), 3)
    with pytest.raises(OSError, match=r"status 0xff"):
        decode_write_reply(bytes([0xFF, 0, 0]), 3)
    with pytest.raises(OSError, match=r"out of step"):
        decode_write_reply(bytes([0, 2, 0]), 3)  # ok but not every word done
    with pytest.raises(OSError, match=r"out of step"):
        decode_write_reply(bytes([1, 4, 0]), 3)  # more done than asked


@pytest.mark.parametrize(("call", "exc", "message"), [
    (lambda: encode_read(-1, 1), ValueError, r"^addr must be from 0 to 4294967295, not -1$"),
    (lambda: encode_read(0, 65536), ValueError, r"^count must be from 0 to 65535, not 65536$"),
    (lambda: encode_read(0, 1.0), TypeError, r"^count must be an integer, not 1.0$"),
    (lambda: encode_write(0, [256], data_width=8), ValueError,
     r"^words\[0\] must be from 0 to 255, not 256$"),
    (lambda: encode_write(0, b"ab"), TypeError, r"^words must be a sequence of integers"),
    (lambda: encode_write(0, [1], data_width=12), ValueError,
     r"^data_width must be 8, 16, 32 or 64, not 12$"),
    (lambda: SerialBus(object()), TypeError, r"^port must have write\(bytes\) and read\(n\)"),
    (lambda: SerialBus(FakeBridgePort({}, set()), max_count=0), ValueError,
     r"^max_count must be from 1 to 65535, not 0$"),
    (lambda: SerialBus(FakeBridgePort({}, set()), data_width=True), TypeError,
     r"^data_width must be an integer, not True$"),
    (lambda: SerialBus(FakeBridgePort({}, set())).read(0, -1), ValueError,
     r"^count must be from 0 to 4294967296, not -1$"),
    (lambda: SerialBus(FakeBridgePort({}, set())).read(2**32 - 1, 2), ValueError,
     r"^addr \+ count must be at most 2\*\*32, not 0xffffffff \+ 2$"),
    (lambda: SerialBus(FakeBridgePort({}, set())).write(0, [1, -1]), ValueError,
     r"^words\[1\] must be from 0 to 4294967295, not -1$"),
])
def test_bad_arguments(call, exc, message):
    with pytest.raises(exc, match=message):
        call()


def test_short_reply_is_a_timeout():
    bus = SerialBus(FakeBridgePort({}, set(), drop=1))
    with pytest.raises(TimeoutError, match=r"^serial port returned 10 of the 11 reply bytes"):
        bus.read(0, 2)


def test_bus_error_reports_address_and_progress_across_chunks():
    mem: dict = {}
    port = FakeBridgePort(mem, {7})
    bus = SerialBus(port, max_count=3)
    with pytest.raises(BusError) as info:
        bus.write(2, list(range(10)))
    assert (info.value.addr, info.value.words_done) == (7, 5)
    assert isinstance(info.value, RuntimeError)
    assert mem == {2 + i: i for i in range(5)}
    assert [c[2] for c in port.commands] == [3, 3]  # stopped after the failing chunk


ops = st.lists(st.one_of(
    st.tuples(st.just("w"), st.integers(0, 40), st.lists(st.integers(0, 2**64 - 1),
                                                         max_size=9)),
    st.tuples(st.just("r"), st.integers(0, 40), st.integers(0, 9))), max_size=8)


@given(st.sampled_from([8, 16, 32, 64]), st.integers(1, 4), ops,
       st.sets(st.integers(0, 50), max_size=3), st.dictionaries(st.integers(0, 50),
                                                                st.integers(0, 2**64 - 1)))
def test_serial_bus_against_a_fake_bridge(data_width, max_count, ops, bad, init):
    mask = (1 << data_width) - 1
    mem = {a: v & mask for a, v in init.items()}
    model = dict(mem)
    port = FakeBridgePort(mem, bad, data_width)
    bus = SerialBus(port, data_width=data_width, max_count=max_count)
    for op, addr, arg in ops:
        span = range(addr, addr + (len(arg) if op == "w" else arg))
        fail = next((a for a in span if a in bad), None)
        if op == "w":
            words = [w & mask for w in arg]
            for a, w in zip(span, words, strict=True):
                if a == fail:
                    break
                model[a] = w
            call, args = bus.write, (addr, words)
        else:
            call, args = bus.read, (addr, arg)
        if fail is None:
            got = call(*args)
            if op == "r":
                assert got == [model.get(a, 0) for a in span]
        else:
            with pytest.raises(BusError) as info:
                call(*args)
            assert (info.value.addr, info.value.words_done) == (fail, fail - addr)
        assert mem == model
        assert not port.outbox and not port.inbox
