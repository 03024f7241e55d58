"""The network: input normalisation, model, checkpoints, cycle-head targets, dataset, training, reference networks, embedding.

The public names below are loaded on first use (PEP 562 via ``lazy_loader``): importing this wing
imports none of its modules, so nothing heavy (torch, Datashader) is loaded before a name is used.
A name that is also a module's name is reached through its module.
"""

import lazy_loader as _lazy

#: Each module of the wing and the public names it defines and hands on.
_PUBLIC = {
    "cellcyclenet": ["CANVAS_MARGIN", "FINETUNE", "PRETRAINED_DIMS", "Factors", "PeerError", "factors_from_tiles", "fine_tune", "load_peer", "nucleus_masks", "peer_missing", "predict", "single_nucleus_image", "single_nucleus_images", "tile_params", "wheel_info"],
    "checkpoint": ["CHECKPOINT_FORMAT", "CHECKPOINT_VERSION", "CheckpointError", "load_checkpoint", "load_model", "save_checkpoint"],
    "cycle_targets": ["CYCLE_COLUMNS", "SOURCES", "CycleTargets", "as_unit_vectors", "doubling_time_of_store_cells"],
    "embed": ["DESCRIPTORS_NAME", "H5AD_NAME", "PRECISIONS", "SUMMARY_NAME", "chunk_ranges", "collect_outputs", "descriptor_table", "embed_range", "load_inputs", "native_bf16", "read_descriptors", "resolve_inputs", "resolve_precision", "run_model", "throughput", "write_h5ad"],
    "model": ["BACKBONES", "CYCLE_BINS", "DESCRIPTOR_EPS", "N_CLASSES", "PRESETS", "DeepCycleNet", "Preset", "bin_centres", "build_model", "descriptor_from_logits", "distribution_readout", "soft_bin_targets", "get_preset", "imagenet_cache_path", "load_backbone_state", "resolve_pretrained", "use_bf16"],
    "normalise": ["MODES", "NORMALISATION", "frame_norm", "mode_channels", "normalise_crops"],
    "reference": ["RECIPE", "export_reference", "install_reference", "load_reference", "train_oracle", "train_reference"],
    "reference_card": ["CARD_NAME", "ORACLE_NAME", "ReferenceError", "oracle_predictions", "read_card", "reference_dir", "store_identity"],
    "train": ["CYCLE_LABELS", "KILL_ENV", "CycleLabels", "confusion_metrics", "evaluate", "refresh_command", "weights_digest"],
    "dataset": ["SIZE_BLIND_ZOOM", "CellBatches", "TrainingData", "chunk_order", "class_weights", "dihedral", "epoch_sample", "stain_conserving_zoom"],
}

__getattr__, __dir__, __all__ = _lazy.attach(__name__, submodules=sorted(_PUBLIC), submod_attrs=_PUBLIC)
