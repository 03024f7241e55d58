"""The data layer: run folders, atomic writes, stamps, the cell store, the split, FUCCI classes, growth and ERA, nucleus detection, checked values.

The public names below are loaded on first use (PEP 562 via ``lazy_loader``): importing this wing
imports none of its modules, so nothing heavy (torch, Datashader) is loaded before a name is used.
A name that is also a module's name is reached through its module.
"""

import lazy_loader as _lazy

#: Each module of the wing and the public names it defines and hands on.
_PUBLIC = {
    "atomic": ["STALE_AFTER_S", "atomic_path", "atomic_write", "remove_stale_temporaries", "temporary_name", "write_csv_atomic", "write_json_atomic", "write_parquet_atomic", "write_text_atomic"],
    "fingerprint": ["STAMP_FORMAT", "STAMP_VERSION", "STAMP_NAME", "STAGES", "STORE_FILES", "Memo", "StaleInputError", "display_path", "file_digest", "store_fingerprint", "input_fingerprint", "write_stamp", "remove_stamp", "read_stamp", "recorded_command", "check_stamp", "refresh_command", "check_checkpoint", "check_split", "check_descriptors", "check_trajectory_inputs", "check_stage", "adopt"],
    "fucci": ["PHASE_GROUPS", "CLASS_NAMES", "PHASES", "BACKGROUND_PERCENTILE", "frame_background", "measure", "classify"],
    "nuclei": ["normalise_frame", "detect_nuclei", "match_frame"],
    "growth": ["doubling_time_from_counts", "era_age_fraction", "era_hours", "growth_fit"],
    "runs": ["RunDir", "repo_root", "resolve_run", "run_dir"],
    "split": ["SPLITS", "FIT_SPLITS", "HELDOUT_SHARE", "MIN_HELDOUT_TRACKS", "track_keys", "holdout_masks", "family_trees", "lineage_holdout", "fit_mask", "make_split", "write_split", "read_split"],
    "values": ["non_negative_int", "positive_float", "positive_int", "positive_number", "whole_number"],
    "store": ["SCHEMA_VERSION", "CROP_SIZE", "CROPS_NAME", "CELLS_NAME", "FRAMES_NAME", "META_NAME", "CHUNK_BYTES_KEY", "ROWS_STREAM_NAME", "NETWORK_ROLES", "REQUIRED_COLUMNS", "TRUTH_COLUMNS", "StoreError", "CellStore", "chunk_sizes", "validate_cells", "validate_meta", "open_store", "StoreWriter"],
}

__getattr__, __dir__, __all__ = _lazy.attach(__name__, submodules=sorted(_PUBLIC), submod_attrs=_PUBLIC)
