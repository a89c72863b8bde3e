"""DDPG networks and the pure training steps, in floating point and in bit-exact fixed point.

Networks
--------
Parameters are plain dicts ``{"actor": {...}, "critic": {...}}`` (:data:`Weights`) whose inner
dicts map ``"l1.w", "l1.b", ..., "lL.w", "lL.b"`` to arrays; ``lK.w`` has shape
``(out, in)`` (row ``m`` holds the weights of output ``m``, the layout of
:mod:`sw_model.arch.aap`). Float modes hold float arrays; fixed-point modes hold ``int64`` codes of
``config.weight_fmt``. The actor maps an observation to ``a`` in ``[-1, 1]`` (ReLU hidden
layers, tanh output); the critic maps ``[obs, a]`` (concatenated) to ``Q`` (ReLU hidden layers,
identity output). Actions in the replay buffer and at the critic are these normalized actions;
the environment receives ``low + (a + 1) * (high - low) / 2``.

Activation points
-----------------
``"actor.x0"`` is the actor's input, ``"actor.xK"`` the output of its layer ``K``; likewise
``"critic.xK"``. :func:`activation_formats` gives each point's format: ``config.act_fmt`` in
``"fixed"`` mode; ``config.act16_fmt`` in ``"fixed16"`` mode; in ``"qat"`` mode ``act_fmt`` for
the first ``qat_delay`` steps, then the formats frozen by :mod:`sw_model.numerics.qat` from the
ranges
tracked until then. The critic's output ``Q`` (``critic.xL``) always keeps ``act_fmt``: it
feeds no matrix product. A layer's pre-activation ``z`` and output share the format of its
output point (as in :func:`sw_model.arch.aap.forward`).

The fixed-point training step
-----------------------------
:func:`fixed_train_step` is a pure function; the order of operations, with every rounding:

1. Formats: ``fmt = activation_formats(config, opt)`` (those of this step).
2. Inputs: batch states ``s``, ``s'`` and actions ``a`` are ``act_fmt`` codes; each enters a
   network input point with :func:`sw_model.numerics.qat.shift_quantize` (floor, saturate), the
   critic's input being ``[s, a]`` converted as one vector.
3. Target: ``a' = actor_target(s')``; ``q' = critic_target([s', a'])``; with ``done`` 0 or 1,
   ``y = sat_act(r + (1 - done) * mul_shift(q', gamma_q, 16, "half_even"))``.
4. Critic: ``Q = critic([s, a])``; output delta ``d = round_half_up(2 (Q - y) / B)`` as
   ``delta_fmt`` codes (the mean-squared-error gradient; an exact rational rounded by
   ``floor((2n + D) / (2D))``), saturated. Back-propagation: for ``K = L .. 1``,
   ``G_K = weight_gradient(d, x_{K-1})`` and ``g_K = bias_gradient(d)`` (``grad_fmt``), then
   ``d = backward(W_K, d, x_{K-1}, kind=act of x_{K-1})`` (``delta_fmt``; derivatives in
   ``deriv_fmt``). Adam (:func:`sw_model.numerics.optim.adam_fixed`) updates every critic tensor
   with
   step ``t = opt.step + 1``.
5. Actor: ``a_mu = actor(s)`` (tanh output codes at ``actor.xL``); ``Q = critic_new([s,
   a_mu])`` with the updated critic; output delta ``round_half_up(-1 / B)`` for every row
   (``-mean Q``); back-propagation through the critic as in 4 without gradients, and through
   its first layer with ``kind="identity"``, which gives ``dQ/d[s, a]``; the action columns
   ``d_a``, times ``tanh' = 1 - y**2`` (:func:`sw_model.numerics.activation.derivative` on the
   output
   codes, ``deriv_fmt``) rounded to ``delta_fmt`` (``config.rounding``, saturating), are the
   actor's output delta (the conversion ``actor.xL -> critic.x0`` passes gradients straight
   through). Back-propagation and Adam as in 4 (actor step size).
6. Targets: :func:`sw_model.numerics.optim.soft_update_fixed` of every tensor of both networks,
   from the
   updated weights.
7. QAT (``"qat"`` before the switch): the ranges of ``actor.x0 .. actor.xL`` (the tanh layer's
   pre-activation ``z``, which its format must hold) from step 5's actor pass and of
   ``critic.x0 .. critic.x(L-1)`` from both critic passes of steps 4 and 5 (the layer outputs
   after ReLU) are merged into ``opt.ranges``; when ``opt.step + 1 == qat_delay`` the formats
   are frozen with :func:`sw_model.numerics.qat.range_format`.

All layer operations are :func:`sw_model.arch.aap.forward`, :func:`~sw_model.arch.aap.backward`,
:func:`~sw_model.arch.aap.weight_gradient` and :func:`~sw_model.arch.aap.bias_gradient` with
``rounding=config.rounding``; tanh uses ``TanhTable(fmt, fmt, index_bits=min(10, fmt.frac +
2))``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from sw_model.arch import aap
from sw_model.arch.ddpg_config import DDPGConfig
from sw_model.arch.vector import div_round, loss_delta
from sw_model.checks import check_int
from sw_model.numerics.activation import TanhTable, derivative
from sw_model.numerics.fixed import FixedFormat, requantize
from sw_model.numerics.optim import (
    FixedAdamConstants,
    adam_fixed,
    adam_float,
    mul_shift,
    soft_update_fixed,
    soft_update_float,
    v_format,
)
from sw_model.numerics.qat import range_format, shift_quantize, track_range

__all__ = [
    "NETS",
    "Batch",
    "OptState",
    "Weights",
    "activation_formats",
    "actor_loss_grads",
    "critic_loss_grads",
    "fixed_actor_forward",
    "fixed_critic_forward",
    "fixed_train_step",
    "float_actor_forward",
    "float_critic_forward",
    "float_train_step",
    "init_opt_state",
    "init_weights",
    "layer_kinds",
    "moments_format",
    "quantize_weights",
    "tanh_table",
]

Weights = dict[str, dict[str, np.ndarray]]
NETS: tuple[str, str] = ("actor", "critic")


def layer_kinds(config: DDPGConfig, net: str) -> list[str]:
    """Activation of each layer of ``net``: ReLU hidden layers, then tanh or identity."""
    return ["relu"] * len(config.hidden) + ["tanh" if net == "actor" else "identity"]


def _sizes(config: DDPGConfig, net: str, obs_dim: int, act_dim: int) -> list[int]:
    if net == "actor":
        return [obs_dim, *config.hidden, act_dim]
    return [obs_dim + act_dim, *config.hidden, 1]


def init_weights(config: DDPGConfig, obs_dim: int, act_dim: int) -> Weights:
    """Float64 initial weights from ``numpy.random.default_rng(config.seed)``.

    Hidden layers: weights and biases uniform in ``+-1/sqrt(fan_in)``; output layers:
    uniform in ``+-3e-3`` (Lillicrap et al.). The actor is drawn first, layer by layer.
    """
    for name, value in (("obs_dim", obs_dim), ("act_dim", act_dim)):
        check_int(value, name, minimum=1)
    rng = np.random.default_rng(config.seed)
    out: Weights = {}
    for net in NETS:
        sizes = _sizes(config, net, int(obs_dim), int(act_dim))
        params = {}
        for k in range(1, len(sizes)):
            bound = 3e-3 if k == len(sizes) - 1 else 1.0 / np.sqrt(sizes[k - 1])
            params[f"l{k}.w"] = rng.uniform(-bound, bound, (sizes[k], sizes[k - 1]))
            params[f"l{k}.b"] = rng.uniform(-bound, bound, sizes[k])
        out[net] = params
    return out


def quantize_weights(weights: Weights, fmt: FixedFormat) -> Weights:
    """Codes of float weights in ``fmt`` (half-even, saturating)."""
    return {net: {k: fmt.from_float(v) for k, v in p.items()} for net, p in weights.items()}


def _cast(weights: Weights, dtype: Any) -> Weights:
    return {net: {k: np.asarray(v, dtype=dtype) for k, v in p.items()}
            for net, p in weights.items()}


def _zeros(weights: Weights, dtype: Any) -> Weights:
    return {net: {k: np.zeros(np.shape(v), dtype=dtype) for k, v in p.items()}
            for net, p in weights.items()}


@dataclass(frozen=True)
class OptState:
    """Optimizer and QAT state between training steps.

    Parameters
    ----------
    m, v : Weights
        Adam moments (float arrays, or codes of ``grad_fmt`` and
        :func:`sw_model.numerics.optim.v_format`).
    step : int
        Training steps done.
    ranges : Mapping[str, tuple[int, int]]
        QAT: tracked ``(min, max)`` ``act_fmt`` codes per activation point.
    act16 : Mapping[str, FixedFormat] or None
        QAT: the frozen formats after the switch, else None.
    """

    m: Weights
    v: Weights
    step: int = 0
    ranges: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    act16: Mapping[str, FixedFormat] | None = None


def init_opt_state(weights: Weights, config: DDPGConfig) -> OptState:
    """Zero moments shaped like ``weights``, step 0, no ranges."""
    if config.is_fixed:
        return OptState(_zeros(weights, np.int64), _zeros(weights, np.int64))
    dtype = np.float32 if config.precision == "float32" else np.float64
    return OptState(_zeros(weights, dtype), _zeros(weights, dtype))


@dataclass(frozen=True)
class Batch:
    """A batch of transitions.

    Float modes: float arrays; fixed-point modes: ``act_fmt`` codes (``int64``) for ``obs``,
    ``action`` (normalized), ``reward``, ``next_obs``; ``done`` is 0 or 1 (terminal, not
    truncated) in every mode. Shapes ``(B, obs_dim)``, ``(B, act_dim)``, ``(B,)``,
    ``(B, obs_dim)``, ``(B,)``.
    """

    obs: np.ndarray
    action: np.ndarray
    reward: np.ndarray
    next_obs: np.ndarray
    done: np.ndarray


def _n_layers(config: DDPGConfig) -> int:
    return len(config.hidden) + 1


def activation_formats(config: DDPGConfig, opt: OptState | None = None
                       ) -> dict[str, FixedFormat]:
    """Format of every activation point for the next step (see the module docs)."""
    n = _n_layers(config)
    points = [f"{net}.x{k}" for net in NETS for k in range(n + 1)]
    if config.precision == "fixed16":
        out = dict.fromkeys(points, config.act16_fmt)
    elif config.precision == "qat" and opt is not None and opt.act16 is not None:
        out = dict(opt.act16)
    else:
        out = dict.fromkeys(points, config.act_fmt)
    out[f"critic.x{n}"] = config.act_fmt
    return out


@functools.cache
def tanh_table(fmt: FixedFormat) -> TanhTable:
    """The tanh table of an output layer in ``fmt``: ``TanhTable(fmt, fmt, min(10, frac+2))``."""
    return TanhTable(fmt, fmt, index_bits=min(10, fmt.frac + 2))


# --- float networks ---------------------------------------------------------------------------

def _float_forward(p: dict[str, np.ndarray], x: np.ndarray, kinds: list[str]
                   ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    zs, ys = [x], [x]
    for k, kind in enumerate(kinds, 1):
        z = ys[-1] @ p[f"l{k}.w"].T
        z += p[f"l{k}.b"]  # in place: one temporary less per layer
        y = np.maximum(z, 0) if kind == "relu" else np.tanh(z) if kind == "tanh" else z
        zs.append(z)
        ys.append(y)
    return zs, ys


def _float_backward(p: dict[str, np.ndarray], zs: list[np.ndarray], ys: list[np.ndarray],
                    d_out: np.ndarray, kinds: list[str], grads: bool = True
                    ) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Gradients of ``sum(d_out * y_L)``; returns (parameter grads, d input)."""
    n = len(kinds)
    d = d_out * (1 - ys[n] ** 2) if kinds[-1] == "tanh" else d_out
    out = {}
    for k in range(n, 0, -1):
        if grads:
            out[f"l{k}.w"] = d.T @ ys[k - 1]
            out[f"l{k}.b"] = d.sum(axis=0)
        d = d @ p[f"l{k}.w"]
        if k > 1:
            d *= zs[k - 1] > 0
    return out, d


