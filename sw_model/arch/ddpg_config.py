"""The DDPG training configuration: one frozen, validated object with a JSON round trip."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from sw_model.checks import check_int, check_real
from sw_model.jsonio import dumps_config, loads_config
from sw_model.numerics.fixed import FixedFormat, check_rounding

__all__ = ["FORMAT_SETS", "PRECISIONS", "DDPGConfig", "format_set"]

#: Precision modes, see :class:`DDPGConfig`.
PRECISIONS: tuple[str, ...] = ("float64", "float32", "fixed", "fixed16", "qat")

# default formats (FixedFormat is frozen, so sharing the instances is safe)
_WEIGHT_FMT = FixedFormat(32, 20)
_ACT_FMT = FixedFormat(32, 16)
_ACT16_FMT = FixedFormat(16, 10)
_DELTA_FMT = FixedFormat(32, 24)
_GRAD_FMT = FixedFormat(32, 20)
_DERIV_FMT = FixedFormat(32, 30)

_FORMAT_FIELDS = ("weight_fmt", "act_fmt", "act16_fmt", "delta_fmt", "grad_fmt", "deriv_fmt")

#: Named sets of the six formats (``DDPGConfig(**format_set(name))``). ``"fixar32"``: FIXAR's
#: 32-bit formats, the defaults. ``"narrow16"``: every format 16 bits wide, for small FPGAs:
#: the datapath's multipliers take one 18x18 DSP instead of four, at a cost in training quality
#: (16-bit activations alone already train worse, see the README).
FORMAT_SETS: Mapping[str, Mapping[str, FixedFormat]] = MappingProxyType({
    name: MappingProxyType(dict(zip(_FORMAT_FIELDS, formats, strict=True)))
    for name, formats in (
        ("fixar32", (_WEIGHT_FMT, _ACT_FMT, _ACT16_FMT, _DELTA_FMT, _GRAD_FMT, _DERIV_FMT)),
        ("narrow16", (FixedFormat(16, 12), FixedFormat(16, 10), FixedFormat(16, 10),
                      FixedFormat(16, 12), FixedFormat(16, 12), FixedFormat(16, 14))),
    )
})


def format_set(name: str) -> dict[str, FixedFormat]:
    """The formats of :data:`FORMAT_SETS` ``[name]``, as :class:`DDPGConfig` keyword arguments.

    Raises
    ------
    ValueError
        For an unknown name (the message lists the known ones).
    """
    if name not in FORMAT_SETS:
        raise ValueError(f"format set must be one of {', '.join(FORMAT_SETS)}, not {name!r}")
    return dict(FORMAT_SETS[name])


@dataclass(frozen=True)
class DDPGConfig:
    """Hyperparameters, network sizes and number formats of a DDPG agent.

    The actor is ``obs - hidden... - action`` (ReLU hidden layers, tanh output giving an action
    in ``[-1, 1]``, scaled to the environment's bounds outside the network); the critic is
    ``(obs + action) - hidden... - 1`` (ReLU hidden layers, identity output).

    Parameters
    ----------
    hidden : tuple of int
        Hidden layer sizes of both networks; FIXAR uses ``(400, 300)``.
    precision : {"float64", "float32", "fixed", "fixed16", "qat"}
        ``"float64"``/``"float32"``: NumPy floating point. ``"fixed"``: every layer operation,
        gradient and update in integer fixed point
        (:func:`sw_model.arch.ddpg_step.fixed_train_step`)
        with ``act_fmt`` activations. ``"fixed16"``: the same with ``act16_fmt`` activations
        from the first step. ``"qat"``: FIXAR's quantization-aware training: ``act_fmt``
        activations for ``qat_delay`` training steps while their ranges are tracked, then
        ``act16_fmt.width``-bit activations whose formats follow :mod:`sw_model.numerics.qat`.
    batch_size : int
        Transitions per training step.
    gamma : float
        Discount, in ``[0, 1)``; fixed-point modes use ``round(gamma * 2**16) / 2**16``.
    tau : float
        Soft-update rate of the target networks, in ``(0, 1]`` (fixed point: 16-bit code).
    actor_lr, critic_lr : float
        Adam step sizes.
    beta1, beta2, eps : float
        Adam's moment decays and epsilon (fixed point: see :mod:`sw_model.numerics.optim`).
    adam_bias_steps : int
        Length of the fixed-point Adam bias-correction table.
    buffer_size : int
        Replay buffer capacity.
    warmup_steps : int
        Environment steps with uniformly random actions before training starts.
    noise_sigma : float
        Standard deviation of the Gaussian exploration noise on the actor's ``[-1, 1]``
        output (float modes: NumPy's generator; fixed modes: :mod:`sw_model.numerics.prng`).
    noise_theta : float
        Mean reversion of the exploration noise, in ``(0, 1]``: the noise added at step ``t``
        is ``n_t = (1 - noise_theta) * n_(t-1) + noise_sigma * e_t`` with ``e_t`` standard
        normal, an Ornstein-Uhlenbeck process sampled once per step (Lillicrap et al. use
        0.15, with ``noise_sigma`` 0.2). 1 (the default) gives independent Gaussian noise.
        Correlated noise is what explores sparse-reward tasks such as MountainCarContinuous.
        Float modes only: fixed-point modes draw independent samples, as the core's noise
        generator does, and need 1.
    qat_delay : int
        Training steps with 32-bit activations before the switch (``"qat"`` only).
    weight_fmt, act_fmt, act16_fmt, delta_fmt, grad_fmt, deriv_fmt : FixedFormat
        Formats of weights and biases (Adam's step size has 16 more fraction bits, see
        :mod:`sw_model.numerics.optim`), activations (layer inputs,
        pre-activations and outputs, replay-buffer states, actions and rewards), 16-bit
        activations (``"fixed16"``; its width is QAT's ``n``), back-propagated deltas, weight
        and bias gradients (and Adam's first moment), and activation derivatives. All signed,
        at most 32 bits wide.
    rounding : {"floor", "half_up", "half_even"}
        Rounding of the layer operations (:mod:`sw_model.arch.aap`).
    seed : int
        Seeds network initialisation, warm-up actions, replay sampling and noise.

    Raises
    ------
    TypeError, ValueError
        Naming the parameter and the bad value.
    """

    hidden: tuple[int, ...] = (400, 300)
    precision: str = "float32"
    batch_size: int = 64
    gamma: float = 0.99
    tau: float = 0.005
    actor_lr: float = 1e-3
    critic_lr: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    adam_bias_steps: int = 8192
    buffer_size: int = 100_000
    warmup_steps: int = 1000
    noise_sigma: float = 0.1
    noise_theta: float = 1.0
    qat_delay: int = 5000
    weight_fmt: FixedFormat = _WEIGHT_FMT
    act_fmt: FixedFormat = _ACT_FMT
    act16_fmt: FixedFormat = _ACT16_FMT
    delta_fmt: FixedFormat = _DELTA_FMT
    grad_fmt: FixedFormat = _GRAD_FMT
    deriv_fmt: FixedFormat = _DERIV_FMT
    rounding: str = "half_even"
    seed: int = 0

    def __post_init__(self) -> None:
        hidden = self.hidden
        if isinstance(hidden, str) or not isinstance(hidden, list | tuple):
            raise TypeError(f"DDPGConfig hidden must be a tuple of integers, not {hidden!r}")
        if not hidden:
            raise ValueError(f"DDPGConfig hidden must have at least one layer, not {hidden!r}")
        object.__setattr__(self, "hidden", tuple(
            check_int(h, "hidden size", minimum=1, maximum=1 << 16, owner="DDPGConfig")
            for h in hidden))
        if not isinstance(self.precision, str):
            raise TypeError(f"DDPGConfig precision must be a string, not {self.precision!r}")
        if self.precision not in PRECISIONS:
            names = ", ".join(map(repr, PRECISIONS))
            raise ValueError(f"DDPGConfig precision must be one of {names}, "
                             f"not {self.precision!r}")
        ints = {"batch_size": (1, 1 << 20), "adam_bias_steps": (1, 1 << 20),
                "buffer_size": (1, None), "warmup_steps": (0, None), "qat_delay": (1, None),
                "seed": (0, None)}
        for name, (lo, hi) in ints.items():
            object.__setattr__(self, name, check_int(getattr(self, name), name, minimum=lo,
                                                     maximum=hi, owner="DDPGConfig"))
        if self.buffer_size < self.batch_size:
            raise ValueError(f"DDPGConfig buffer_size must be at least batch_size "
                             f"({self.batch_size}), not {self.buffer_size!r}")
        reals = {"gamma": (0, 1, False, True), "tau": (0, 1, True, False),
                 "actor_lr": (0, 1, True, False), "critic_lr": (0, 1, True, False),
                 "beta1": (0, 1, False, True), "beta2": (0, 1, False, True),
                 "eps": (0, 1, True, False), "noise_sigma": (0, 1, False, False),
                 "noise_theta": (0, 1, True, False)}
        for name, (lo, hi, lo_open, hi_open) in reals.items():
            object.__setattr__(self, name, check_real(getattr(self, name), name, minimum=lo,
                                                      maximum=hi, min_open=lo_open,
                                                      max_open=hi_open, owner="DDPGConfig"))
        for name in _FORMAT_FIELDS:
            fmt = getattr(self, name)
            if not isinstance(fmt, FixedFormat):
                raise TypeError(f"DDPGConfig {name} must be a FixedFormat, not {fmt!r}")
            if not fmt.signed or fmt.width > 32:
                raise ValueError(f"DDPGConfig {name} must be signed and at most 32 bits wide, "
                                 f"not {fmt!r}")
        for name in ("act_fmt", "act16_fmt"):
            if getattr(self, name).frac < 0:
                raise ValueError(f"DDPGConfig {name} must have frac >= 0, not "
                                 f"{getattr(self, name)!r}")
        if self.act16_fmt.width < 2 or self.act16_fmt.width > self.act_fmt.width \
                or self.act16_fmt.frac > self.act_fmt.frac:
            raise ValueError(f"DDPGConfig act16_fmt must be at least 2 bits and no wider nor finer"
                             f" than act_fmt {self.act_fmt!r}, not {self.act16_fmt!r}")
        if self.deriv_fmt.frac > self.deriv_fmt.width - 2:
            raise ValueError(f"DDPGConfig deriv_fmt must hold 1 exactly (frac <= width - 2), "
                             f"not {self.deriv_fmt!r}")
        try:
            check_rounding(self.rounding)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"DDPGConfig {exc}") from None
        if self.is_fixed:
            if self.noise_theta != 1.0:
                raise ValueError(f"DDPGConfig noise_theta must be 1 in fixed-point modes (the "
                                 f"core's noise generator draws independent samples), not "
                                 f"{self.noise_theta!r}")
            for name in ("tau", "gamma"):
                if round(getattr(self, name) * 65536) < (1 if name == "tau" else 0):
                    raise ValueError(f"DDPGConfig {name} must be representable in 16 fraction "
                                     f"bits in fixed-point modes, not {getattr(self, name)!r}")
            for name in ("actor_lr", "critic_lr"):
                if round(getattr(self, name) * 2.0 ** (self.weight_fmt.frac + 16)) < 1 << 16:
                    raise ValueError(f"DDPGConfig {name} must be at least one step of weight_fmt "
                                     f"{self.weight_fmt!r}, not {getattr(self, name)!r}")
            for name in ("beta1", "beta2"):
                if round((1.0 - getattr(self, name)) * 65536) < 1:
                    raise ValueError(f"DDPGConfig {name} must leave 1 - {name} representable in "
                                     f"16 fraction bits, not {getattr(self, name)!r}")

    @property
    def is_fixed(self) -> bool:
        """Whether the precision is a fixed-point mode."""
        return self.precision in ("fixed", "fixed16", "qat")

    @property
    def gamma_q(self) -> int:
        """``round(gamma * 2**16)``, the fixed-point discount."""
        return round(self.gamma * 65536)

    @property
    def tau_q(self) -> int:
        """``round(tau * 2**16)``, the fixed-point soft-update rate."""
        return round(self.tau * 65536)

    def replace(self, **changes: Any) -> DDPGConfig:
        """A copy with ``changes`` applied (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (formats as ``{"width", "frac", "signed"}``)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, FixedFormat):
                value = {"width": value.width, "frac": value.frac, "signed": value.signed}
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DDPGConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error.

        Raises
        ------
        TypeError
            If ``data`` is not a dict or a format entry is not a dict.
        ValueError
            For unknown keys or bad values.
        """
        if not isinstance(data, dict):
            raise TypeError(f"DDPGConfig data must be a dict, not {data!r}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"DDPGConfig has no field {unknown[0]!r}")
        kwargs = dict(data)
        for name in _FORMAT_FIELDS:
            if name in kwargs:
                spec = kwargs[name]
                if not isinstance(spec, dict) or set(spec) - {"width", "frac", "signed"}:
                    raise TypeError(f"DDPGConfig {name} must be a dict with width, frac and "
                                    f"signed, not {spec!r}")
                kwargs[name] = FixedFormat(spec["width"], spec["frac"], spec.get("signed", True))
        if "hidden" in kwargs and isinstance(kwargs["hidden"], list):
            kwargs["hidden"] = tuple(kwargs["hidden"])
        return cls(**kwargs)

    def to_json(self) -> str:
        """Canonical JSON (sorted keys)."""
        return dumps_config(self.to_dict())

    @classmethod
    def from_json(cls, text: str) -> DDPGConfig:
        """Inverse of :meth:`to_json`.

        Raises
        ------
        ConfigError
            If ``text`` is not JSON or describes an invalid configuration (a ``ValueError``;
            see :func:`sw_model.jsonio.loads_config`).
        """
        return loads_config(cls, text, "DDPGConfig")
