"""``fixar-hw train``: train a DDPG agent in NumPy and write its log, reward plot and weight image.

The run writes into its output directory:

``config.json``
    The :class:`sw_model.rl.ddpg.DDPGConfig` (its JSON).
``returns.csv``
    ``episode,env_step,return``: one row per finished training episode.
``rewards.png``
    Episode returns against environment steps, with a moving average over 10 episodes.
``weights.fximg``
    The trained actor and critic as a :class:`sw_model.rl.image.WeightImage`.
``summary.json``
    Steps, training steps, seconds, last returns and the evaluation of the final policy.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fixar_hw.config import CoreConfig
from sw_model.rl.ddpg import DDPGAgent, DDPGConfig, TrainResult, evaluate, train

__all__ = ["CoreAgentFactory", "RunSummary", "config_from_args", "core_agent_factory",
           "plot_returns", "run_training", "write_returns_csv"]


@dataclass(frozen=True)
class RunSummary:
    """What :func:`run_training` wrote and measured.

    Attributes
    ----------
    out_dir : pathlib.Path
    episode_returns : list of float
    eval_returns : list of float
        Returns of the final deterministic policy (empty if not evaluated).
    train_steps : int
    seconds : float
    """

    out_dir: Path
    episode_returns: list[float]
    eval_returns: list[float]
    train_steps: int
    seconds: float


def write_returns_csv(path: str | os.PathLike[str], result: TrainResult) -> None:
    """Write ``episode,env_step,return`` rows of a training run."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["episode", "env_step", "return"])
        for i, (end, ret) in enumerate(zip(result.episode_ends, result.episode_returns,
                                           strict=True), 1):
            writer.writerow([i, end, f"{ret:.6f}"])


