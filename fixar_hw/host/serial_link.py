"""Host side of :class:`fixar_hw.soc.bridges.UARTWishboneBridge`: a Wishbone bus over a serial port.

:class:`SerialBus` reads and writes words through any port object with ``write(bytes)`` and
``read(n) -> bytes`` (a pyserial ``serial.Serial`` opened with a ``timeout`` qualifies;
pyserial is not imported here). The byte protocol is documented in :mod:`fixar_hw.soc.bridges`;
:func:`encode_write`, :func:`encode_read`, :func:`decode_write_reply` and
:func:`decode_read_reply` are its one Python definition, shared by the driver and the tests.

For simulation, :func:`uart_send` and :func:`uart_recv` drive and sample a serial line bit by
bit in an Amaranth async testbench, and :class:`SimSerialPort` wraps a running
:class:`amaranth.sim.Simulator` as a port, so the very same :class:`SerialBus` talks to the
simulated bridge::

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(wishbone_slave(dut.bus, memory), background=True)
    port = SimSerialPort(sim, dut.rx, dut.tx, divisor=4, clock_period=1e-6)
    bus = SerialBus(port)
    bus.write(0x10, [1, 2, 3])
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from typing import Any, Protocol

from fixar_hw._util import check_int
from fixar_hw.soc.bridges import CMD_READ, CMD_WRITE, STATUS_BUS_ERROR, STATUS_OK

__all__ = [
    "MAX_COUNT",
    "BusError",
    "Port",
    "SerialBus",
    "SimSerialPort",
    "decode_read_reply",
    "decode_write_reply",
    "encode_read",
    "encode_write",
    "read_reply_length",
    "uart_recv",
    "uart_send",
]

#: The most words one command moves.
MAX_COUNT = 65535
WRITE_REPLY_LENGTH = 3


class Port(Protocol):
    """What :class:`SerialBus` needs of a serial port."""

    def write(self, data: bytes) -> Any: ...

    def read(self, n: int) -> bytes: ...


class BusError(RuntimeError):
    """A Wishbone access ended with ``err``.

    Attributes
    ----------
    addr : int
        Word address of the failing access.
    words_done : int
        Words of the failing call transferred before it (all of them, over every chunk).
    """

    def __init__(self, addr: int, words_done: int) -> None:
        super().__init__(f"bus error at word address {addr:#x} after {words_done} words")
        self.addr = addr
        self.words_done = words_done


def _data_width(data_width: object) -> int:
    if isinstance(data_width, bool) or not isinstance(data_width, int):
        raise TypeError(f"data_width must be an integer, not {data_width!r}")
    if data_width not in (8, 16, 32, 64):
        raise ValueError(f"data_width must be 8, 16, 32 or 64, not {data_width!r}")
    return data_width


def encode_write(addr: int, words: Sequence[int], data_width: int = 32) -> bytes:
    """The bytes of a write command: ``0x01``, addr, count, the words (little-endian)."""
    check_int(addr, "addr", minimum=0, maximum=(1 << 32) - 1)
    bpw = _data_width(data_width) // 8
    if isinstance(words, (str, bytes)) or not isinstance(words, Sequence):
        raise TypeError(f"words must be a sequence of integers, not {words!r}")
    check_int(len(words), "len(words)", minimum=0, maximum=MAX_COUNT)
    out = bytearray([CMD_WRITE]) + addr.to_bytes(4, "little") + len(words).to_bytes(2, "little")
    for i, w in enumerate(words):
        out += check_int(w, f"words[{i}]", minimum=0,
                         maximum=(1 << data_width) - 1).to_bytes(bpw, "little")
    return bytes(out)


def encode_read(addr: int, count: int) -> bytes:
    """The bytes of a read command: ``0x02``, addr, count (little-endian)."""
    check_int(addr, "addr", minimum=0, maximum=(1 << 32) - 1)
    check_int(count, "count", minimum=0, maximum=MAX_COUNT)
    return bytes([CMD_READ]) + addr.to_bytes(4, "little") + count.to_bytes(2, "little")


def read_reply_length(count: int, data_width: int = 32) -> int:
    """Bytes of the reply to a read of ``count`` words: the words, status, count done."""
    return count * (_data_width(data_width) // 8) + 3


def _status(reply: bytes, count: int) -> tuple[int, int]:
    status = reply[0]
    done = int.from_bytes(reply[1:3], "little")
    if status not in (STATUS_OK, STATUS_BUS_ERROR):
        raise OSError(f"serial bridge replied with status {status:#04x}, which is neither "
                      f"ok (0x00) nor bus error (0x01): the link is out of step")
    if done > count or (status == STATUS_OK) != (done == count):
        raise OSError(f"serial bridge replied status {status:#04x} with {done} of {count} "
                      f"words done: the link is out of step")
    return status, done


def decode_write_reply(reply: bytes, count: int) -> tuple[int, int]:
    """Parse the 3-byte reply to a write of ``count`` words.

    Returns
    -------
    (status, done) : tuple of int
        ``STATUS_OK`` (0) or ``STATUS_BUS_ERROR`` (1), and the words written.

    Raises
    ------
    OSError
        If the reply has the wrong length or is inconsistent (the link is out of step).
    """
    if len(reply) != WRITE_REPLY_LENGTH:
        raise OSError(f"a write reply has 3 bytes, not {len(reply)}")
    return _status(reply, count)


def decode_read_reply(reply: bytes, count: int, data_width: int = 32
                      ) -> tuple[list[int], int, int]:
    """Parse the reply to a read of ``count`` words.

    Returns
    -------
    (words, status, done) : tuple
        The ``count`` words (0 from the failing one on), the status, the words read.

    Raises
    ------
    OSError
        If the reply has the wrong length or is inconsistent (the link is out of step).
    """
    bpw = _data_width(data_width) // 8
    n = read_reply_length(count, data_width)
    if len(reply) != n:
        raise OSError(f"a read reply of {count} words has {n} bytes, not {len(reply)}")
    words = [int.from_bytes(reply[i * bpw:(i + 1) * bpw], "little") for i in range(count)]
    status, done = _status(reply[count * bpw:], count)
    return words, status, done


class SerialBus:
    """Word reads and writes on the Wishbone bus behind a :class:`UARTWishboneBridge`.

    Parameters
    ----------
    port : object
        Has ``write(bytes)`` and ``read(n) -> bytes`` (fewer than ``n`` bytes on a timeout),
        e.g. ``serial.Serial(device, baud, timeout=1.0)``.
    data_width : int
        The bridge's data width: 8, 16, 32 or 64.
    max_count : int
        Most words per command (1 to 65535); longer transfers are split.

    Raises
    ------
    BusError
        From :meth:`read`/:meth:`write`, when an access ends with ``err``.
    TimeoutError
        When the port returns fewer bytes than the reply has.
    OSError
        When a reply makes no sense (the link is out of step).
    """

    def __init__(self, port: Port, *, data_width: int = 32, max_count: int = MAX_COUNT) -> None:
        if not (callable(getattr(port, "write", None)) and callable(getattr(port, "read", None))):
            raise TypeError(f"port must have write(bytes) and read(n) methods, not {port!r}")
        self._port = port
        self._data_width = _data_width(data_width)
        self._max_count = check_int(max_count, "max_count", minimum=1, maximum=MAX_COUNT)

    @property
    def data_width(self) -> int:
        return self._data_width

    @property
    def max_count(self) -> int:
        return self._max_count

    def _receive(self, n: int) -> bytes:
        data = bytes(self._port.read(n))
        if len(data) != n:
            raise TimeoutError(f"serial port returned {len(data)} of the {n} reply bytes "
                               f"expected: is the bridge connected at the right baud rate?")
        return data

    def _check(self, addr: int, count: int) -> None:
        check_int(addr, "addr", minimum=0, maximum=(1 << 32) - 1)
        if addr + count > 1 << 32:
            raise ValueError(f"addr + count must be at most 2**32, not {addr:#x} + {count}")

    def write(self, addr: int, words: Sequence[int]) -> None:
        """Write ``words`` to word addresses ``addr``, ``addr + 1``, ...

        Raises
        ------
        BusError
            At the first failing access (the words before it are written, none after).
        """
        if isinstance(words, (str, bytes)) or not isinstance(words, Sequence):
            raise TypeError(f"words must be a sequence of integers, not {words!r}")
        self._check(addr, len(words))
        limit = (1 << self._data_width) - 1
        for i, w in enumerate(words):
            check_int(w, f"words[{i}]", minimum=0, maximum=limit)
        for start in range(0, len(words), self._max_count):
            chunk = words[start:start + self._max_count]
            self._port.write(encode_write(addr + start, chunk, self._data_width))
            status, done = decode_write_reply(self._receive(WRITE_REPLY_LENGTH), len(chunk))
            if status != STATUS_OK:
                raise BusError(addr + start + done, start + done)

    def read(self, addr: int, count: int) -> list[int]:
        """Read ``count`` words from word addresses ``addr``, ``addr + 1``, ...

        Raises
        ------
        BusError
            At the first failing access.
        """
        check_int(count, "count", minimum=0, maximum=1 << 32)
        self._check(addr, count)
        out: list[int] = []
        for start in range(0, count, self._max_count):
            n = min(self._max_count, count - start)
            self._port.write(encode_read(addr + start, n))
            words, status, done = decode_read_reply(
                self._receive(read_reply_length(n, self._data_width)), n, self._data_width)
            if status != STATUS_OK:
                raise BusError(addr + start + done, start + done)
            out.extend(words)
        return out


# --- simulation ---------------------------------------------------------------------------

async def uart_send(ctx, rx_signal, data: bytes, divisor: float) -> None:
    """Drive ``rx_signal`` with ``data`` as 8N1 frames, ``divisor`` cycles per bit.

    ``divisor`` may be fractional (a sender whose baud rate is off): each bit edge falls on
    the clock edge nearest its ideal time. Returns after the last stop bit, line high.
    """
    t = 0.0
    now = 0
    for byte in bytes(data):
        bits = [0] + [(byte >> i) & 1 for i in range(8)] + [1]
        for b in bits:
            ctx.set(rx_signal, b)
            t += divisor
            end = math.floor(t + 0.5)
            await ctx.tick().repeat(end - now)
            now = end
    ctx.set(rx_signal, 1)


async def uart_recv(ctx, tx_signal, n: int, divisor: int, *, timeout: int | None = None
                    ) -> bytes:
    """Receive ``n`` 8N1 bytes from ``tx_signal``, sampling each bit in its middle.

    Raises
    ------
    TimeoutError
        If no start bit comes within ``timeout`` cycles (default: never gives up).
    AssertionError
        On a low stop bit (a framing error).
    """
    out = bytearray()
    for _ in range(n):
        waited = 0
        while ctx.get(tx_signal):
            await ctx.tick()
            waited += 1
            if timeout is not None and waited > timeout:
                raise TimeoutError(f"no start bit within {timeout} cycles after "
                                   f"{len(out)} bytes")
        await ctx.tick().repeat(divisor // 2)
        if ctx.get(tx_signal):
            raise AssertionError("start bit shorter than half a bit")
        byte = 0
        for i in range(8):
            await ctx.tick().repeat(divisor)
            byte |= ctx.get(tx_signal) << i
        await ctx.tick().repeat(divisor)
        if not ctx.get(tx_signal):
            raise AssertionError(f"framing error: low stop bit after byte {byte:#04x}")
        out.append(byte)
    return bytes(out)


class SimSerialPort:
    """A serial port onto a UART in a running Amaranth simulation.

    ``write`` queues bytes that a background testbench sends on ``rx`` (:func:`uart_send`);
    another one receives every byte on ``tx`` (:func:`uart_recv`). ``read(n)`` runs the
    simulation until ``n`` bytes have arrived, or until ``timeout_cycles`` pass without a new
    one once every written byte has been sent (then it returns the bytes it has, like a
    serial port with a timeout).

    Parameters
    ----------
    sim : amaranth.sim.Simulator
        With its clock added; the port adds its two testbenches.
    rx, tx : Signal
        The design's serial input and output.
    divisor : int
        Cycles per bit.
    clock_period : float
        The period given to ``sim.add_clock``, in seconds.
    timeout_cycles : int, optional
        Default: the time of 40 bytes.
    """

    def __init__(self, sim, rx, tx, *, divisor: int, clock_period: float,
                 timeout_cycles: int | None = None) -> None:
        self._divisor = check_int(divisor, "divisor", minimum=2, maximum=1 << 24)
        if not isinstance(clock_period, (int, float)) or not clock_period > 0:
            raise ValueError(f"clock_period must be a positive number, not {clock_period!r}")
        self._sim = sim
        self._period = float(clock_period)
        self._timeout = 400 * divisor if timeout_cycles is None else \
            check_int(timeout_cycles, "timeout_cycles", minimum=1, maximum=1 << 40)
        self._to_send: deque[bytes] = deque()
        self._received = bytearray()
        self._cycles = 0
        self._sending = False
        sim.add_testbench(self._sender(rx), background=True)
        sim.add_testbench(self._receiver(tx), background=True)

    def _sender(self, rx):
        async def sender(ctx) -> None:
            ctx.set(rx, 1)
            while True:
                if self._to_send:
                    self._sending = True
                    await uart_send(ctx, rx, self._to_send.popleft(), self._divisor)
                    self._sending = False
                else:
                    await ctx.tick()
        return sender

    def _receiver(self, tx):
        async def receiver(ctx) -> None:
            while True:
                self._received += await uart_recv(ctx, tx, 1, self._divisor)
        return receiver

    @property
    def cycles(self) -> int:
        """Clock cycles simulated so far."""
        return self._cycles

    def write(self, data: bytes) -> int:
        self._to_send.append(bytes(data))
        return len(data)

    def run(self, cycles: int) -> None:
        """Simulate ``cycles`` more clock cycles."""
        self._cycles += cycles
        self._sim.run_until(self._cycles * self._period + self._period / 2)

    def read(self, n: int) -> bytes:
        idle = 0
        have = len(self._received)
        step = self._divisor
        while len(self._received) < n and idle < self._timeout:
            self.run(step)
            if len(self._received) != have or self._sending or self._to_send:
                have, idle = len(self._received), 0
            else:
                idle += step
        out = bytes(self._received[:n])
        del self._received[:n]
        return out