def float_actor_forward(actor: dict[str, np.ndarray], obs: np.ndarray, config: DDPGConfig
                        ) -> np.ndarray:
    """Normalized actions ``(B, act_dim)`` of a float actor."""
    return _float_forward(actor, obs, layer_kinds(config, "actor"))[1][-1]


def float_critic_forward(critic: dict[str, np.ndarray], obs: np.ndarray, action: np.ndarray,
                         config: DDPGConfig) -> np.ndarray:
    """``Q`` values ``(B,)`` of a float critic."""
    x = np.concatenate([obs, action], axis=1)
    return _float_forward(critic, x, layer_kinds(config, "critic"))[1][-1][:, 0]


def critic_loss_grads(critic: dict[str, np.ndarray], obs: np.ndarray, action: np.ndarray,
                      y: np.ndarray, config: DDPGConfig
                      ) -> tuple[float, dict[str, np.ndarray]]:
    """``mean((Q - y)**2)`` and its gradient with respect to every critic tensor."""
    kinds = layer_kinds(config, "critic")
    zs, ys = _float_forward(critic, np.concatenate([obs, action], axis=1), kinds)
    q = ys[-1][:, 0]
    b = q.shape[0]
    d = (2 * (q - y) / b)[:, None].astype(q.dtype)
    grads, _ = _float_backward(critic, zs, ys, d, kinds)
    return float(np.mean((q - y) ** 2)), grads