def plot_returns(path: str | os.PathLike[str], result: TrainResult, title: str) -> None:
    """Save a PNG of episode returns against environment steps (matplotlib, Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    ends = np.asarray(result.episode_ends)
    rets = np.asarray(result.episode_returns)
    ax.plot(ends, rets, ".", alpha=0.5, label="episode return")
    if rets.size >= 2:
        w = min(10, rets.size)
        avg = np.convolve(rets, np.ones(w) / w, mode="valid")
        ax.plot(ends[w - 1:], avg, "-", label=f"moving average ({w})")
    ax.set_xlabel("environment step")
    ax.set_ylabel("return")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def run_training(config: DDPGConfig, env: str, steps: int, out_dir: str | os.PathLike[str], *,
                 eval_episodes: int = 10, progress: bool = True,
                 make_agent: Callable[..., DDPGAgent] | None = None) -> RunSummary:
    """Train, evaluate and write the outputs listed in the module docs.

    Parameters
    ----------
    config : DDPGConfig
    env : str
        Environment name for :func:`sw_model.rl.envs.make`.
    steps : int
        Environment steps.
    out_dir : path
        Created if missing.
    eval_episodes : int
        Episodes of the final deterministic policy (0: no evaluation).
    progress : bool
        Show a tqdm progress bar (on stderr).
    make_agent : callable, optional
        Builds the agent (:func:`sw_model.rl.ddpg.train`), e.g. :func:`core_agent_factory`'s.
    """
    from tqdm import tqdm

    if isinstance(eval_episodes, bool) or not isinstance(eval_episodes, int):
        raise TypeError(f"eval_episodes must be an integer, not {eval_episodes!r}")
    if eval_episodes < 0:
        raise ValueError(f"eval_episodes must be non-negative, not {eval_episodes!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(config.to_json() + "\n")
    bar = tqdm(total=steps, desc=f"{config.precision} {env}", unit="step", disable=not progress,
               mininterval=0.5)
    recent: list[float] = []

    def callback(step: int, agent: DDPGAgent, finished: float | None) -> None:
        bar.update(1)
        if finished is not None:
            recent.append(finished)
            bar.set_postfix(ret=f"{np.mean(recent[-10:]):.1f}", refresh=False)

    try:
        result = train(config, env, steps, callback=callback, make_agent=make_agent)
    finally:
        bar.close()
    write_returns_csv(out / "returns.csv", result)
    plot_returns(out / "rewards.png", result,
                 f"DDPG {config.precision}, {env}, hidden {'-'.join(map(str, config.hidden))}, "
                 f"seed {config.seed}")
    agent = result.agent
    agent.to_image({"env": env, "steps": str(steps)}).save(out / "weights.fximg")
    eval_returns = evaluate(agent, env, eval_episodes) if eval_episodes else []
    summary = {
        "env": env, "precision": config.precision, "steps": steps,
        "train_steps": result.train_steps, "seconds": round(result.seconds, 3),
        "episodes": len(result.episode_returns),
        "last10_mean_return": float(np.mean(result.episode_returns[-10:]))
        if result.episode_returns else None,
        "eval_returns": eval_returns,
        "eval_mean_return": float(np.mean(eval_returns)) if eval_returns else None,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return RunSummary(out, result.episode_returns, eval_returns, result.train_steps,
                      result.seconds)


def config_from_args(precision: str, hidden: Sequence[int], seed: int, **overrides: object
                     ) -> DDPGConfig:
    """A DDPGConfig from command-line values (None values keep the defaults)."""
    kwargs = {k: v for k, v in overrides.items() if v is not None}
    return DDPGConfig(hidden=tuple(hidden), precision=precision, seed=seed, **kwargs)


class CoreAgentFactory:
    """Builds agents for :func:`run_training` whose training steps and noisy actions run on a
    :class:`~fixar_hw.soc.core.FixarCore` (:class:`fixar_hw.host.driver.HardwareAgent`);
    :func:`core_agent_factory` makes one.

    Call it like :class:`sw_model.rl.ddpg.DDPGAgent`; :meth:`close` closes the transports of
    the agents it made (and so finishes their waveform files).

    Parameters
    ----------
    backend : {"sim", "verilator"}
        Amaranth's simulator (:class:`~fixar_hw.sim.transport.SimTransport`) or the Verilog in
        Verilator (:class:`~fixar_hw.sim.core_verilator.VerilatorTransport`).
    size, cores : int
        PE grid side and AAP cores.
    update_units : int, optional
        Update units (default: ``min(size * size, 4)``).
    update_kind : {"pipelined", "iterative"}
        The update units' kind (:attr:`EngineConfig.update_kind
        <sw_model.arch.engine.EngineConfig>`; default ``"pipelined"``).
    vcd : path, optional
        ``backend="sim"``: write a VCD file of the core's whole run.
    trace : path, optional
        ``backend="verilator"``: write an FST file of the core's whole run.

    Raises
    ------
    TypeError, ValueError
        For a bad parameter, or a waveform the backend does not write.
    """

    def __init__(self, backend: str = "sim", *, size: int = 4, cores: int = 2,
                 update_units: int | None = None, update_kind: str = "pipelined",
                 vcd: str | os.PathLike[str] | None = None,
                 trace: str | os.PathLike[str] | None = None) -> None:
        from fixar_hw.apps.demo.settings import check_waveforms

        if backend not in ("sim", "verilator"):
            raise ValueError(f"backend must be 'sim' or 'verilator', not {backend!r}")
        self.update_kind = update_kind
        check_waveforms(backend, vcd, trace)
        self.backend, self.size, self.cores, self.update_units = backend, size, cores, \
            update_units
        self.vcd = None if vcd is None else os.fspath(vcd)
        self.trace = None if trace is None else os.fspath(trace)
        self.transports: list = []

    def __call__(self, config: DDPGConfig, obs_dim: int, act_dim: int, low, high
                 ) -> DDPGAgent:
        """A :class:`~fixar_hw.host.driver.HardwareAgent` on a new core.

        Raises
        ------
        RuntimeError
            For a second agent when a waveform is written (one file, one core).
        """
        from fixar_hw.host.driver import FixarDriver, HardwareAgent
        from fixar_hw.sim.transport import SimTransport

        if self.transports and (self.vcd or self.trace):
            raise RuntimeError("a factory that writes a waveform makes one agent")
        core = self.core_config(config, obs_dim, act_dim)
        if self.backend == "sim":
            transport: Any = SimTransport(core, vcd=self.vcd)
        else:
            from fixar_hw.sim.core_verilator import VerilatorTransport

            transport = VerilatorTransport(core, trace=self.trace)
        self.transports.append(transport)
        return HardwareAgent(config, obs_dim, act_dim, low, high,
                             driver=FixarDriver(transport, core))

    def core_config(self, config: DDPGConfig, obs_dim: int, act_dim: int) -> CoreConfig:
        """The :class:`~fixar_hw.config.CoreConfig` of the cores this factory makes for an
        agent of ``config`` on an environment of ``obs_dim`` observations and ``act_dim``
        actions.

        Raises
        ------
        ValueError
            If the engine refuses the grid (a size that is not a power of two, too many
            update units, an unknown update kind; the message says which).
        """
        from sw_model.arch.engine import EngineConfig

        size = self.size
        units = self.update_units if self.update_units is not None else min(size * size, 4)
        return CoreConfig(EngineConfig(config, obs_dim, act_dim, size=size, cores=self.cores,
                                       update_units=units, update_kind=self.update_kind))

    def close(self) -> None:
        """Close the transports of the agents made so far (their agents cannot run after)."""
        for transport in self.transports:
            transport.close()


def core_agent_factory(backend: str = "sim", *, size: int = 4, cores: int = 2,
                       update_units: int | None = None, update_kind: str = "pipelined",
                       vcd: str | os.PathLike[str] | None = None,
                       trace: str | os.PathLike[str] | None = None) -> CoreAgentFactory:
    """An agent factory for :func:`run_training` whose agents train on a
    :class:`~fixar_hw.soc.core.FixarCore` (:class:`fixar_hw.host.driver.HardwareAgent`): in
    Amaranth's simulator (``backend="sim"``, :class:`~fixar_hw.sim.transport.SimTransport`,
    optionally writing a VCD file ``vcd``) or as Verilog in Verilator (``"verilator"``,
    :class:`~fixar_hw.sim.core_verilator.VerilatorTransport`, optionally writing an FST file
    ``trace``). The parameters are :class:`CoreAgentFactory`'s. Close it
    (:meth:`CoreAgentFactory.close`) after the run to finish the waveform."""
    return CoreAgentFactory(backend, size=size, cores=cores, update_units=update_units,
                            update_kind=update_kind, vcd=vcd, trace=trace)
