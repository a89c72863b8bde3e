"""Pipeline building blocks shared by the AAP array's levels: a stage register that advances
with an enable, a delay line and a registered adder tree.

Amaranth has no stage-register helper for a pipeline that stalls as a whole (one enable for
every register, as the array's output streams require), so these few lines are written here.
"""

from amaranth.hdl import Module, Shape, Signal, Value

__all__ = ["delay", "stage", "tree_stages", "tree_sum"]


def stage(m: Module, en: Value, value: Value, shape: Shape, name: str) -> Signal:
    """``value`` one stage later: a register of ``shape`` loaded when ``en`` is high."""
    r = Signal(shape, name=name)
    with m.If(en):
        m.d.sync += r.eq(value)
    return r


def delay(m: Module, en: Value, value: Value, n: int, name: str) -> Value:
    """``value`` ``n`` stages later (``n`` registers of its shape)."""
    for i in range(n):
        value = stage(m, en, value, Value.cast(value).shape(), f"{name}_d{i}")
    return value


def _levels(terms: int) -> list[bool]:
    """For each adder level of a pairwise tree over ``terms`` operands, whether a register
    follows it: after every two levels and after the last."""
    out: list[bool] = []
    while terms > 1:
        terms = (terms + 1) // 2
        out.append(len(out) % 2 == 1 or terms == 1)
    return out


def tree_stages(terms: int) -> int:
    """Register stages of :func:`tree_sum` over ``terms`` operands (counted from the tree's
    own plan; :meth:`sw_model.arch.aap.CycleModel.fill` states them independently)."""
    return sum(_levels(terms))


def tree_sum(m: Module, en: Value, terms: list[Value], name: str) -> Value:
    """The exact sum of ``terms``, registered after every two adder levels and after the last:
    :func:`tree_stages` ``(len(terms))`` stages later."""
    stages = 0
    for registered in _levels(len(terms)):
        terms = [terms[i] + terms[i + 1] if i + 1 < len(terms) else terms[i]
                 for i in range(0, len(terms), 2)]
        if registered:
            stages += 1
            terms = [stage(m, en, x, x.shape(), f"{name}_t{stages}_{i}")
                     for i, x in enumerate(terms)]
    return terms[0]
