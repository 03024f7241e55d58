"""The clock: circular metrics, ring orientation, the ring and SOM fit (trajectory), the cycle head's read-out.

The public names below are loaded on first use (PEP 562 via ``lazy_loader``): importing this wing
imports none of its modules, so nothing heavy (torch, Datashader) is loaded before a name is used.
A name that is also a module's name is reached through its module.
"""

import lazy_loader as _lazy

#: Each module of the wing and the public names it defines and hands on.
_PUBLIC = {
    "head": ["CLOCK_TABLE_COLUMNS", "calibrate_clock", "calibration_cells", "clock_positions", "clock_table", "clock_predictions", "has_cycle_head", "judge_clock", "read_clock"],
    "metrics": ["TWO_PI", "circular_mean", "fisher_lee", "fisher_lee_pairs", "jammalamadaka_sengupta", "circular_difference", "circular_mae", "circular_mae_hours", "per_track_correlations", "grouped_spearman", "paper_average_curve"],
    "orientation": ["MovieTooShort", "NOT_A_CLOCK", "TrackTable", "TrackSteps", "MovieOrientation", "RingQuality", "track_steps", "orient_by_tracks", "ring_quality"],
    "uncertainty": ["DEFAULT_LEVEL", "IntervalCalibration", "calibrate_intervals", "circular_distance", "forward_arc_length", "on_forward_arc"],
    "trajectory": ["CLASS_ORDER", "CLOCK_NAME", "NO_RING_NAME", "RING_VERSION", "NoRing", "Orientation", "Ring", "TrajectoryResult", "descriptor_columns", "fit_closed_curve", "fit_ring", "fit_ring_som", "load_ring", "orient", "project_to_curve", "read_descriptor_matrix", "refresh_command", "run_doubling_time", "run_trajectory", "som_nodes_of", "try_trajectory"],
}

__getattr__, __dir__, __all__ = _lazy.attach(__name__, submodules=sorted(_PUBLIC), submod_attrs=_PUBLIC)
