"""Real movies: readers (OME-TIFF, TIFF, frame folders, OME-Zarr, the DeepCycle layout), detection and tracking, ingest.

The public names below are loaded on first use (PEP 562 via ``lazy_loader``): importing this wing
imports none of its modules, so nothing heavy (torch, Datashader) is loaded before a name is used.
A name that is also a module's name is reached through its module.
"""

import lazy_loader as _lazy

#: Each module of the wing and the public names it defines and hands on.
_PUBLIC = {
    "detect_track": ["normalise_frame", "detect_nuclei", "track_spots", "MatchReport", "match_frame", "match_truth"],
    "ingest": ["ROLES", "DEFAULT_CHANNELS", "DEFAULT_DIAMETER_PX", "parse_channels", "crop_at", "inside", "match_store"],
    "readers": ["KNOWN_AXES", "DEEPCYCLE_FOLDERS", "TRACKMATE_SPOTS", "TIFF_SUFFIXES", "MovieError", "positive", "Movie", "is_deepcycle_layout", "read_trackmate_spots", "open_movie"],
}

__getattr__, __dir__, __all__ = _lazy.attach(__name__, submodules=sorted(_PUBLIC), submod_attrs=_PUBLIC)
