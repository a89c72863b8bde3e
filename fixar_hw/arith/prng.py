"""Exploration noise on chip: xorshift32 and a sum-of-12-uniforms Gaussian, as in the trainer.

:class:`ExplorationNoise` adds Gaussian-approximate noise to a stream of actor outputs and clips
the sum to ``[-1, 1]``, producing the same codes as the NumPy trainer's fixed-point exploration
(:meth:`sw_model.rl.ddpg.DDPGAgent.explore`): the noise of each value is
:func:`sw_model.numerics.prng.gaussian_codes` of the generator's state, drawn in stream order, so
one
seed gives the same actions on both sides.

The generator (see :mod:`sw_model.numerics.prng` for the definitions): a 32-bit xorshift32 state;
each
sample uses the next 12 outputs. xorshift32 is linear over GF(2), so ``k`` steps are a 32 x 32
bit matrix: each bit of the ``k``-th output is the parity of a fixed subset of the state's bits
(:func:`xorshift32_power`; 4 to 24 bits for the top halves used here). The 12 outputs of one
sample are therefore 12 independent XOR trees of the state, three LUT4 levels deep, rather
than a chain of 36 XOR-shift stages; the 12 uniforms are the top 16 bits of each output minus
``2**15``, summed in a balanced adder tree, multiplied by the scale code ``sigma`` (16 fraction
bits) and floored into the value format, saturating.
"""

import functools

from amaranth.hdl import Assert, Cat, Const, Module, Mux, Signal, Value, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from fixar_hw._util import silence_on_error
from fixar_hw.arith.numeric import check_format, requantize, shape_of
from sw_model.numerics.fixed import FixedFormat
from sw_model.numerics.prng import GAUSS_TERMS, SIGMA_FRAC, xorshift32

__all__ = ["ExplorationNoise", "gaussian_sum", "seed_product", "seed_to_state",
           "state_from_product", "tree_sum", "xorshift32_power",
           "xorshift32_step"]

_MASK = 0xFFFFFFFF
_SEED_MUL = 0x9E3779B9
_SEED_ADD = 0x6D2B79F5


def xorshift32_step(s: Value) -> Value:
    """The next xorshift32 state of a 32-bit state expression (shifts 13, 17, 5)."""
    s = Value.cast(s)[:32]
    s = s ^ (s << 13)[:32]
    s = s ^ (s >> 17)
    s = s ^ (s << 5)[:32]
    return s


@functools.cache
def _power_rows(k: int) -> tuple[int, ...]:
    """Row masks of the ``k``-step xorshift32 map over GF(2): bit ``b`` of the result is the
    parity of ``state & rows[b]`` (columns from the golden model's step of each unit vector)."""
    cols = []
    for i in range(32):
        x = 1 << i
        for _ in range(k):
            x = xorshift32(x)
        cols.append(x)
    return tuple(sum(((cols[i] >> b) & 1) << i for i in range(32)) for b in range(32))


