"""What a per-layer width buys on the training engine's PE grid: DSPs, memory bits and cycles.

The row-unit mappings of :class:`sw_model.search.cost.CostModel` give every layer (or every kind)
its own engine, so a narrow layer is a cheaper engine. The training engine
(:class:`fixar_hw.train.engine.TrainingEngine`) is different: every layer of both networks runs,
one operation after another, on one AAP array (:class:`fixar_hw.train.array.PEArray`:
``cores`` grids of ``size x size`` PEs, :mod:`sw_model.arch.aap`), built for one weight format
and one activation format. :class:`EngineCostModel` prices a per-layer choice on that array.

What it models
--------------
``dsps``
    The array is built for the widest weight width ``w = max_l w_bits_l`` and the widest
    activation width ``a = max_l a_bits_l`` of the configuration, and for the build's delta
    width ``d`` (:attr:`EngineCostModel.delta_bits`) and derivative width ``g``
    (:attr:`EngineCostModel.deriv_bits`), which the search does not choose. Each PE has one
    multiplier whose operands are ``max(w, d)`` and ``max(a, d)`` bits wide (it forms ``w x``,
    ``w d`` and ``d x``), and each output column of each core two more, ``y * y`` (``a`` by
    ``a`` bits, the tanh derivative) and ``e * act'`` (``max(a, d)`` by ``g`` bits), as in
    :class:`fixar_hw.train.array.PEArray`::

        dsps = cores * (size**2 * mult18(max(w, d), max(a, d))
                        + size * (mult18(a, a) + mult18(max(a, d), g)))

    :func:`mult18` is the number of ECP5 ``MULT18X18D`` blocks Yosys' ``synth_ecp5`` gives a
    signed product (measured, see its docs): one for operands of up to 19 bits, so with
    ``d <= 18`` every choice of the search (widths up to 16) costs the same DSPs, and the
    DSPs change only when the build's deltas or derivatives are wider.
``mem_bits``
    The bits of the weight and activation words the forward pass of ``batch`` vectors
    reads, in the engine's layouts (:class:`sw_model.arch.engine.MemoryPlan`): a layer with
    ``fan_out`` ``M`` and ``fan_in`` ``N`` holds ``ceil(M/S) * ceil(N/S)`` weight tiles and
    ``ceil(M/S)`` bias words of ``S**2`` lanes, and its input is ``batch * ceil(N/S)`` words
    of ``S`` lanes (``S = size``; lanes beyond the layer are padding and are counted). With
    ``packed=True`` (the default) a layer's words are stored at its own widths, ``w_bits``
    per weight lane and ``a_bits`` per input lane: what per-layer widths buy if the memories
    keep each layer at its width. With ``packed=False`` every word is as wide as the built
    engine's memories, ``w`` and ``a`` bits per lane (:class:`fixar_hw.train.buffers.Buffers`
    stores narrow activations sign-extended in full lanes), so only the widest layer counts.
``cycles``
    The forward pass of ``batch`` vectors through the layers, one after another, each in its
    faster parallelism mode: ``sum_l CycleModel(size, cores).cycles("forward", M_l, N_l,
    batch, mode_l)`` (:class:`sw_model.arch.aap.CycleModel`,
    :func:`sw_model.arch.aap.choose_parallelism`). One tile pass per cycle whatever the
    widths, so cycles do not depend on the choices.
``luts``
    Not modelled: always 0. The grid's LUTs depend on the widest widths only, and no table
    of them against width has been measured; a search under this model must not minimise or
    limit LUTs.

What it does not model
----------------------
- Scheme ``"sp2"``: the training engine's PEs are fixed-point multipliers, so only
  ``"fixed"`` choices are priced (others raise :class:`ValueError`).
- Per-layer scales: the search's fixed scheme scales each layer's weights by its own factor
  (:func:`sw_model.search.quantize.quantize_layer`); the engine holds every layer in one
  weight format, so the search's numerics are those of an engine with per-layer scales.
- The training state: target networks, gradients and Adam's moments (their formats are the
  build's, not the search's), the last layer's output, the vector and update units, control
  and the memories' block-RAM granularity.
- The LUTs Yosys adds beside a wide product (53-117 for a 19-bit operand).
"""

