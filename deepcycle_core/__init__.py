"""DeepCycle core: the cell-cycle clock from unsegmented microscopy.

One module a concept: ``store`` (the on-disk cell store), ``simulate`` (the virtual microscope),
``ingest`` (real movies), ``fucci`` (reporter readout and classes), ``model``/``train``/``embed``
(the network), ``trajectory`` (the ring and pseudotime), ``metrics`` (validation), ``plots``
(figures shared by chapters) and ``pipeline`` (runs the book).
"""

__all__ = ["__version__"]  # the modules are imported by name: a star import must not pull in torch

__version__ = "0.1.0"
