"""PE array: several AAP cores in lockstep, with intra-batch or intra-layer parallelism per op.

:class:`PEArray` runs ``config.cores`` :class:`~fixar_hw.aap.AAPCore` grids from one sequencer.
Each command picks how an operation is split (``parallelism`` of
:meth:`~fixar_hw.aap.AAPCore.command`):

``"batch"`` (intra-batch)
    Core ``k`` takes vectors ``k, k + cores, ...``; all cores read the same weight tile in the
    same cycle (one broadcast read serves them) and each has its own accumulators and output
    stage. One output beat carries the slice of ``cores`` consecutive vectors.
``"layer"`` (intra-layer)
    Core ``k`` takes reduction tiles ``k, k + cores, ...`` of every output slice (FIXAR's
    column interleaving); their column sums are added across cores, then accumulated and
    finished by core 0's output stage. One vector at a time.

Weight gradients always split the tile columns of each tile row across cores (each core sums
the batch in its PEs), whatever the command says; see :class:`sw_model.aap.CycleModel`.

Which is faster (:func:`sw_model.aap.choose_parallelism` applies the rule): intra-batch idles
``cores - batch % cores`` core-slots once per output slice, intra-layer idles
``cores - red % cores`` per output slice of every vector (``red`` the reduction tiles). So
training batches (a multiple of ``cores``) run intra-batch at full occupancy; a single vector
(acting in the environment) runs intra-layer, where intra-batch would leave all cores but one
idle.

Memories: each core has its own read ports, with the addresses of
:class:`~fixar_hw.aap.AAPCore` in one shared address space. In intra-batch mode the ``w_rd``
addresses of all active cores are equal in every cycle (a banked or broadcast weight memory can
serve them with one read); in intra-layer mode core ``k`` reads tiles whose reduction index is
``k`` modulo ``cores`` (a memory banked that way serves each core from its own bank).
"""

from sw_model.aap import AAPConfig

from ._util import silence_on_error
from .aap import AAPCore

__all__ = ["PEArray"]


class PEArray(AAPCore):
    """``config.cores`` AAP cores in lockstep (see the module docs for the two parallelisms).

    Interface, numerics and timing as :class:`~fixar_hw.aap.AAPCore`, with one set of read
    ports per core and output beats of ``cores`` slices (``mask`` bit ``k`` set when core
    ``k``'s slice holds a result). Cycle counts equal :meth:`sw_model.aap.CycleModel.cycles`.

    Parameters
    ----------
    config : AAPConfig
        ``config.cores`` cores of ``config.size`` squared PEs.
    """

    _max_cores = 1 << 16

    @silence_on_error
    def __init__(self, config: AAPConfig) -> None:
        super().__init__(config)