def xorshift32_power(s: Value, k: int) -> Value:
    """The ``k``-th xorshift32 state after a 32-bit state expression, as one XOR tree per bit
    (``k >= 0``; ``xorshift32_power(s, 1)`` equals :func:`xorshift32_step`)."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 0:
        raise ValueError(f"k must be a non-negative integer, not {k!r}")
    s = Value.cast(s)[:32]
    if k == 0:
        return s
    bits = []
    for row in _power_rows(k):
        terms = [s[i] for i in range(32) if row >> i & 1]
        bits.append(Cat(*terms).xor() if terms else Const(0, 1))
    return Cat(*bits)


def tree_sum(values: list[Value]) -> Value:
    """The sum of ``values`` as a balanced tree of adders (depth ``ceil(log2(n))``)."""
    if not values:
        raise ValueError("tree_sum needs at least one value")
    level = [Value.cast(v) for v in values]
    while len(level) > 1:
        pairs = [level[i] + level[i + 1] for i in range(0, len(level) - 1, 2)]
        level = pairs + level[len(pairs) * 2:]
    return level[0]


def seed_to_state(seed: Value) -> Value:
    """:func:`sw_model.numerics.prng.seed_state` of a 32-bit seed (seeds are taken modulo
    ``2**32``)."""
    return state_from_product(seed_product(seed))


def seed_product(seed: Value) -> Value:
    """The first step of :func:`seed_to_state`: the seed times the seeding multiplier, modulo
    ``2**32`` (a multiplier; a pipelined seeding registers it)."""
    return (Value.cast(seed)[:32] * _SEED_MUL)[:32]


def state_from_product(product: Value) -> Value:
    """The second step of :func:`seed_to_state`: the seeding offset added to
    :func:`seed_product`, modulo ``2**32``, and a zero state replaced as in
    :func:`sw_model.numerics.prng.seed_state`."""
    state = (Value.cast(product) + _SEED_ADD)[:32]
    return Mux(state == 0, _SEED_ADD, state)


def gaussian_sum(m: Module, state: Value, *, flat_state: bool = True) -> tuple[Value, Value]:
    """The 12 outputs after ``state`` as combinational logic in ``m``.

    Returns the state after the last output and the centred sum ``S`` of the 12 uniforms (a
    signed code with 16 fraction bits, see :mod:`sw_model.numerics.prng`), from which
    :func:`sw_model.numerics.prng.gaussian_codes` scales and floors one sample. Each output is its
    own
    XOR tree of ``state`` (:func:`xorshift32_power`), and the sum a balanced adder tree.

    With ``flat_state`` False the returned state is 12 chained :func:`xorshift32_step` stages
    instead of one XOR tree per bit: the same value, 36 XOR levels deep, but in a form whose
    invertibility an SMT solver sees step by step (a k-induction proof that the state never
    becomes 0 times out on the flat form).
    """
    state = Value.cast(state)
    uniforms = []
    for n in range(1, GAUSS_TERMS + 1):
        top = Signal(16, name=f"word{n}_top")
        m.d.comb += top.eq(xorshift32_power(state, n)[16:32])
        # ``(w >> 16) - 2**15`` is the top half with its MSB inverted, read as signed
        uniforms.append((top ^ 0x8000).as_signed())
    last = Signal(32, name="word_last")
    if flat_state:
        m.d.comb += last.eq(xorshift32_power(state, GAUSS_TERMS))
    else:
        # each step in a signal of its own: one step's expression uses its input several
        # times, so unnamed, chained steps would form an exponentially large tree
        s = state
        for n in range(GAUSS_TERMS):
            step = Signal(32, name=f"step{n + 1}")
            m.d.comb += step.eq(xorshift32_step(s))
            s = step
        m.d.comb += last.eq(s)
    return last, tree_sum(uniforms)


class ExplorationNoise(wiring.Component):
    """``a = clip(y + noise, -1, 1)`` for each actor output ``y`` on :attr:`i`, on :attr:`o`.

    ``noise`` is :func:`sw_model.numerics.prng.gaussian_codes` with ``dst = fmt`` and scale
    ``sigma / 2**16``; ``1`` is ``min(2**fmt.frac, fmt.max_int)``. A transfer on :attr:`seed`
    restarts the generator at :func:`sw_model.numerics.prng.seed_state` of the seed (modulo
    ``2**32``);
    until the first seed the state is ``seed_state(0)``. The noise of one value consumes 12
    generator outputs; values are processed in stream order.

    Timing: one value per cycle, :attr:`latency` (1) cycle from :attr:`i` to :attr:`o`; the
    valid/ready rules of :mod:`amaranth.lib.stream` on every stream. A seed waits until no
    value is in flight.

    Elaborated with ``platform="formal"``, it asserts that its generator state is never 0.

    Parameters
    ----------
    fmt : FixedFormat
        Signed format of the actor outputs and of the noisy actions.

    Members
    -------
    seed : In(stream.Signature(32))
    sigma : In(unsigned(31))
        Noise scale code, ``round(sigma * 2**16)``; read when a value is taken.
    i : In(stream.Signature(shape_of(fmt)))
    o : Out(stream.Signature(shape_of(fmt)))
    """

    latency: int = 1

    @silence_on_error
    def __init__(self, fmt: FixedFormat) -> None:
        self._fmt = check_format(fmt, "fmt")
        if not fmt.signed or fmt.frac < 0:
            raise ValueError(f"fmt must be signed with frac >= 0 (it holds +-1), not {fmt!r}")
        super().__init__({
            "seed": In(stream.Signature(32)),
            "sigma": In(unsigned(31)),
            "i": In(stream.Signature(shape_of(fmt))),
            "o": Out(stream.Signature(shape_of(fmt))),
        })

    @property
    def fmt(self) -> FixedFormat:
        """Format of the values."""
        return self._fmt

    def elaborate(self, platform) -> Module:
        m = Module()
        fmt = self._fmt
        state = Signal(32, init=int(_SEED_ADD))  # seed_state(0)
        if platform == "formal":
            # xorshift32 never reaches its stuck state (proved by formal/arith/prng.py); the
            # chained state update below keeps this induction tractable
            m.d.comb += Assert(state != 0, "state nonzero")
        next_state, total = gaussian_sum(m, state, flat_state=False)
        noise = requantize(total * self.sigma, 16 + SIGMA_FRAC, fmt, "floor", "saturate")
        one = min(1 << fmt.frac, fmt.max_int)
        raw = self.i.payload + noise
        clipped = Mux(raw > one, one, Mux(raw < -one, -one, raw))

        advance = ~self.o.valid | self.o.ready
        m.d.comb += [self.i.ready.eq(advance),
                     self.seed.ready.eq(~self.o.valid & ~self.i.valid)]
        with m.If(advance):
            m.d.sync += [self.o.valid.eq(self.i.valid), self.o.payload.eq(clipped)]
        with m.If(self.i.valid & advance):
            m.d.sync += state.eq(next_state)
        with m.Elif(self.seed.valid & self.seed.ready):
            m.d.sync += state.eq(seed_to_state(self.seed.payload))
        return m

    def __repr__(self) -> str:
        return f"ExplorationNoise({self._fmt!r})"