def actor_loss_grads(actor: dict[str, np.ndarray], critic: dict[str, np.ndarray],
                     obs: np.ndarray, config: DDPGConfig
                     ) -> tuple[float, dict[str, np.ndarray]]:
    """``-mean(Q(s, actor(s)))`` and its gradient with respect to every actor tensor."""
    a_kinds, c_kinds = layer_kinds(config, "actor"), layer_kinds(config, "critic")
    azs, ays = _float_forward(actor, obs, a_kinds)
    czs, cys = _float_forward(critic, np.concatenate([obs, ays[-1]], axis=1), c_kinds)
    q = cys[-1][:, 0]
    d = np.full((q.shape[0], 1), -1.0 / q.shape[0], dtype=q.dtype)
    _, d_in = _float_backward(critic, czs, cys, d, c_kinds, grads=False)
    grads, _ = _float_backward(actor, azs, ays, d_in[:, obs.shape[1]:], a_kinds)
    return float(-q.mean()), grads


def float_train_step(weights: Weights, targets: Weights, opt: OptState, batch: Batch,
                     config: DDPGConfig) -> tuple[Weights, OptState, Weights, dict[str, Any]]:
    """One DDPG training step in ``config.precision`` (``"float64"`` or ``"float32"``).

    The same order as :func:`fixed_train_step` (target, critic update, actor update with the
    updated critic, soft updates), with PyTorch's Adam. Pure: inputs are not modified.

    Returns
    -------
    weights, opt, targets, info
        New weights, optimizer state, target weights, and ``{"critic_loss", "actor_loss",
        "q_mean"}``.
    """
    if config.precision not in ("float32", "float64"):
        raise ValueError(f"float_train_step needs a float precision, not {config.precision!r}")
    dt = np.float32 if config.precision == "float32" else np.float64
    s, a = batch.obs.astype(dt), batch.action.astype(dt)
    r, s2 = batch.reward.astype(dt), batch.next_obs.astype(dt)
    done = batch.done.astype(dt)
    a2 = float_actor_forward(targets["actor"], s2, config)
    q2 = float_critic_forward(targets["critic"], s2, a2, config)
    y = r + dt(config.gamma) * (1 - done) * q2
    t = opt.step + 1
    critic_loss, c_grads = critic_loss_grads(weights["critic"], s, a, y, config)
    new_w: Weights = {"actor": {}, "critic": {}}
    new_m: Weights = {"actor": {}, "critic": {}}
    new_v: Weights = {"actor": {}, "critic": {}}
    for k, w in weights["critic"].items():
        new_w["critic"][k], new_m["critic"][k], new_v["critic"][k] = adam_float(
            w, c_grads[k], opt.m["critic"][k], opt.v["critic"][k], t, config.critic_lr,
            config.beta1, config.beta2, config.eps)
    actor_loss, a_grads = actor_loss_grads(weights["actor"], new_w["critic"], s, config)
    for k, w in weights["actor"].items():
        new_w["actor"][k], new_m["actor"][k], new_v["actor"][k] = adam_float(
            w, a_grads[k], opt.m["actor"][k], opt.v["actor"][k], t, config.actor_lr,
            config.beta1, config.beta2, config.eps)
    new_t = {net: {k: soft_update_float(targets[net][k], new_w[net][k], config.tau)
                   for k in targets[net]} for net in NETS}
    info = {"critic_loss": critic_loss, "actor_loss": actor_loss,
            "q_mean": float(-actor_loss)}
    return new_w, OptState(new_m, new_v, t), new_t, info


