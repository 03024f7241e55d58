"""The virtual microscope: a simulated FUCCI time-lapse with ground truth, and drug treatments.

The public names below are loaded on first use (PEP 562 via ``lazy_loader``): importing this wing
imports none of its modules, so nothing heavy (torch, Datashader) is loaded before a name is used.
A name that is also a module's name is reached through its module.
"""

import lazy_loader as _lazy

#: Each module of the wing and the public names it defines and hands on.
_PUBLIC = {
    "params": ["SIM_VERSION", "FRAME_INTERVAL_MIN", "PIXEL_SIZE_UM", "MAX_CELLS_PER_FIELD", "SimParams", "PRESETS", "resolve_params", "n_frames_for"],
    "population": ["ARREST_M_PROGRESS"],
    "render": [],
    "simulate": ["CHANNELS", "MOVIE_CHANNELS", "MOVIE_NAME", "TRUTH_NAME", "TRUTH_TABLE_COLUMNS", "POSITIONS", "movie_dir"],
    "treatments": ["Condition", "CONDITIONS", "DEFAULT_STRENGTH", "condition_overrides", "resolve_strength", "describe_conditions"],
}

__getattr__, __dir__, __all__ = _lazy.attach(__name__, submodules=sorted(_PUBLIC), submod_attrs=_PUBLIC)
