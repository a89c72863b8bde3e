"""The PPO search over :class:`~sw_model.search.env.QuantEnv` (:func:`ppo_search`) and its pieces.

:func:`ppo_search`: the policy is an MLP (tanh hidden layers) from the state to logits. By
default they form three *factorised* softmax heads, sampled in order: the scheme, the weight
width (over the union of the schemes' widths, masked to those of the sampled scheme) and the
activation width; the action's log-probability is the sum of the three. (``policy="flat"``
uses one softmax over the whole grid instead; on the toy problem of the tests the factorised
heads find the optimum far more reliably, since what a layer learns about one component holds
for every value of the others.) The value function is a separate MLP. Per iteration,
``episodes_per_iter`` episodes are sampled, advantages come from GAE (:func:`gae`, ``V = 0``
after the last layer) and are normalised over the batch, then ``epochs`` full-batch Adam steps
minimise ``-mean(min(r A, clip(r, 1 - clip, 1 + clip) A)) - ent_coef * mean(entropy)`` (the
entropy summed over the heads) for the policy and ``mean((V - R)**2) / 2`` for the value
network.

With ``init="uniform"``, :func:`ppo_search` first scores every uniform configuration (one
action for every layer) and biases the policy's output layer towards the incumbent, the best
fitting one, so that PPO refines the best uniform configuration rather than starting from a
uniform random policy; its best result is therefore never worse than the uniform sweep's.
``incumbents=k`` restarts PPO from each of the ``k`` best uniform configurations in turn,
sharing the iterations, so that the local search covers several starting points.

With ``moves="local"``, the policy does not choose a layer's configuration but a *move* from
the incumbent's: two heads, the weight width and the activation width, each one grid step down,
kept, or one step up (masked at the grid's ends; the scheme is the incumbent's). The incumbent
starts at the best uniform configuration and, after every iteration, becomes the best one
scored so far (the fitting one with the highest reward), so the search walks downhill while
the policy learns which layers take a narrower width at the current point. An episode's
reward is its *improvement* on the iteration's incumbent, ``max(0, reward - incumbent's
reward)`` for a configuration that fits (0 otherwise): an episode that repeats the incumbent,
or any configuration no better, earns nothing, so the policy does not settle on keeping every
layer (with the environment's reward it would, since every narrower step risks the
penalty). Its state is
:meth:`QuantEnv.state <sw_model.search.env.QuantEnv.state>` followed by the incumbent's weight
and activation widths of the layer (:data:`LOCAL_FEATURES`). The moves start at probability
``step_prob`` for a step down and ``step_prob / 2`` for a step up in every head. What a
layer-wise policy over whole configurations cannot do well is keep five layers where they are
while it narrows a sixth; a move policy keeps by default.

Reproducibility: every random draw of a search comes from ``numpy.random.default_rng(seed)``,
so the same seed and environment give identical results.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from sw_model.checks import check_int, check_real
from sw_model.search.cost import LayerChoice
from sw_model.search.env import Episode, QuantEnv, SearchResult, check_env
from sw_model.search.networks import MLP, Adam, log_softmax

__all__ = ["LOCAL_FEATURES", "MOVES", "POLICIES", "clipped_surrogate", "gae", "ppo_policy_loss",
           "ppo_search"]

def gae(rewards: npt.ArrayLike, values: npt.ArrayLike, *, gamma: float, lam: float,
        last_value: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Generalised advantage estimates along the last axis (time) of one or more episodes.

    ``delta_t = r_t + gamma * V_{t+1} - V_t`` (``V_T = last_value``),
    ``A_t = delta_t + gamma * lam * A_{t+1}`` (``A_T = 0``), returns ``R_t = A_t + V_t``.

    Returns
    -------
    tuple of numpy.ndarray
        ``(advantages, returns)``, shaped like ``rewards``.
    """
    gamma = check_real(gamma, "gamma", minimum=0.0, maximum=1.0)
    lam = check_real(lam, "lam", minimum=0.0, maximum=1.0)
    r = np.asarray(rewards, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    if r.shape != v.shape or r.ndim == 0:
        raise ValueError(f"rewards and values must have one shape, not {r.shape} and {v.shape}")
    nxt = np.concatenate([v[..., 1:], np.full((*v.shape[:-1], 1), float(last_value))], axis=-1)
    delta = r + gamma * nxt - v
    adv = np.zeros_like(delta)
    acc = np.zeros(delta.shape[:-1])
    for t in range(delta.shape[-1] - 1, -1, -1):
        acc = delta[..., t] + gamma * lam * acc
        adv[..., t] = acc
    return adv, adv + v


def clipped_surrogate(ratio: npt.ArrayLike, adv: npt.ArrayLike, clip: float) -> np.ndarray:
    """PPO's per-sample objective ``min(r A, clip(r, 1 - clip, 1 + clip) A)`` (to maximise)."""
    clip = check_real(clip, "clip", minimum=0.0, maximum=1.0, min_open=True)
    r, a = np.asarray(ratio, dtype=np.float64), np.asarray(adv, dtype=np.float64)
    return np.minimum(r * a, np.clip(r, 1.0 - clip, 1.0 + clip) * a)


def _masked_log_softmax(z: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """Log-softmax over the allowed entries (``-inf`` where ``mask`` is False)."""
    if mask is None:
        return log_softmax(z)
    zm = np.where(mask, z, -np.inf)
    zm = zm - zm.max(axis=-1, keepdims=True)
    return zm - np.log(np.exp(zm).sum(axis=-1, keepdims=True))


def _split(heads: Sequence[int]) -> list[slice]:
    edges = np.cumsum([0, *heads])
    return [slice(int(a), int(b)) for a, b in itertools.pairwise(edges)]


def ppo_policy_loss(logits: npt.ArrayLike, actions: npt.ArrayLike, logp_old: npt.ArrayLike,
                    adv: npt.ArrayLike, clip: float, ent_coef: float = 0.0, *,
                    heads: Sequence[int] | None = None, mask: npt.ArrayLike | None = None
                    ) -> tuple[float, np.ndarray]:
    """PPO's clipped policy loss and its gradient with respect to the logits.

    The logits are split into softmax *heads* of ``heads`` entries each (default one head);
    the action has one component per head, and its log-probability is the sum of the heads'
    log-probabilities, each a softmax over the entries that ``mask`` allows. With
    ``r = exp(logp - logp_old)``, ``loss = -mean(clipped_surrogate(r, adv, clip)) -
    ent_coef * mean(sum of the heads' entropies)``. Where the clipped term is the smaller one
    and ``r`` lies outside ``[1 - clip, 1 + clip]``, the surrogate's gradient is 0.

    Parameters
    ----------
    logits : array_like, shape (N, sum(heads))
    actions : array_like of int, shape (N,) for one head or (N, len(heads))
        Component indices within each head.
    logp_old : array_like, shape (N,)
        Log-probabilities of ``actions`` under the sampling policy.
    adv : array_like, shape (N,)
    clip : float
        In ``(0, 1]``.
    ent_coef : float
    heads : sequence of int, optional
        Head sizes; default ``(logits.shape[1],)``.
    mask : array_like of bool, shape (N, sum(heads)), optional
        Allowed entries (every head needs one per row, including the chosen one).

    Returns
    -------
    tuple
        ``(loss, d loss / d logits)``; masked entries get gradient 0.
    """
    clip = check_real(clip, "clip", minimum=0.0, maximum=1.0, min_open=True)
    z = np.asarray(logits, dtype=np.float64)
    n = z.shape[0]
    hs = (z.shape[1],) if heads is None else tuple(heads)
    if sum(hs) != z.shape[1]:
        raise ValueError(f"heads must add up to the {z.shape[1]} logits, not {hs!r}")
    act = np.asarray(actions).reshape(n, len(hs))
    m = None if mask is None else np.asarray(mask, dtype=bool)
    rows = np.arange(n)
    parts = []
    logp = np.zeros(n)
    ent = np.zeros(n)
    for h, sl in enumerate(_split(hs)):
        mh = None if m is None else m[:, sl]
        lp = _masked_log_softmax(z[:, sl], mh)
        p = np.exp(lp)
        plogp = np.where(p > 0, p * np.where(np.isfinite(lp), lp, 0.0), 0.0)
        e = -plogp.sum(axis=1)
        logp += lp[rows, act[:, h]]
        ent += e
        parts.append((sl, lp, p, e))
    ratio = np.exp(logp - np.asarray(logp_old, dtype=np.float64))
    a = np.asarray(adv, dtype=np.float64)
    surr = clipped_surrogate(ratio, a, clip)
    loss = -float(surr.mean()) - ent_coef * float(ent.mean())
    active = (ratio * a <= np.clip(ratio, 1.0 - clip, 1.0 + clip) * a) | (
        (ratio >= 1.0 - clip) & (ratio <= 1.0 + clip))
    d_logp = np.where(active, -a * ratio, 0.0) / n
    d = np.zeros_like(z)
    for h, (sl, lp, p, e) in enumerate(parts):
        onehot = np.zeros_like(p)
        onehot[rows, act[:, h]] = 1.0
        g = d_logp[:, None] * (onehot - p)
        g += ent_coef / n * np.where(p > 0, p * (np.where(np.isfinite(lp), lp, 0.0)
                                                 + e[:, None]), 0.0)
        d[:, sl] = g
    return loss, d


POLICIES: tuple[str, str] = ("factored", "flat")


class _PolicyHeads:
    """Maps a policy's logits to grid actions: factored heads or one flat softmax."""

    def __init__(self, env: QuantEnv, kind: str) -> None:
        self.env = env
        self.kind = kind
        if kind == "flat":
            self.heads: tuple[int, ...] = (len(env.actions),)
            return
        self.w_all = tuple(sorted(set().union(*env.w_bits.values())))
        self.heads = (len(env.schemes), len(self.w_all), len(env.a_bits))
        s_n, a_n = self.heads[0], self.heads[2]
        self.masks = {s: np.array([True] * s_n + [w in env.w_bits[s] for w in self.w_all]
                                  + [True] * a_n) for s in env.schemes}

    def act(self, z: np.ndarray, rng: np.random.Generator | None
            ) -> tuple[int, np.ndarray, float, np.ndarray | None]:
        """(grid index, components, log-probability, mask) sampled (or arg-max without rng)."""

        def pick(lp: np.ndarray) -> int:
            if rng is None:
                return int(np.argmax(lp))
            p = np.exp(lp)
            return int(rng.choice(p.size, p=p / p.sum()))

        if self.kind == "flat":
            lp = log_softmax(z)
            i = pick(lp)
            return i, np.array([i]), float(lp[i]), None
        sl = _split(self.heads)
        lp_s = log_softmax(z[sl[0]])
        si = pick(lp_s)
        scheme = self.env.schemes[si]
        mask = self.masks[scheme]
        lp_w = _masked_log_softmax(z[sl[1]], mask[sl[1]])
        wi = pick(lp_w)
        lp_a = log_softmax(z[sl[2]])
        ai = pick(lp_a)
        choice = LayerChoice(scheme, self.w_all[wi], self.env.a_bits[ai])
        return (self.env.action_index(choice), np.array([si, wi, ai]),
                float(lp_s[si] + lp_w[wi] + lp_a[ai]), mask)

    def bias(self, choice: LayerChoice, prob: float) -> np.ndarray:
        """Logit offsets that give ``choice``'s entry of every head probability ``prob`` when
        the other logits are equal (``log(prob * (n - 1) / (1 - prob))``, ``n`` the allowed
        entries of the head)."""
        out = np.zeros(sum(self.heads))
        if self.kind == "flat":
            parts = [(0, self.env.action_index(choice), len(self.env.actions))]
        else:
            sl = _split(self.heads)
            n_w = int(self.masks[choice.scheme][sl[1]].sum())
            parts = [(sl[0].start, self.env.schemes.index(choice.scheme), self.heads[0]),
                     (sl[1].start, self.w_all.index(choice.w_bits), n_w),
                     (sl[2].start, self.env.a_bits.index(choice.a_bits), self.heads[2])]
        for start, i, n in parts:
            if n > 1:
                out[start + i] = math.log(prob * (n - 1) / (1.0 - prob))
        return out


#: The search's action spaces (:func:`ppo_search`'s ``moves``).
MOVES: tuple[str, str] = ("grid", "local")
#: What ``moves="local"`` appends to the environment's state: the incumbent's weight width
#: (over the largest of the grid) and activation width (over the largest) of the layer.
LOCAL_FEATURES: tuple[str, str] = ("incumbent_w", "incumbent_a")
#: The moves of each head of ``moves="local"``, in the order of the logits.
_STEPS: tuple[int, int, int] = (-1, 0, 1)


class _LocalHeads:
    """Maps a policy's logits to a move from the incumbent's layer choice: a head for the
    weight width and one for the activation width, each (one step down, keep, one step up)
    on the grid, masked where the grid ends."""

    heads: tuple[int, int] = (3, 3)

    def __init__(self, env: QuantEnv) -> None:
        self.env = env
        self.w_top = max(max(w) for w in env.w_bits.values())
        self.a_top = max(env.a_bits)

    def features(self, incumbent: LayerChoice) -> np.ndarray:
        """:data:`LOCAL_FEATURES` of one layer's incumbent choice."""
        return np.array([incumbent.w_bits / self.w_top, incumbent.a_bits / self.a_top])

    def act(self, z: np.ndarray, incumbent: LayerChoice, rng: np.random.Generator | None
            ) -> tuple[int, np.ndarray, float, np.ndarray]:
        """(grid index, components, log-probability, mask) of a move sampled (or arg-max
        without rng) from ``incumbent``."""
        w_grid, a_grid = self.env.w_bits[incumbent.scheme], self.env.a_bits
        wi, ai = w_grid.index(incumbent.w_bits), a_grid.index(incumbent.a_bits)
        mask = np.array([wi > 0, True, wi < len(w_grid) - 1,
                         ai > 0, True, ai < len(a_grid) - 1])
        comps, logp = [], 0.0
        for sl in _split(self.heads):
            lp = _masked_log_softmax(z[sl], mask[sl])
            if rng is None:
                i = int(np.argmax(lp))
            else:
                p = np.exp(lp)
                i = int(rng.choice(p.size, p=p / p.sum()))
            comps.append(i)
            logp += float(lp[i])
        choice = LayerChoice(incumbent.scheme, w_grid[wi + _STEPS[comps[0]]],
                             a_grid[ai + _STEPS[comps[1]]])
        return self.env.action_index(choice), np.array(comps), logp, mask

    def bias(self, step_prob: float) -> np.ndarray:
        """Logit offsets giving each head (step down, keep, step up) probabilities
        ``(step_prob, 1 - 1.5 step_prob, step_prob / 2)`` when the other logits are 0."""
        one = np.log([step_prob, 1.0 - 1.5 * step_prob, step_prob / 2.0])
        return np.concatenate([one, one])


def ppo_search(env: QuantEnv, *, iterations: int = 30, episodes_per_iter: int = 32,
               seed: int = 0, lr: float = 1e-2, clip: float = 0.2, gamma: float = 1.0,
               lam: float = 0.95, epochs: int = 8, hidden: int = 32, ent_coef: float = 0.01,
               value_lr: float | None = None, policy: str = "factored",
               init: str | None = None, init_prob: float = 0.5, incumbents: int = 1,
               moves: str = "grid", step_prob: float = 0.2,
               callback: Callable[[int, SearchResult], None] | None = None) -> SearchResult:
    """Search the configuration with clipped PPO and GAE (see the module docs).

    Parameters
    ----------
    env : QuantEnv
    iterations : int
        PPO iterations (``>= 1``).
    episodes_per_iter : int
        Episodes sampled per iteration (``>= 1``).
    seed : int
        Seeds ``numpy.random.default_rng`` (initialisation and sampling).
    lr : float
        Adam step of the policy (``> 0``).
    clip : float
        PPO clip range, in ``(0, 1]``.
    gamma, lam : float
        Discount and GAE parameter, in ``[0, 1]``.
    epochs : int
        Full-batch updates per iteration (``>= 1``).
    hidden : int
        Width of the two hidden layers of both networks.
    ent_coef : float
        Entropy bonus (``>= 0``).
    value_lr : float, optional
        Adam step of the value network; default ``lr``.
    policy : {"factored", "flat"}
        ``"factored"``: three softmax heads (scheme; weight width over the union of the
        schemes' widths, masked to those of the sampled scheme; activation width), sampled in
        that order, the log-probability being their sum. ``"flat"``: one softmax over the
        whole grid :attr:`~sw_model.search.env.QuantEnv.actions`.
    init : {None, "uniform"}
        ``"uniform"``: before the first iteration, score every uniform configuration (the
        first ``len(env.actions)`` entries of the history) and start the policy at the
        incumbent, the fitting one with the highest reward (the highest reward of all if none
        fits): the output biases give each of its components probability ``init_prob`` in
        every layer (:meth:`_PolicyHeads.bias`), so that PPO searches around the best uniform
        configuration instead of from scratch. ``None``: a near-uniform initial policy.
    init_prob : float
        In ``(0, 1)``.
    incumbents : int
        With ``init="uniform"``, start PPO afresh from each of the ``incumbents`` best uniform
        configurations in turn (by reward, the fitting ones first), with new networks and
        ``iterations // incumbents`` iterations each (the first ``iterations % incumbents``
        restarts one more; at most ``iterations`` restarts): a local search around several
        starting points instead of one. All restarts share the environment and the result.
    moves : {"grid", "local"}
        ``"grid"``: the policy chooses each layer's configuration on the grid (``policy``).
        ``"local"``: it chooses each layer's move from the incumbent, which follows the best
        configuration the restart has scored (see the module docs); needs
        ``init="uniform"``, and ``policy`` and ``init_prob`` do not apply.
    step_prob : float
        With ``moves="local"``, the initial probability of a step down in each head (a step
        up gets half of it), in ``(0, 0.5)``.
    callback : callable, optional
        ``callback(iteration, result)`` after every iteration.

    Returns
    -------
    SearchResult
        With ``final_choices`` the greedy (arg-max per head) configuration of the final
        policy (of the last restart; with ``moves="local"``, its moves applied to the last
        incumbent).
    """
    env = check_env(env)
    iterations = check_int(iterations, "iterations", minimum=1)
    episodes_per_iter = check_int(episodes_per_iter, "episodes_per_iter", minimum=1)
    seed = check_int(seed, "seed", minimum=0)
    epochs = check_int(epochs, "epochs", minimum=1)
    hidden = check_int(hidden, "hidden", minimum=1)
    lr = check_real(lr, "lr", minimum=0.0, min_open=True)
    clip = check_real(clip, "clip", minimum=0.0, maximum=1.0, min_open=True)
    gamma = check_real(gamma, "gamma", minimum=0.0, maximum=1.0)
    lam = check_real(lam, "lam", minimum=0.0, maximum=1.0)
    ent_coef = check_real(ent_coef, "ent_coef", minimum=0.0)
    if value_lr is None:
        value_lr = lr
    else:
        value_lr = check_real(value_lr, "value_lr", minimum=0.0, min_open=True)
    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {POLICIES!r}, not {policy!r}")
    if init not in (None, "uniform"):
        raise ValueError(f"init must be None or 'uniform', not {init!r}")
    init_prob = check_real(init_prob, "init_prob", minimum=0.0, maximum=1.0, min_open=True)
    if init_prob >= 1.0:
        raise ValueError(f"init_prob must be below 1, not {init_prob!r}")
    incumbents = check_int(incumbents, "incumbents", minimum=1)
    if moves not in MOVES:
        raise ValueError(f"moves must be one of {MOVES!r}, not {moves!r}")
    if moves == "local" and init != "uniform":
        raise ValueError(f"moves 'local' needs init 'uniform', not {init!r}")
    step_prob = check_real(step_prob, "step_prob", minimum=0.0, maximum=0.5, min_open=True)
    if step_prob >= 0.5:
        raise ValueError(f"step_prob must be below 0.5, not {step_prob!r}")
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    heads: _PolicyHeads | _LocalHeads = (_LocalHeads(env) if moves == "local"
                                         else _PolicyHeads(env, policy))
    n_l = env.n_layers
    result = SearchResult()
    starts: list[LayerChoice | None] = [None]
    if init == "uniform":
        uniform = [env.score((c,) * n_l) for c in env.actions]
        for ep in uniform:
            result.record(ep)
        ranked = sorted(uniform, key=lambda e: (not e.fits, -e.reward))
        starts = [ep.choices[0] for ep in ranked[:min(incumbents, iterations)]]
    shares = [iterations // len(starts) + (r < iterations % len(starts))
              for r in range(len(starts))]
    it = -1
    for incumbent, share in zip(starts, shares, strict=True):
        net, last = _ppo_run(env, heads, rng, incumbent, share, result, it, hidden=hidden,
                             lr=lr, value_lr=value_lr, clip=clip, gamma=gamma, lam=lam,
                             epochs=epochs, ent_coef=ent_coef, init_prob=init_prob,
                             step_prob=step_prob, episodes_per_iter=episodes_per_iter,
                             callback=callback)
        it += share
    greedy: list[LayerChoice] = []
    for k in range(n_l):
        _, (a, *_) = _act(heads, net, env.state(k, greedy), None if last is None else last[k],
                          None)
        greedy.append(env.actions[a])
    result.final_choices = tuple(greedy)
    result.seconds = time.perf_counter() - start
    return result


def _gain(ep: Episode, incumbent: Episode) -> float:
    """Local moves' reward: how much ``ep`` improves on ``incumbent``, ``max(0, reward -
    incumbent's reward)`` if it fits or the incumbent does not, else 0."""
    if ep.fits or not incumbent.fits:
        return max(0.0, ep.reward - incumbent.reward)
    return 0.0


def _act(heads: _PolicyHeads | _LocalHeads, net: MLP, state: np.ndarray,
         incumbent: LayerChoice | None, rng: np.random.Generator | None
         ) -> tuple[np.ndarray, tuple[int, np.ndarray, float, np.ndarray | None]]:
    """The policy's input at a layer (the environment's ``state``; with local moves also the
    ``incumbent`` layer choice's :data:`LOCAL_FEATURES`) and the action the policy samples
    there (arg-max without ``rng``)."""
    if isinstance(heads, _LocalHeads) and incumbent is not None:
        x = np.concatenate([state, heads.features(incumbent)])
        return x, heads.act(net.forward(x[None])[0], incumbent, rng)
    return state, heads.act(net.forward(state[None])[0], rng)


def _ppo_run(env: QuantEnv, heads: _PolicyHeads | _LocalHeads, rng: np.random.Generator,
             incumbent: LayerChoice | None, iterations: int, result: SearchResult, it0: int, *,
             hidden: int, lr: float, value_lr: float, clip: float, gamma: float, lam: float,
             epochs: int, ent_coef: float, init_prob: float, step_prob: float,
             episodes_per_iter: int, callback: Callable[[int, SearchResult], None] | None
             ) -> tuple[MLP, tuple[LayerChoice, ...] | None]:
    """One PPO run from fresh networks (biased towards ``incumbent`` if given), recording into
    ``result``; the callback's iterations count on from ``it0 + 1``. Returns the policy and,
    with local moves, the last incumbent (else None)."""
    n_l, n_z = env.n_layers, sum(heads.heads)
    n_f = env.n_features + (len(LOCAL_FEATURES) if isinstance(heads, _LocalHeads) else 0)
    net = MLP([n_f, hidden, hidden, n_z], rng, out_scale=0.01)
    value = MLP([n_f, hidden, hidden, 1], rng)
    opt_p, opt_v = Adam(net.params, lr), Adam(value.params, value_lr)
    best = None
    if isinstance(heads, _LocalHeads):
        if incumbent is None:
            raise RuntimeError("local moves need an incumbent")
        net.params[-1] += heads.bias(step_prob)
        # the incumbent: the best configuration this run has scored (its start first)
        best = env.score((incumbent,) * n_l)
    elif incumbent is not None:
        net.params[-1] += heads.bias(incumbent, init_prob)
    e_n = episodes_per_iter
    for it in range(iterations):
        inc = None if best is None else best.choices
        states = np.zeros((e_n, n_l, n_f))
        comps = np.zeros((e_n, n_l, len(heads.heads)), dtype=np.intp)
        masks = np.ones((e_n, n_l, n_z), dtype=bool)
        logps = np.zeros((e_n, n_l))
        rewards = np.zeros((e_n, n_l))
        scored = []
        for e in range(e_n):
            s: np.ndarray | None = env.reset()
            for k in range(n_l):
                states[e, k], (a, comps[e, k], logps[e, k], mask) = _act(
                    heads, net, s, None if inc is None else inc[k], rng)
                if mask is not None:
                    masks[e, k] = mask
                s, rewards[e, k], _, ep = env.step(a)
            if ep is None:
                raise RuntimeError("the environment did not end after its last layer")
            result.record(ep)
            scored.append(ep)
            if best is not None:
                rewards[e, -1] = _gain(ep, best)
        if best is not None:
            best = max([best, *scored], key=lambda ep: (ep.fits, ep.reward))
        flat_s = states.reshape(-1, n_f)
        values = value.forward(flat_s)[:, 0].reshape(e_n, n_l)
        adv, ret = gae(rewards, values, gamma=gamma, lam=lam)
        adv, ret = adv.ravel(), ret.ravel()
        std = float(adv.std())
        adv = (adv - adv.mean()) / std if std > 1e-12 else adv - adv.mean()
        flat_c, flat_m = comps.reshape(-1, len(heads.heads)), masks.reshape(-1, n_z)
        for _ in range(epochs):
            _, d = ppo_policy_loss(net.forward(flat_s), flat_c, logps.ravel(), adv, clip,
                                   ent_coef, heads=heads.heads, mask=flat_m)
            opt_p.step(net.backward(d)[0])
            v = value.forward(flat_s)[:, 0]
            opt_v.step(value.backward(((v - ret) / v.size)[:, None])[0])
        if callback is not None:
            callback(it0 + 1 + it, result)
    return net, None if best is None else best.choices
