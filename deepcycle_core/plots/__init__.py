"""Figures: every figure a chapter draws, and drawing the ring on a Dask cluster.

The public names below are loaded on first use (PEP 562 via ``lazy_loader``): importing this wing
imports none of its modules, so nothing heavy (torch, Datashader) is loaded before a name is used.
A name that is also a module's name is reached through its module.
"""

import lazy_loader as _lazy

#: Each module of the wing and the public names it defines and hands on.
_PUBLIC = {
    "cluster_draw": ["ring_aggregate_on_cluster"],
    "conditions": ["DPI", "arcs_summary", "alignment_summary", "population_table", "ring_tabs", "clock_density_figure", "dna_histograms_figure", "shares_table", "verdict_table", "verdict_summary", "dose_table", "dose_figure", "null_summary", "GRID_TARGETS", "grid_microscopes", "grid_table", "grid_named", "grid_summary", "dose_monotone", "era_table", "arrest_table", "SHARE_DECIMALS"],
    "data": ["class_balance_table", "class_phase_table", "crops_along_cycle_figure", "feature_age_figure", "feature_baseline_summary", "fucci_division_figure", "fucci_division_table", "fucci_class_plane", "growth_figure", "growth_summary", "pick_crops_along_cycle", "store_summary"],
    "embedding": ["DESCRIPTOR_COLUMNS", "accuracy_table", "anndata_summary", "class_histograms_figure", "class_medians_table", "confusion_summary", "dask_scaling_summary", "descriptor_plane_figure", "descriptor_plane_view", "descriptor_summary", "descriptor_table", "embed_summary", "held_out_mask", "inference_summary", "paper_scale_summary", "throughput_summary"],
    "movies": ["CROP_PX", "detections_figure", "ingest_summary", "match_table"],
    "ring": ["arc_rates_figure", "class_order_summary", "clock_verdict_summary", "cycle_head_figure", "era_figure", "era_summary", "fucci_peaks_summary", "held_out_clock_summary", "interval_figure", "interval_summary", "no_hours_reason", "ring_figure", "ring_gallery_figure", "ring_summary", "ring_table", "ring_verdict_summary", "som_figure", "som_summary", "truth_figure", "truth_summary"],
    "training": ["PAPER_RESULTS", "accuracy_summary", "benchmark_summary", "confusion_figure", "cycle_head_summary", "history_table", "learning_curves_figure", "modes_table", "preset_summary", "recall_table", "reference_speed_summary", "reference_summary", "split_table"],
    "validation": ["CEILING", "MAE_TARGET_H", "SPEARMAN_TARGET", "ceiling_gap", "confusion_table", "era_error_by_age", "era_hexbin", "era_hours", "example_tracks", "held_out_summary", "inputs_found", "mae_bars", "misses_explained", "paper_curves", "paper_statistic_table", "phase_errors", "phase_mae_table", "pick_example_tracks", "position_profile", "summary_text", "targets_text", "track_spearman_boxes", "track_spearman_quantiles"],
    "views": ["CLASS_COLORS", "COLOR_BY", "FUCCI_CMAP", "MAX_FIGURE_WIDTH", "UNLABELLED", "aggregate", "class_names", "crop_gallery", "display_range", "fit_column", "fucci_figure", "fucci_profile", "fucci_ratio", "fucci_view", "padded_ranges", "prepare_points", "ring_image", "ring_view", "ring_views", "sample_along"],
}

__getattr__, __dir__, __all__ = _lazy.attach(__name__, submodules=sorted(_PUBLIC), submod_attrs=_PUBLIC)
