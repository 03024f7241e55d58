"""Figures: every figure a chapter draws, and drawing the ring on a Dask cluster.

The public names below are loaded on first use (PEP 562 via ``lazy_loader``): importing this wing
imports none of its modules, so nothing heavy (torch, Datashader) is loaded before a name is used.
A name that is also a module's name is reached through its module.
"""

import lazy_loader as _lazy

#: Each module of the wing and the public names it defines and hands on.
_PUBLIC = {
    "cluster_draw": ["ring_aggregate_on_cluster"],
    "views": ["CLASS_COLORS", "COLOR_BY", "FUCCI_CMAP", "MAX_FIGURE_WIDTH", "UNLABELLED", "aggregate", "class_names", "crop_gallery", "display_range", "fit_column", "fucci_figure", "fucci_profile", "fucci_ratio", "fucci_view", "padded_ranges", "prepare_points", "ring_image", "ring_view", "ring_views", "sample_along"],
}

__getattr__, __dir__, __all__ = _lazy.attach(__name__, submodules=sorted(_PUBLIC), submod_attrs=_PUBLIC)