from __future__ import annotations

from collections.abc import Sequence

from sw_model.arch.aap import AAPConfig, CycleModel, choose_parallelism
from sw_model.checks import check_int
from sw_model.search._checks import check_choices
from sw_model.search.cost import Cost, LayerChoice, LayerShape

__all__ = ["ENGINE_MAPPING", "MULT18_MAX_BITS", "EngineCostModel", "mult18"]

#: The name of this mapping among the search's cost models (``run_loss_search(mapping=...)``).
ENGINE_MAPPING: str = "engine"
#: The widest signed operand :func:`mult18` counts.
MULT18_MAX_BITS: int = 36


def mult18(a_bits: int, b_bits: int) -> int:
    """ECP5 ``MULT18X18D`` blocks of a signed ``a_bits x b_bits`` product.

    Yosys' ``synth_ecp5`` (pyosys 0.70) maps a signed operand of up to 19 bits onto one
    18-bit input (a 19th bit goes to LUTs beside it) and one of 20 to 36 bits onto two, and
    a product takes one block per pair of pieces::

        mult18(a, b) = pieces(a) * pieces(b),  pieces(n) = 1 if n <= 19 else 2

    Measured on registered signed products (``fixar_hw.flow.synth.resources``): 1 block from
    2 x 2 to 19 x 19 bits, 2 for 21 x 18, 24 x 16 and 33 x 18, 4 for 20 x 20, 32 x 32, 35 x 35
    and 36 x 36.

    Parameters
    ----------
    a_bits, b_bits : int
        Operand widths, from 2 to :data:`MULT18_MAX_BITS`.

    Raises
    ------
    TypeError
        If a width is not an integer.
    ValueError
        If a width is outside 2 to 36 (wider products were not measured).
    """
    a = check_int(a_bits, "a_bits", minimum=2, maximum=MULT18_MAX_BITS)
    b = check_int(b_bits, "b_bits", minimum=2, maximum=MULT18_MAX_BITS)
    return (1 if a <= 19 else 2) * (1 if b <= 19 else 2)


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


def _check_shapes(shapes: object) -> tuple[LayerShape, ...]:
    if isinstance(shapes, str | bytes) or not isinstance(shapes, Sequence):
        raise TypeError(f"shapes must be a sequence of LayerShape, not {shapes!r}")
    out = tuple(shapes)
    for s in out:
        if not isinstance(s, LayerShape):
            raise TypeError(f"shapes must hold LayerShape objects, not {s!r}")
    return out


