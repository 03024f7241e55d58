"""DeepCycle core: the cell-cycle clock from unsegmented microscopy.

The package is a house of wings in data-flow order; each wing imports only from the wings before it:

    data -> sim, movies -> net -> clock -> validation -> conditions -> plots -> book

``data`` (run folders, the cell store, the split, FUCCI classes, growth/ERA), ``sim`` (the virtual
microscope), ``movies`` (real movies: readers, detection and tracking, ingest), ``net`` (the network:
training and embedding), ``clock`` (the ring and the cycle head's read-out), ``validation`` (held-out
scoring, baselines, the ceiling), ``conditions`` (treated populations), ``plots`` (every figure of the
book) and ``book`` (profiles, the papermill runner, offline JavaScript). Every wing hands on its public
names lazily, so ``import deepcycle_core.clock`` loads no torch.
"""

import lazy_loader as _lazy

__version__ = "0.1.0"

#: The wings, in data-flow order (an import between wings runs from a later one to an earlier one).
WINGS = ("data", "sim", "movies", "net", "clock", "validation", "conditions", "plots", "book")

__getattr__, __dir__, _wings = _lazy.attach(__name__, submodules=list(WINGS))
__all__ = ["WINGS", "__version__", *WINGS]
