"""Named drug / treatment conditions for the virtual microscope, each a dose-scaled set of overrides.

Why: a cell-cycle clock read from images is only useful if it reports what a perturbation does to the
cycle. The paper never filmed treated cells; the simulator can, and knows the truth. A condition is
a named recipe of :class:`deepcycle_core.sim.params.SimParams` overrides on top of a preset (``default``
unless another difficulty is asked for), scaled by a strength (a dose, 1.0 = the nominal dose), so the
book can ask "does the clock see the G1 arrest / the S slowdown / the G2/M block, and from what dose?".

The conditions model a drug that has already acted for ``treatment_lead_h`` hours when filming starts
(24 h: close to one cycle, so most cells have met the drug at their sensitive point):

* ``control``: untreated.
* ``g1_arrest`` (a CDK4/6 inhibitor such as palbociclib): G1 lasts longer and a share of the cells
  stop for good at the restriction point, late in G1, Cdt1-red and never dividing.
* ``s_slowdown`` (replication stress, e.g. low-dose hydroxyurea or aphidicolin): S lasts longer.
* ``g2m_block`` (a CDK1 inhibitor such as RO-3306 or a spindle poison such as nocodazole): G2 lasts a
  little longer and a share of the cells stop for good, half at the end of G2 (Geminin-green, not
  rounded) and half in metaphase (rounded mitotic cells that accumulate).

This module only maps names and doses to overrides; the mechanics (phase extension, arrest points,
the lead before the first frame) live in :mod:`deepcycle_core.sim.simulate`. It imports nothing from the
simulator so that it can be read, and its table printed, on its own (only the phase names, from
:mod:`deepcycle_core.data.fucci`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

from ..data.fucci import PHASES  # the phase names' one home

__all__ = ["Condition", "CONDITIONS", "DEFAULT_STRENGTH", "condition_overrides", "resolve_strength", "describe_conditions"]

#: The nominal dose of every condition; 0 is untreated, and overrides scale with the strength.
DEFAULT_STRENGTH = 1.0
#: Hours the drug has acted before the first filmed frame (about one cycle of the default preset).
_LEAD_H = 24.0
#: Arrested shares are capped below 1: a population where no cell divides is not a growth experiment.
_MAX_ARREST = 0.95
_G1, _S, _G2, _M = PHASES


@dataclass(frozen=True)
class Condition:
    """One named treatment: what it models, the phase it acts on, and its overrides at a strength.

    ``overrides(strength)`` returns a dict of :class:`~deepcycle_core.sim.params.SimParams` field values;
    it is only called with a finite strength > 0 (strength 0 is the control by definition).
    """

    name: str
    description: str
    phase: str  # the phase the drug acts on: "-" (none), "G1", "S" or "G2/M"
    overrides: Callable[[float], dict[str, Any]]


def _control(s: float) -> dict[str, Any]:
    return {}


def _g1_arrest(s: float) -> dict[str, Any]:
    return {"g1_extend": 1.0 * s, "g1_arrest_frac": min(0.5 * s, _MAX_ARREST), "treatment_lead_h": _LEAD_H}


def _s_slowdown(s: float) -> dict[str, Any]:
    return {"s_extend": 1.5 * s, "treatment_lead_h": _LEAD_H}


def _g2m_block(s: float) -> dict[str, Any]:
    return {
        "g2m_block_frac": min(0.5 * s, _MAX_ARREST),
        "g2m_block_in_m": 0.5,
        "g2_extend": 0.3 * s,
        "treatment_lead_h": _LEAD_H,
    }


CONDITIONS: dict[str, Condition] = {
    c.name: c
    for c in (
        Condition("control", "untreated (the strength is ignored)", "-", _control),
        Condition(
            "g1_arrest",
            "CDK4/6 inhibitor-like: G1 x(1+s) and min(0.5 s, 0.95) of cells stop for good late in G1; 24 h lead",
            _G1,
            _g1_arrest,
        ),
        Condition("s_slowdown", "replication stress: S x(1+1.5 s); 24 h lead", _S, _s_slowdown),
        Condition(
            "g2m_block",
            "CDK1 inhibitor / spindle poison-like: G2 x(1+0.3 s) and min(0.5 s, 0.95) of cells stop for good, "
            "half at the end of G2, half in metaphase; 24 h lead",
            f"{_G2}/{_M}",
            _g2m_block,
        ),
    )
}


def resolve_strength(strength: float | None) -> float:
    """``strength`` as a float (None: :data:`DEFAULT_STRENGTH`); not finite or negative raises ValueError."""
    if strength is None:
        return DEFAULT_STRENGTH
    if isinstance(strength, bool):
        raise ValueError(f"strength must be a finite number >= 0, got {strength!r}")
    try:
        s = float(strength)
    except (TypeError, ValueError):
        raise ValueError(f"strength must be a finite number >= 0, got {strength!r}") from None
    if not math.isfinite(s) or s < 0:
        raise ValueError(f"strength must be a finite number >= 0, got {strength!r}")
    return s


def condition_overrides(name: str, strength: float | None = None) -> dict[str, Any]:
    """The SimParams overrides of condition ``name`` at ``strength`` (None: :data:`DEFAULT_STRENGTH`).

    The control, and any condition at strength 0, gives ``{}``: an untreated store is the preset's own.
    An unknown name, or a strength that is not a finite number >= 0, raises ValueError.
    """
    if name not in CONDITIONS:
        raise ValueError(f"unknown condition {name!r}; conditions are {sorted(CONDITIONS)}")
    s = resolve_strength(strength)
    if name == "control" or s == 0:
        return {}
    return dict(CONDITIONS[name].overrides(s))


def describe_conditions() -> str:
    """One line per condition (name, phase, what it models): the CLI's help epilog."""
    width = max(map(len, CONDITIONS))
    return "\n".join(f"  {c.name:<{width}}  [{c.phase}] {c.description}" for c in CONDITIONS.values())
