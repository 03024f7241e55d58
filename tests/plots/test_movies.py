"""The your-own-movies chapter's figure and tables, from a tiny synthetic spot table and match report."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from deepcycle_core.movies.detect_track import MatchReport
from deepcycle_core.plots import movies as mp


def test_detections_figure_draws_tracks_daughters_and_crop_windows() -> None:
    spots = pd.DataFrame({"frame": [9, 10, 9, 10, 10], "track_id": [1, 1, 2, 2, 3], "x": [50.0, 52, 100, 101, 150],
                          "y": [50.0, 51, 100, 99, 150], "birth_frame": [-1, -1, 0, 0, 8], "in_store": [True, True, True, True, False]})
    img = np.random.default_rng(0).normal(100, 10, (200, 200))
    fig = mp.detections_figure(img, img, spots, frame=10, tail=5)
    left, right = fig.axes
    assert len(left.lines) == 3 + 2  # one path per track seen now, the detections, the new daughters
    assert left.lines[-1].get_xdata().tolist() == [150.0]  # track 3 was born 2 frames ago
    assert len(right.patches) == 2 and right.patches[0].get_width() == mp.CROP_PX  # stored cells only
    assert left.get_title().startswith("Hoechst, frame 10")
    plt.close(fig)


def test_ingest_summary_reports_the_store() -> None:
    cells = pd.DataFrame({"track_id": [1, 1, 2, 3], "full_cycle": [True, True, False, False], "class": [0, 1, 1, 3]})
    meta = {"ingest": {"n_spots": 10, "n_border_dropped": 6}, "channels": [{"name": "hoechst", "role": "nuclear"}]}
    assert mp.ingest_summary(cells, meta).splitlines() == [
        "spots detected: 10; too close to the border for a crop: 6",
        "cells in the store: 4 in 3 tracks, 1 of them full-cycle",
        "channels: [('hoechst', 'nuclear')]",
        "FUCCI classes: {0: 1, 1: 2, 3: 1}",
    ]


def test_match_table_has_each_rate_and_its_count() -> None:
    fields = MatchReport.__dataclass_fields__
    values = {"detection_recall": 0.99412, "detection_precision": 0.987, "division_recall": 1.0, "division_precision": 1.0,
              "full_cycle_intact": 0.9375, "n_truth": 100, "n_detected": 101, "n_truth_divisions": 5,
              "n_detected_divisions": 5, "n_truth_full_cycle": 16}
    rep = MatchReport(**{k: values.get(k, 0) for k in fields})
    table = mp.match_table(rep)
    assert list(table.columns) == ["value", "out of"]
    assert table.loc["detection recall", "value"] == "0.994" and table.loc["full-cycle tracks intact", "value"] == "0.938"
    assert table.loc["division recall", "out of"] == 5
