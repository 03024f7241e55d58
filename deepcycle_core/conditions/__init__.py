"""Conditions: phase calls, phase read-outs (network, DNA content), circular tests, the treated-population analysis.

The public names below are loaded on first use (PEP 562 via ``lazy_loader``): importing this wing
imports none of its modules, so nothing heavy (torch, Datashader) is loaded before a name is used.
A name that is also a module's name is reached through its module.
"""

import lazy_loader as _lazy

#: Each module of the wing and the public names it defines and hands on.
_PUBLIC = {
    "analysis": ["Calibration", "Comparison", "condition_store", "read_population", "calibrate_on_control", "compare", "true_shares", "comparison_rows", "era_check"],
    "circular_tests": ["watson_u2", "watson_u2_asymptotic_p", "FieldTest", "field_permutation_test", "field_bootstrap"],
    "dna_content": ["RATIO_BOUNDS", "DISC_PER_RADIUS", "PLACEMENT_SE_FRACTION", "integrated_dna", "half_height_radii", "nucleus_radius_px", "measure_dna", "DnaHistogramFit", "fit_dna_histogram", "Alignment", "DnaContentReadout"],
    "phase_arcs": ["PhaseArcs", "calibrate_arcs"],
    "phase_calls": ["phase_group", "call_phases"],
    "phase_readout": ["READOUT_COLUMNS", "PhaseReadout", "fit_phase_readout"],
}

__getattr__, __dir__, __all__ = _lazy.attach(__name__, submodules=sorted(_PUBLIC), submod_attrs=_PUBLIC)
