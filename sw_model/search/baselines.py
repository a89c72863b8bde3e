"""Baselines of the PPO search: every uniform configuration (:func:`uniform_baseline`), random
search (:func:`random_search`), a HAQ-style DDPG search with HAQ's budget enforcement
(:func:`haq_ddpg_search`, :func:`enforce_budget`) and, under a loss bound, a greedy descent
from the best uniform configurations (:func:`descent_search`).

Reproducibility: every random draw of a search comes from ``numpy.random.default_rng(seed)``,
so the same seed and environment give identical results.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np

from sw_model.checks import check_int, check_real
from sw_model.search._checks import check_choices
from sw_model.search.cost import LayerChoice
from sw_model.search.env import Budget, Episode, QuantEnv, SearchResult, check_env
from sw_model.search.networks import MLP, Adam
from sw_model.search.objective import LossBound

__all__ = ["descent_search", "enforce_budget", "haq_ddpg_search", "random_search",
           "uniform_baseline"]

def uniform_baseline(env: QuantEnv, widths: Sequence[LayerChoice] | None = None
                     ) -> SearchResult:
    """Every layer with the same choice, for each choice of ``widths`` (default: the grid).

    Returns
    -------
    SearchResult
        ``history`` holds one :class:`~sw_model.search.env.Episode` per choice, in order;
        ``best_*`` the best fitting one.
    """
    env = check_env(env)
    start = time.perf_counter()
    widths = env.actions if widths is None else widths
    if isinstance(widths, str | bytes) or not isinstance(widths, Sequence):
        raise TypeError(f"widths must be a sequence of LayerChoice, not {widths!r}")
    result = SearchResult()
    for c in widths:
        if not isinstance(c, LayerChoice):
            raise TypeError(f"widths must hold LayerChoice objects, not {c!r}")
        result.record(env.score((c,) * env.n_layers))
    result.seconds = time.perf_counter() - start
    return result


def random_search(env: QuantEnv, *, episodes: int = 100, seed: int = 0,
                  callback: Callable[[int, SearchResult], None] | None = None) -> SearchResult:
    """Random search: ``episodes`` configurations, every layer's choice drawn uniformly from
    the grid :attr:`~sw_model.search.env.QuantEnv.actions` with
    ``numpy.random.default_rng(seed)`` (a configuration drawn twice is scored once, as the
    environment memoises it, but recorded twice).

    Returns
    -------
    SearchResult
        ``history`` holds the ``episodes`` configurations in the order drawn.
    """
    env = check_env(env)
    episodes = check_int(episodes, "episodes", minimum=1)
    seed = check_int(seed, "seed", minimum=0)
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    result = SearchResult()
    for i in range(episodes):
        idx = rng.integers(len(env.actions), size=env.n_layers)
        result.record(env.score(tuple(env.actions[j] for j in idx)))
        if callback is not None:
            callback(i, result)
    result.seconds = time.perf_counter() - start
    return result


def _lower(env: QuantEnv, c: LayerChoice, which: str) -> LayerChoice | None:
    """``c`` with its weight (``"w"``) or activation (``"a"``) width one grid step lower."""
    grid = env.w_bits[c.scheme] if which == "w" else env.a_bits
    bits = c.w_bits if which == "w" else c.a_bits
    lower = [b for b in grid if b < bits]
    if not lower:
        return None
    if which == "w":
        return LayerChoice(c.scheme, lower[-1], c.a_bits)
    return LayerChoice(c.scheme, c.w_bits, lower[-1])


def enforce_budget(env: QuantEnv, choices: Sequence[LayerChoice]) -> tuple[LayerChoice, ...]:
    """HAQ's budget enforcement: lower widths from the last layer until the budget fits.

    Passes run over the layers from the last to the first; at each layer the weight width,
    then the activation width, drops one step on the grid (if above the scheme's minimum), and
    the search stops as soon as the configuration fits. When every layer is at its minimum and
    it still does not fit, layers (last first) switch to the scheme whose minimum-width choice
    gives the lowest usage, again stopping when it fits. So the result fits whenever the
    minimum widths of the chosen schemes fit; otherwise it may still be over budget.
    """
    env = check_env(env)
    if not isinstance(env.budget, Budget):
        raise TypeError(f"enforce_budget needs an env with a Budget, not {env.budget!r}")
    cur = list(check_choices(choices, env.n_layers))

    def fits() -> bool:
        return env.budget.fits(env.cost(cur))

    if fits():
        return tuple(cur)
    changed = True
    while changed:
        changed = False
        for k in range(env.n_layers - 1, -1, -1):
            for which in ("w", "a"):
                low = _lower(env, cur[k], which)
                if low is not None:
                    cur[k], changed = low, True
                    if fits():
                        return tuple(cur)
    for k in range(env.n_layers - 1, -1, -1):
        options = [LayerChoice(s, env.w_bits[s][0], env.a_bits[0]) for s in env.schemes]
        best = min(options, key=lambda c: env.budget.usage(env.cost([*cur[:k], c, *cur[k + 1:]])))
        cur[k] = best
        if fits():
            break
    return tuple(cur)


def _bin(u: float, n: int) -> int:
    return min(int(u * n), n - 1)


def haq_ddpg_search(env: QuantEnv, *, episodes: int = 100, warmup: int = 20, seed: int = 0,
                    hidden: int = 64, actor_lr: float = 1e-3, critic_lr: float = 2e-3,
                    batch_size: int = 64, updates: int = 8, noise: float = 0.5,
                    noise_decay: float = 0.95, baseline_decay: float = 0.95,
                    callback: Callable[[int, SearchResult], None] | None = None
                    ) -> SearchResult:
    """A HAQ-style DDPG search (Wang et al., CVPR 2019) over the grid of a
    :class:`~sw_model.search.env.QuantEnv`.

    Per layer the actor (tanh hidden layers, sigmoid output) gives ``u`` in ``[0, 1]**3``;
    ``u[0]`` picks the scheme, ``u[1]`` the weight width and ``u[2]`` the activation width,
    each as bin ``min(floor(u * n), n - 1)`` of its sorted grid of ``n`` entries (HAQ's
    ``round(b_min - 0.5 + u * (b_max - b_min + 1))`` for consecutive widths). The first
    ``warmup`` episodes draw ``u`` uniformly; later ones add Gaussian noise of standard
    deviation ``noise * noise_decay**(episode - warmup)``, clipped to ``[0, 1]``. After each
    episode the configuration goes through :func:`enforce_budget` (under a
    :class:`~sw_model.search.env.Budget`; under a
    :class:`~sw_model.search.objective.LossBound` there is no resource limit to enforce and
    the reward alone steers the search) and is scored. As in HAQ,
    every transition of the episode gets the final reward minus a moving-average baseline
    (``b <- baseline_decay * b + (1 - baseline_decay) * reward``), and with HAQ's discount of
    1 and one reward per episode the critic regresses ``Q(s, u)`` on that value (no
    bootstrapping, so no target networks). Each episode after the warm-up runs ``updates``
    minibatch steps of the critic (MSE) and the actor (``-Q(s, actor(s))``), with Adam.

    Returns
    -------
    SearchResult
        ``final_choices`` is the enforced configuration of the noise-free actor.
    """
    env = check_env(env)
    episodes = check_int(episodes, "episodes", minimum=1)
    warmup = check_int(warmup, "warmup", minimum=0)
    seed = check_int(seed, "seed", minimum=0)
    hidden = check_int(hidden, "hidden", minimum=1)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    updates = check_int(updates, "updates", minimum=0)
    actor_lr = check_real(actor_lr, "actor_lr", minimum=0.0, min_open=True)
    critic_lr = check_real(critic_lr, "critic_lr", minimum=0.0, min_open=True)
    noise = check_real(noise, "noise", minimum=0.0)
    noise_decay = check_real(noise_decay, "noise_decay", minimum=0.0, maximum=1.0)
    baseline_decay = check_real(baseline_decay, "baseline_decay", minimum=0.0, maximum=1.0)
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    n_f, n_l = env.n_features, env.n_layers
    actor = MLP([n_f, hidden, hidden, 3], rng, out_scale=0.1)
    critic = MLP([n_f + 3, hidden, hidden, 1], rng)
    opt_a, opt_c = Adam(actor.params, actor_lr), Adam(critic.params, critic_lr)
    buf_s: list[np.ndarray] = []
    buf_u: list[np.ndarray] = []
    buf_r: list[float] = []
    baseline: float | None = None
    result = SearchResult()

    def act(s: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-actor.forward(s[None])[0]))

    def choose(u: np.ndarray) -> LayerChoice:
        scheme = env.schemes[_bin(u[0], len(env.schemes))]
        ws = env.w_bits[scheme]
        return LayerChoice(scheme, ws[_bin(u[1], len(ws))], env.a_bits[_bin(u[2], len(env.a_bits))])

    def rollout(sigma: float | None) -> tuple[list[np.ndarray], list[np.ndarray], list]:
        choices: list[LayerChoice] = []
        ss, us = [], []
        for k in range(n_l):
            s = env.state(k, choices)
            if sigma is None:
                u = rng.random(3)
            elif sigma == 0.0:
                u = act(s)
            else:
                u = np.clip(act(s) + sigma * rng.standard_normal(3), 0.0, 1.0)
            ss.append(s)
            us.append(u)
            choices.append(choose(u))
        return ss, us, choices

    for ep_i in range(episodes):
        sigma = None if ep_i < warmup else noise * noise_decay ** (ep_i - warmup)
        ss, us, choices = rollout(sigma)
        ep = env.score(enforce_budget(env, choices) if isinstance(env.budget, Budget)
                       else tuple(choices))
        result.record(ep)
        baseline = ep.reward if baseline is None else (
            baseline_decay * baseline + (1.0 - baseline_decay) * ep.reward)
        target = ep.reward - baseline
        buf_s += ss
        buf_u += us
        buf_r += [target] * n_l
        if ep_i + 1 >= warmup and updates:
            s_all, u_all, r_all = np.array(buf_s), np.array(buf_u), np.array(buf_r)
            for _ in range(updates):
                idx = rng.integers(len(buf_r), size=min(batch_size, len(buf_r)))
                q = critic.forward(np.hstack([s_all[idx], u_all[idx]]))[:, 0]
                opt_c.step(critic.backward(((q - r_all[idx]) / idx.size)[:, None])[0])
                z = actor.forward(s_all[idx])
                u = 1.0 / (1.0 + np.exp(-z))
                critic.forward(np.hstack([s_all[idx], u]))
                _, d_in = critic.backward(np.full((idx.size, 1), -1.0 / idx.size))
                opt_a.step(actor.backward(d_in[:, n_f:] * u * (1.0 - u))[0])
        if callback is not None:
            callback(ep_i, result)
    greedy = rollout(0.0)[2]
    result.final_choices = (enforce_budget(env, greedy) if isinstance(env.budget, Budget)
                            else tuple(greedy))
    result.seconds = time.perf_counter() - start
    return result


def _steps_down(env: QuantEnv, c: LayerChoice) -> list[LayerChoice]:
    """``c`` one grid step narrower: in its weights, its activations, or both."""
    w, a = _lower(env, c, "w"), _lower(env, c, "a")
    both = None if w is None or a is None else _lower(env, w, "a")
    return [x for x in (w, a, both) if x is not None]


def descent_search(env: QuantEnv, *, episodes: int = 100,
                   callback: Callable[[int, SearchResult], None] | None = None
                   ) -> SearchResult:
    """Greedy coordinate descent under a loss bound: the cheapest configuration that meets it.

    First every uniform configuration is scored (as :func:`uniform_baseline`, in the grid's
    order). Then, from the cheapest uniform configuration that meets the bound: each round
    scores the configurations one step cheaper in one layer (that layer's weight width, its
    activation width, or both, one grid step lower; schemes stay), cheapest first, and moves
    to the first that meets the bound, the cheapest such step. When none does, the descent
    starts again from the next cheapest uniform configuration that meets the bound, until
    ``episodes`` configurations have been scored (a configuration scored before counts again,
    as it does for the other methods, but the environment's memo gives it its first score) or
    no start is left. Deterministic: it draws nothing at random.

    Each score is the quality on the evaluator's episodes of that call (rotating episodes for
    :func:`fixar_hw.apps.search.run_loss_search`), so the descent can step onto a
    configuration that meets the bound by luck; held-out re-checks are what catch it.

    Parameters
    ----------
    env : QuantEnv
        Under a :class:`~sw_model.search.objective.LossBound`.
    episodes : int
        Configurations to score, the uniform ones included.
    callback : callable, optional
        ``callback(i, result)`` after the ``i``-th scored configuration.

    Returns
    -------
    SearchResult
        ``history`` holds the scored configurations in order; ``final_choices`` is where the
        last descent stopped.

    Raises
    ------
    TypeError
        If ``env`` is not a :class:`QuantEnv` under a
        :class:`~sw_model.search.objective.LossBound`.
    ValueError
        If ``episodes`` is below 1.
    """
    env = check_env(env)
    if not isinstance(env.budget, LossBound):
        raise TypeError(f"descent_search needs an env under a LossBound, not {env.budget!r}")
    episodes = check_int(episodes, "episodes", minimum=1)
    start = time.perf_counter()
    result = SearchResult()

    def score(choices: tuple[LayerChoice, ...]) -> Episode:
        ep = env.score(choices)
        result.record(ep)
        if callback is not None:
            callback(len(result.history) - 1, result)
        return ep

    def metric(choices: tuple[LayerChoice, ...]) -> float:
        return env.budget.metric(env.cost(choices))

    uniform = []
    for c in env.actions:
        if len(result.history) >= episodes:
            break
        ep = score((c,) * env.n_layers)
        if ep.fits:
            uniform.append(ep.choices)
    uniform.sort(key=metric)
    cur: tuple[LayerChoice, ...] | None = None
    for cur in uniform:
        while len(result.history) < episodes:
            here = metric(cur)
            # one step down in one layer, cheapest first (a stable sort: ties keep the order
            # of the layers and of the steps)
            steps = sorted((x for x in dict.fromkeys(
                (*cur[:k], d, *cur[k + 1:]) for k in range(env.n_layers)
                for d in _steps_down(env, cur[k])) if metric(x) < here), key=metric)
            moved = None
            for x in steps:
                if len(result.history) >= episodes:
                    break
                if score(x).fits:
                    moved = x
                    break
            if moved is None:
                break
            cur = moved
        if len(result.history) >= episodes:
            break
    result.final_choices = cur
    result.seconds = time.perf_counter() - start
    return result
