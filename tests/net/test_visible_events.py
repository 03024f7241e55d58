"""Labels only from what the movie shows: a birth or division counts when the imaged field shows it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from deepcycle_core.net.cycle_targets import cycle_targets, visible_events


def _track(tid: int, parent: int, frames: range, born: int, div: int, field: int = 0) -> list[dict]:
    return [dict(track_id=tid, parent_track_id=parent, frame=f, birth_frame=born, division_frame=div, field=field)
            for f in frames]


def _movie() -> pd.DataFrame:
    rows = []
    rows += _track(1, -1, range(0, 6), -1, 5)  # mother seen to its division at frame 5
    rows += _track(2, 1, range(6, 12), 6, -1)  # daughter seen from birth: birth visible
    rows += _track(3, 1, range(9, 12), 6, -1)  # daughter drifted in 3 frames after birth: not visible
    rows += _track(4, -1, range(0, 3), -1, 7)  # left the field at frame 2, divided (frame 7) outside it
    rows += _track(5, 4, range(8, 12), 8, -1)  # born in the field but its mother was not there: not visible
    rows += _track(6, -1, range(0, 4), -1, 3)  # divides at 3 in the field; daughters appear 1 frame late (gap)
    rows += _track(7, 6, range(5, 12), 4, -1)
    rows += _track(8, -1, range(0, 4), -1, 3, field=1)  # same track id in another field: its own lineage
    return pd.DataFrame(rows)


def test_only_events_the_field_shows_are_seen():
    cells = _movie()
    b, d = visible_events(cells)
    by_track = cells.assign(b=b, d=d).groupby("track_id")[["b", "d"]].first()
    assert by_track["b"].to_dict() == {1: False, 2: True, 3: False, 4: False, 5: False, 6: False, 7: False, 8: False}
    # 1: daughter 2 appears the next frame; 6: its daughter is first seen 2 frames later (a bridged gap);
    # 4: divided outside the field; 8: no daughter in field 1
    assert by_track["d"].to_dict() == {1: True, 2: False, 3: False, 4: False, 5: False, 6: True, 7: False, 8: False}
    # with no gap allowed the late daughter no longer shows track 6's division
    _, d0 = visible_events(cells, max_gap=0)
    assert not d0[cells["track_id"].to_numpy() == 6].any()


def test_targets_rest_only_on_visible_events():
    cells = _movie()
    seen = cycle_targets(cells, 0.5, 10.0)
    told = cycle_targets(cells, 0.5, 10.0, visible_only=False)
    tid = cells["track_id"].to_numpy()
    # the truth-told table labels track 3 (born outside the view) and 4 (divided outside); the movie's rule does not
    assert np.isfinite(told.position[tid == 3]).all() and np.isnan(seen.position[tid == 3]).all()
    assert np.isfinite(told.position[tid == 4]).any() and np.isnan(seen.position[tid == 4]).all()
    # what the field shows keeps its label, unchanged
    keep = np.isin(tid, [1, 2])
    np.testing.assert_array_equal(seen.position[keep], told.position[keep])
    assert seen.counts()["birth"] == 6 and seen.counts()["division"] == 6 + 4


def test_visibility_needs_the_track_columns():
    cells = pd.DataFrame({"frame": [0], "birth_frame": [0], "division_frame": [-1]})
    with pytest.raises(ValueError, match="track_id"):
        cycle_targets(cells, 0.5, 10.0)
