"""Bit-width search: the hardware cost model and the mixed-precision search over it.

Every layer of a network gets a :class:`~sw_model.search.cost.LayerChoice` (scheme ``"fixed"`` or
``"sp2"``, weight width, activation width) under a hardware budget, priced by
:class:`~sw_model.search.cost.CostModel`. NumPy only. The modules:

- :mod:`~sw_model.search.cost`: the cost model (LUTs, DSPs, memory bits, cycles);
- :mod:`~sw_model.search.engine_cost`: what a per-layer width buys on the training engine's
  array (DSPs, memory bits, cycles);
- :mod:`~sw_model.search.quantize`: the float actor's layers, their quantization by a choice,
  and the grid of choices;
- :mod:`~sw_model.search.evaluators`: the quality of a configuration (proxies of the actor's
  actions, the real return, the return lost against the float actor on rotating seeded
  episodes, a quantized critic's error, and the rank correlation of a proxy with the return);
- :mod:`~sw_model.search.objective`: the users' objective, the cheapest configuration (by a
  named :class:`~sw_model.search.objective.CostMetric`) whose return stays within a
  :class:`~sw_model.search.objective.LossBound`, and the held-out choice of the winner
  (:func:`~sw_model.search.objective.heldout_winner`);
- :mod:`~sw_model.search.env`: :class:`~sw_model.search.env.Budget`, the episodic search
  environment :class:`~sw_model.search.env.QuantEnv` (one step per layer, in order, under a
  budget or a loss bound) and the records of a search;
- :mod:`~sw_model.search.networks`: the small NumPy networks of the search agents;
- :mod:`~sw_model.search.ppo`: :func:`~sw_model.search.ppo.ppo_search` (clipped PPO with GAE,
  optionally started from the best uniform configuration, over whole configurations or over
  one-step moves from a moving incumbent);
- :mod:`~sw_model.search.baselines`: :func:`~sw_model.search.baselines.uniform_baseline`,
  :func:`~sw_model.search.baselines.random_search`,
  :func:`~sw_model.search.baselines.haq_ddpg_search` (HAQ-style DDPG with HAQ's budget
  enforcement) and :func:`~sw_model.search.baselines.descent_search` (a greedy descent under a
  loss bound).
"""
