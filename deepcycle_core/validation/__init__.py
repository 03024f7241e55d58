"""Validation: baselines' descriptors, hand-made features, a supervised baseline, the ceilings, a released peer (CellCycleNet), scoring, and the held-out validation.

The public names below are loaded on first use (PEP 562 via ``lazy_loader``): importing this wing
imports none of its modules, so nothing heavy (torch, Datashader) is loaded before a name is used.
A name that is also a module's name is reached through its module.
"""

import lazy_loader as _lazy

#: Each module of the wing and the public names it defines and hands on.
_PUBLIC = {
    "baselines": ["HANDMADE_COLUMNS", "frame_stats", "handmade_descriptors", "normalise", "pixel_pca_descriptors", "pooled_pixels"],
    "ceiling": ["CROP_VARIABLES", "HIDDEN_VARIABLES", "crop_variable_predictions", "hidden_variable_predictions"],
    "describe": ["DESCRIPTOR_BASE", "NETWORK_MODES", "NO_DESCRIPTORS", "add_arguments", "check_method_descriptors", "cell_selection", "choose_cells", "describe_command", "describe_method", "descriptor_params", "descriptor_source", "embed_cells", "hard_preset_run", "ids_key", "load_split", "options", "run_describe", "split_methods", "split_without_training", "thin_tracks"],
    "features": ["FEATURE_COLUMNS", "crop_background", "crop_features", "integrated_stain", "measure", "era_age", "baseline_table"],
    "peer": ["PEER_ROWS", "RECIPE", "ROWS", "SCORES_NAME", "STAGE_VERSION", "SUMMARY_NAME", "WEIGHTS_NAME", "auroc", "best_cut", "compare", "cycle_origin", "fucci_error", "fucci_phase", "load_peer_scores", "peer_dir", "peer_params", "run_peer", "truth_phase"],
    "scoring": ["BASELINES", "CLEARLY_WORSE_RATIO", "HARD_METHODS", "INTERVAL_COLUMNS", "METHODS", "METHOD_LABELS", "METRIC_COLUMNS", "MIN_COVERAGE", "OURS", "PAPER_READOUTS", "TARGETS", "TRUTH_NEEDED", "check_targets", "format_table", "forward_arc_length", "interval_metrics", "on_forward_arc", "phase_breakdown", "phase_reference", "score_predictions", "tenth_mae_h", "track_coverage"],
    "supervised": ["MEASURE_COLUMNS", "N_RADII", "TooFewLabels", "crop_measures", "radial_profile", "supervised_predictions"],
    "validate": ["CLOCK_METHODS", "USES_TRUTH", "RingFitError", "clock_verdict", "doubling_time", "fit_descriptor_ring", "load_results", "method_predictions", "read_method_descriptors", "ring_settings", "run_validation", "single_feature_predictions", "som_view"],
}

__getattr__, __dir__, __all__ = _lazy.attach(__name__, submodules=sorted(_PUBLIC), submod_attrs=_PUBLIC)