class EngineCostModel:
    """DSPs, memory bits and cycles of a per-layer choice on the training engine's AAP array
    (see the module docs for the model and what it leaves out).

    Parameters
    ----------
    size : int, optional
        PEs per grid side, a power of two (FIXAR: 16).
    cores : int, optional
        Grids (AAP cores), at least 1.
    delta_bits : int, optional
        Width of the build's deltas (``AAPConfig.d_fmt``), 2 to 36: the PEs multiply them too.
        16 as in the ECP5 array measurements; 32 for the default 32-bit
        :class:`~sw_model.arch.ddpg_config.DDPGConfig` formats.
    deriv_bits : int, optional
        Width of the activation derivatives (``AAPConfig.g_fmt``), 2 to 36.
    packed : bool, optional
        Memory words at each layer's own widths (True), or at the widest, as the built
        engine's memories (False).

    Raises
    ------
    TypeError
        If a parameter has the wrong type.
    ValueError
        If ``size`` is not a power of two, ``cores`` is below 1 or a width is outside 2 to 36.

    Examples
    --------
    >>> model = EngineCostModel(size=4, cores=1)
    >>> shapes = [LayerShape("l1", 3, 8), LayerShape("l2", 8, 1)]
    >>> cost = model.network_cost(shapes, [LayerChoice("fixed", 8, 16),
    ...                                    LayerChoice("fixed", 4, 8)], batch=2)
    >>> cost.dsps
    24.0
    >>> cost.mem_bits == (2 + 2) * 16 * 8 + (2 + 1) * 16 * 4 + 2 * 1 * 4 * 16 + 2 * 2 * 4 * 8
    True
    """

    mapping: str = ENGINE_MAPPING

    def __init__(self, *, size: int = 16, cores: int = 2, delta_bits: int = 16,
                 deriv_bits: int = 18, packed: bool = True) -> None:
        self._size = check_int(size, "size", minimum=1)
        if self._size & (self._size - 1):
            raise ValueError(f"size must be a power of two, not {size!r}")
        self._cores = check_int(cores, "cores", minimum=1)
        self._delta_bits = check_int(delta_bits, "delta_bits", minimum=2,
                                     maximum=MULT18_MAX_BITS)
        self._deriv_bits = check_int(deriv_bits, "deriv_bits", minimum=2,
                                     maximum=MULT18_MAX_BITS)
        if not isinstance(packed, bool):
            raise TypeError(f"packed must be a bool, not {packed!r}")
        self._packed = packed
        self._cycle_model = CycleModel(self._size, self._cores)

    @classmethod
    def from_config(cls, config: AAPConfig, *, packed: bool = True) -> EngineCostModel:
        """The model of an array build: its ``size``, ``cores`` and the widths of its
        ``d_fmt`` and ``g_fmt``.

        Raises
        ------
        TypeError
            If ``config`` is not an :class:`~sw_model.arch.aap.AAPConfig`.
        ValueError
            If a format is wider than 36 bits.
        """
        if not isinstance(config, AAPConfig):
            raise TypeError(f"config must be an AAPConfig, not {config!r}")
        return cls(size=config.size, cores=config.cores, delta_bits=config.d_fmt.width,
                   deriv_bits=config.g_fmt.width, packed=packed)

    @property
    def size(self) -> int:
        """PEs per grid side."""
        return self._size

    @property
    def cores(self) -> int:
        """Grids."""
        return self._cores

    @property
    def delta_bits(self) -> int:
        """Width of the build's deltas."""
        return self._delta_bits

    @property
    def deriv_bits(self) -> int:
        """Width of the build's activation derivatives."""
        return self._deriv_bits

    @property
    def packed(self) -> bool:
        """Whether memory words are stored at each layer's widths."""
        return self._packed

    @staticmethod
    def _check_fixed(choices: Sequence[LayerChoice]) -> None:
        for k, c in enumerate(choices):
            if c.scheme != "fixed":
                raise ValueError(f"choices[{k}] must be a 'fixed' choice (the engine's PEs are "
                                 f"fixed-point multipliers), not {c!r}")

    def dsps(self, w_bits: int, a_bits: int) -> int:
        """MULT18X18D blocks of the array built for ``w_bits`` weights and ``a_bits``
        activations (the module docs' formula).

        Raises
        ------
        TypeError, ValueError
            If a width is not an integer from 2 to 36.
        """
        w = check_int(w_bits, "w_bits", minimum=2, maximum=MULT18_MAX_BITS)
        a = check_int(a_bits, "a_bits", minimum=2, maximum=MULT18_MAX_BITS)
        d, g, s = self._delta_bits, self._deriv_bits, self._size
        pe = mult18(max(w, d), max(a, d))
        column = mult18(a, a) + mult18(max(a, d), g)
        return self._cores * (s * s * pe + s * column)

    def _words(self, shape: LayerShape, batch: int) -> tuple[int, int]:
        """``(weight and bias words, input words)`` of a layer."""
        s = self._size
        rows = _ceil(shape.fan_out, s)
        return rows * _ceil(shape.fan_in, s) + rows, batch * _ceil(shape.fan_in, s)

    def weight_bits(self, shapes: Sequence[LayerShape], choices: Sequence[LayerChoice]) -> int:
        """Bits of the layers' weight and bias words (packed or at the widest width).

        Raises
        ------
        TypeError, ValueError
            As :meth:`network_cost`.
        """
        return self._memory(shapes, choices, 1)[0]

    def activation_bits(self, shapes: Sequence[LayerShape], choices: Sequence[LayerChoice], *,
                        batch: int = 1) -> int:
        """Bits of the layers' input words for ``batch`` vectors (packed or at the widest
        width).

        Raises
        ------
        TypeError, ValueError
            As :meth:`network_cost`.
        """
        return self._memory(shapes, choices, batch)[1]

    def _memory(self, shapes: Sequence[LayerShape], choices: Sequence[LayerChoice],
                batch: int) -> tuple[int, int]:
        check_int(batch, "batch", minimum=1)
        shapes = _check_shapes(shapes)
        choices = check_choices(choices, len(shapes))
        self._check_fixed(choices)
        if not shapes:
            return 0, 0
        w_max = max(c.w_bits for c in choices)
        a_max = max(c.a_bits for c in choices)
        lanes_w, lanes_a = self._size * self._size, self._size
        weights = acts = 0
        for shape, c in zip(shapes, choices, strict=True):
            w_words, a_words = self._words(shape, batch)
            weights += w_words * lanes_w * (c.w_bits if self._packed else w_max)
            acts += a_words * lanes_a * (c.a_bits if self._packed else a_max)
        return weights, acts

    def cycles(self, shapes: Sequence[LayerShape], *, batch: int = 1) -> int:
        """Cycles of the forward pass of ``batch`` vectors (see the module docs).

        Raises
        ------
        TypeError, ValueError
            For shapes that are not LayerShape objects or a batch below 1.
        """
        check_int(batch, "batch", minimum=1)
        total = 0
        for s in _check_shapes(shapes):
            mode = choose_parallelism(self._cycle_model, "forward", s.fan_out, s.fan_in, batch)
            total += self._cycle_model.cycles("forward", s.fan_out, s.fan_in, batch, mode)
        return total

    def network_cost(self, shapes: Sequence[LayerShape], choices: Sequence[LayerChoice], *,
                     batch: int = 1) -> Cost:
        """Cost of a network's forward pass on the array: ``luts`` 0 (not modelled),
        :meth:`dsps` of the widest widths, ``mem_bits`` the sum of :meth:`weight_bits` and
        :meth:`activation_bits`, and :meth:`cycles`.

        Parameters
        ----------
        shapes : sequence of LayerShape
            The layers, in order.
        choices : sequence of LayerChoice
            One ``"fixed"`` choice per layer.
        batch : int, optional
            Vectors per forward pass, at least 1.

        Returns
        -------
        Cost
            The zero cost for an empty network.

        Raises
        ------
        TypeError
            If ``shapes`` or ``choices`` is not a sequence of the right objects, or ``batch``
            is not an integer.
        ValueError
            If the lengths differ, ``batch`` is below 1 or a choice is not ``"fixed"``.
        """
        weights, acts = self._memory(shapes, choices, batch)
        if not shapes:
            return Cost(0.0, 0.0, 0, 0)
        dsps = self.dsps(max(c.w_bits for c in choices), max(c.a_bits for c in choices))
        return Cost(0.0, float(dsps), weights + acts, self.cycles(shapes, batch=batch))

    def __repr__(self) -> str:
        return (f"EngineCostModel(size={self._size}, cores={self._cores}, "
                f"delta_bits={self._delta_bits}, deriv_bits={self._deriv_bits}, "
                f"packed={self._packed})")