# --- fixed-point networks -----------------------------------------------------------------------

def _net_formats(fmts: Mapping[str, FixedFormat], net: str, n: int) -> list[FixedFormat]:
    return [fmts[f"{net}.x{k}"] for k in range(n + 1)]


def _fixed_forward(p: dict[str, np.ndarray], x: np.ndarray, fmts: list[FixedFormat],
                   kinds: list[str], config: DDPGConfig
                   ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    zs, ys = [x], [x]
    for k, kind in enumerate(kinds, 1):
        table = tanh_table(fmts[k]) if kind == "tanh" else None
        w, b = p[f"l{k}.w"], p[f"l{k}.b"]
        z, y = aap.forward(w, b, ys[-1], w_fmt=config.weight_fmt, x_fmt=fmts[k - 1],
                           out_fmt=fmts[k], kind=kind,
                           rounding=config.rounding, table=table)
        zs.append(z)
        ys.append(y)
    return zs, ys


def _fixed_backward(p: dict[str, np.ndarray], ys: list[np.ndarray], d: np.ndarray,
                    fmts: list[FixedFormat], kinds: list[str], config: DDPGConfig,
                    grads: bool = True) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """Back-propagate the delta ``d`` at the last pre-activation; (grads, d at the input)."""
    c = config
    out = {}
    d_in = None
    for k in range(len(kinds), 0, -1):
        if grads:
            out[f"l{k}.w"] = aap.weight_gradient(d, ys[k - 1], d_fmt=c.delta_fmt,
                                                 x_fmt=fmts[k - 1],
                                                 out_fmt=c.grad_fmt, rounding=c.rounding)
            out[f"l{k}.b"] = aap.bias_gradient(d, d_fmt=c.delta_fmt, out_fmt=c.grad_fmt,
                                               rounding=c.rounding)
        if k > 1 or not grads:
            kind = kinds[k - 2] if k > 1 else "identity"
            w = p[f"l{k}.w"]
            d = aap.backward(w, d, ys[k - 1], w_fmt=c.weight_fmt, d_fmt=c.delta_fmt,
                             y_fmt=fmts[k - 1], g_fmt=c.deriv_fmt, out_fmt=c.delta_fmt,
                             kind=kind, rounding=c.rounding)
            if k == 1:
                d_in = d
    return out, d_in


def _critic_input(s: np.ndarray, a: np.ndarray, a_fmt: FixedFormat, config: DDPGConfig,
                  fmt: FixedFormat) -> np.ndarray:
    return np.concatenate([shift_quantize(s, config.act_fmt, fmt),
                           shift_quantize(a, a_fmt, fmt)], axis=1)


def fixed_actor_forward(actor: dict[str, np.ndarray], obs_q: np.ndarray, config: DDPGConfig,
                        fmts: Mapping[str, FixedFormat]) -> np.ndarray:
    """Normalized action codes ``(B, act_dim)`` (format ``fmts["actor.xL"]``) of ``act_fmt``
    observation codes."""
    n = _n_layers(config)
    f = _net_formats(fmts, "actor", n)
    x = shift_quantize(obs_q, config.act_fmt, f[0])
    return _fixed_forward(actor, x, f, layer_kinds(config, "actor"), config)[1][-1]


def fixed_critic_forward(critic: dict[str, np.ndarray], obs_q: np.ndarray, act_q: np.ndarray,
                         config: DDPGConfig, fmts: Mapping[str, FixedFormat],
                         act_fmt: FixedFormat | None = None) -> np.ndarray:
    """``Q`` codes ``(B,)`` (``act_fmt``) of ``act_fmt`` observation and action codes (the
    actions in ``act_fmt`` unless given)."""
    n = _n_layers(config)
    f = _net_formats(fmts, "critic", n)
    x = _critic_input(obs_q, act_q, act_fmt or config.act_fmt, config, f[0])
    return _fixed_forward(critic, x, f, layer_kinds(config, "critic"), config)[1][-1][:, 0]


def _loss_delta(diff: np.ndarray, b: int, config: DDPGConfig) -> np.ndarray:
    """:func:`sw_model.arch.vector.loss_delta` with the formats of ``config``."""
    return loss_delta(diff, b, config.act_fmt, config.delta_fmt)


def fixed_train_step(weights: Weights, targets: Weights, opt: OptState, batch: Batch,
                     config: DDPGConfig) -> tuple[Weights, OptState, Weights, dict[str, Any]]:
    """One bit-exact fixed-point DDPG training step (the order and roundings in the module docs).

    Pure: the inputs are not modified, and equal inputs give equal outputs.

    Parameters
    ----------
    weights, targets : Weights
        Online and target networks, ``weight_fmt`` codes.
    opt : OptState
        Adam moments (codes), step count and QAT state.
    batch : Batch
        ``act_fmt`` codes (``done`` 0/1).
    config : DDPGConfig
        A fixed-point precision.

    Returns
    -------
    weights, opt, targets, info
        New online weights, optimizer state, target weights, and ``info``: ``"critic_loss"``,
        ``"actor_loss"``, ``"q_mean"`` (floats for logging, computed from codes),
        ``"qat_switched"`` (whether this step froze the 16-bit formats) and ``"grads"`` (the
        ``grad_fmt`` gradient codes ``{"critic": {...}, "actor": {...}}`` that Adam used).
    """
    c = config
    if not c.is_fixed:
        raise ValueError(f"fixed_train_step needs a fixed-point precision, not {c.precision!r}")
    n = _n_layers(c)
    fmts = activation_formats(c, opt)
    a_fmts, c_fmts = _net_formats(fmts, "actor", n), _net_formats(fmts, "critic", n)
    a_kinds, c_kinds = layer_kinds(c, "actor"), layer_kinds(c, "critic")
    act = c.act_fmt
    s = act.check_codes(batch.obs, "batch.obs")
    a = act.check_codes(batch.action, "batch.action")
    r = act.check_codes(batch.reward, "batch.reward")
    s2 = act.check_codes(batch.next_obs, "batch.next_obs")
    done = np.asarray(batch.done, dtype=np.int64)
    bsz = s.shape[0]
    t = opt.step + 1
    tracking = c.precision == "qat" and opt.act16 is None
    ranges = dict(opt.ranges)

    # 3. target
    a2 = _fixed_forward(targets["actor"], shift_quantize(s2, act, a_fmts[0]), a_fmts, a_kinds,
                        c)[1][-1]
    x2 = _critic_input(s2, a2, a_fmts[-1], c, c_fmts[0])
    q2 = _fixed_forward(targets["critic"], x2, c_fmts, c_kinds, c)[1][-1][:, 0]
    y = r + (1 - done) * mul_shift(q2, c.gamma_q)
    y = np.clip(y, act.min_int, act.max_int)

    # 4. critic
    x = _critic_input(s, a, act, c, c_fmts[0])
    _, cys = _fixed_forward(weights["critic"], x, c_fmts, c_kinds, c)
    q = cys[-1][:, 0]
    d = _loss_delta(q - y, bsz, c)[:, None]
    c_grads, _ = _fixed_backward(weights["critic"], cys, d, c_fmts, c_kinds, c)
    new_w: Weights = {"actor": {}, "critic": {}}
    new_m: Weights = {"actor": {}, "critic": {}}
    new_v: Weights = {"actor": {}, "critic": {}}
    consts = {
        "critic": FixedAdamConstants.from_floats(c.critic_lr, c.beta1, c.beta2, c.eps,
                                                 c.weight_fmt, c.grad_fmt, c.adam_bias_steps),
        "actor": FixedAdamConstants.from_floats(c.actor_lr, c.beta1, c.beta2, c.eps,
                                                c.weight_fmt, c.grad_fmt, c.adam_bias_steps),
    }
    for k, w in weights["critic"].items():
        new_w["critic"][k], new_m["critic"][k], new_v["critic"][k] = adam_fixed(
            w, c_grads[k], opt.m["critic"][k], opt.v["critic"][k], t, consts["critic"],
            c.weight_fmt, c.grad_fmt)

    # 5. actor
    azs, ays = _fixed_forward(weights["actor"], shift_quantize(s, act, a_fmts[0]), a_fmts,
                              a_kinds, c)
    xmu = _critic_input(s, ays[-1], a_fmts[-1], c, c_fmts[0])
    _, cys2 = _fixed_forward(new_w["critic"], xmu, c_fmts, c_kinds, c)
    d_q = np.full((bsz, 1), div_round(np.int64(-(1 << c.delta_fmt.frac)), bsz), np.int64)
    _, d_x = _fixed_backward(new_w["critic"], cys2, d_q, c_fmts, c_kinds, c, grads=False)
    obs_dim = s.shape[1]
    g = derivative(azs[-1], ays[-1], a_fmts[-1], a_fmts[-1], c.deriv_fmt, "tanh",
                   rounding=c.rounding)
    d_a = requantize(d_x[:, obs_dim:] * g, c.delta_fmt.frac + c.deriv_fmt.frac, c.delta_fmt,
                     c.rounding, "saturate")
    a_grads, _ = _fixed_backward(weights["actor"], ays, d_a, a_fmts, a_kinds, c)
    for k, w in weights["actor"].items():
        new_w["actor"][k], new_m["actor"][k], new_v["actor"][k] = adam_fixed(
            w, a_grads[k], opt.m["actor"][k], opt.v["actor"][k], t, consts["actor"],
            c.weight_fmt, c.grad_fmt)

    # 6. targets
    new_t = {net: {k: soft_update_fixed(targets[net][k], new_w[net][k], c.tau_q, c.weight_fmt)
                   for k in targets[net]} for net in NETS}

    # 7. QAT
    act16 = opt.act16
    switched = False
    if tracking:
        for k in range(n + 1):
            key = f"actor.x{k}"
            ranges[key] = track_range(ranges.get(key), azs[k] if k == n else ays[k])
        for k in range(n):
            key = f"critic.x{k}"
            ranges[key] = track_range(track_range(ranges.get(key), cys[k]), cys2[k])
        if t >= c.qat_delay:
            act16 = MappingProxyType(
                {key: range_format(lo, hi, act, c.act16_fmt.width)
                 for key, (lo, hi) in sorted(ranges.items())})
            switched = True

    q_f = act.to_float(q)
    info = {
        "critic_loss": float(np.mean((q_f - act.to_float(y)) ** 2)),
        "actor_loss": float(-act.to_float(cys2[-1]).mean()),
        "q_mean": float(q_f.mean()),
        "qat_switched": switched,
        "grads": {"critic": c_grads, "actor": a_grads},
    }
    new_opt = OptState(new_m, new_v, t, MappingProxyType(ranges), act16)
    return new_w, new_opt, new_t, info


def moments_format(config: DDPGConfig) -> tuple[FixedFormat, FixedFormat]:
    """Formats of Adam's ``m`` and ``v`` in fixed-point modes."""
    return config.grad_fmt, v_format(config.grad_fmt)
