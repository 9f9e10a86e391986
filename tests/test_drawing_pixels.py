"""What the PNGs show, read back pixel by pixel: one scale across molecules, a colour bar,
neutral flat weights."""

import io

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from rdkit import Chem

from qsarmil.explain import colorbar_box, draw_grid
from qsarmil.explanation import Explanation

# butylbenzene: hydrocarbons only, so every coloured pixel is a highlight, never atom text
SMILES = "CCCCc1ccccc1"
CHAIN, RING = (0, 1, 2, 3), (4, 5, 6, 7, 8, 9)
PANEL = (300, 250)


def _explanation(values, signed=True, atoms=(CHAIN, RING), baseline=0.5):
    frame = pd.DataFrame({"instance": range(len(atoms)), "atoms": list(atoms),
                          "smiles": [""] * len(atoms)})
    if signed:
        frame["weight"] = np.abs(values) / np.abs(values).sum()
        frame["contribution"] = values
    else:
        frame["weight"] = values
    prediction = ((baseline or 0.0) + sum(values)) if signed else 1.0
    return Explanation(smiles=SMILES, prediction=float(prediction), status="ok", error="",
                       mol=Chem.MolFromSmiles(SMILES), instances=frame,
                       baseline=baseline if signed else None, target_name="logS",
                       units="log mol/L")


def _rgb(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=float)


def _saturation(rgb: np.ndarray) -> np.ndarray:
    return rgb.max(axis=-1) - rgb.min(axis=-1)


def _strongest_blue(rgb: np.ndarray) -> float:
    """How blue the most strongly blue highlight of a region is (99th percentile of B - R)."""
    return float(np.percentile(rgb[..., 2] - rgb[..., 0], 99))


def test_small_contribution_is_paler_than_large_one_across_a_grid():
    large, small = _explanation([0.0, -2.0]), _explanation([0.0, -0.2])
    rgb = _rgb(draw_grid([large, small], names=["large", "small"], fmt="png", panel=PANEL))
    left, right = rgb[: PANEL[1], : PANEL[0]], rgb[: PANEL[1], PANEL[0]:]
    assert _strongest_blue(left) > 100           # -2.0: full blue
    assert 3 < _strongest_blue(right) < 40       # -0.2: a tenth of it, pale but there
    # drawn alone, each molecule would be scaled to its own maximum; a given vmax is obeyed
    alone = _rgb(small.draw(fmt="png", size=PANEL))
    assert _strongest_blue(alone[: PANEL[1] - 60]) > 100
    halved = _rgb(draw_grid([large, small], fmt="png", panel=PANEL, vmax=4.0))
    assert _strongest_blue(halved[: PANEL[1], : PANEL[0]]) < _strongest_blue(left) - 30


def test_equal_values_get_equal_colours_across_molecules():
    a, b = _explanation([0.0, 1.5]), _explanation([-3.0, 1.5])
    rgb = _rgb(draw_grid([a, b], fmt="png", panel=PANEL))
    red = [np.percentile(rgb[: PANEL[1], sl, 0] - rgb[: PANEL[1], sl, 2], 99)
           for sl in (slice(0, PANEL[0]), slice(PANEL[0], None))]
    assert abs(red[0] - red[1]) < 10 and red[0] > 40  # +1.5 on a scale to 3.0: half red


@pytest.mark.parametrize("baseline", [None, 0.5])
def test_colour_bar_runs_blue_white_red_under_the_grid(baseline):
    explanations = [_explanation([0.0, -2.0], baseline=baseline),
                    _explanation([1.0, 0.0], baseline=baseline)]
    rgb = _rgb(draw_grid(explanations, fmt="png", panel=PANEL))
    height, width = rgb.shape[:2]
    assert (width, height) > (2 * PANEL[0], PANEL[1])
    x0, y0, x1, y1 = colorbar_box(width, height, note=baseline is not None)
    row = rgb[(y0 + y1) // 2, x0 + 3 : x1 - 3]
    left, middle, right = row[2], row[len(row) // 2], row[-3]
    assert left[2] - left[0] > 100 and right[0] - right[2] > 100  # full blue ... full red
    assert _saturation(middle) < 20 and middle.min() > 230        # white at 0
    assert _saturation(rgb[y0 - 3]).max() < 20                     # the bar starts at y0


def test_weight_view_uses_one_purple_hue_with_a_bar():
    e = _explanation(np.array([0.1, 0.9]), signed=False)
    size = (400, 320)
    rgb = _rgb(e.draw(fmt="png", size=size))
    x0, y0, x1, y1 = colorbar_box(*size)
    row = rgb[(y0 + y1) // 2, x0 + 3 : x1 - 3]
    assert _saturation(row[2]) < 20 and row[2].min() > 230   # 0: white
    end = row[-3]
    assert end[2] > end[1] + 60 and end[0] > end[1] + 30    # full weight: purple, not red
    highlight = rgb[: y0 - 10]
    reds = (highlight[..., 0] - highlight[..., 2]) > 60
    assert not reds.any()                                    # no red anywhere in a weight view
    assert (_saturation(highlight) > 80).sum() > 200         # the 0.9 ring is coloured


def test_flat_weights_draw_neutral_and_say_so():
    atoms = ((0, 1), (2, 3), (4, 5, 6), (7, 8, 9))
    flat = _explanation(np.array([0.26, 0.24, 0.25, 0.25]), signed=False, atoms=atoms)
    peaked = _explanation(np.array([0.70, 0.10, 0.10, 0.10]), signed=False, atoms=atoms)
    assert flat.weights_flat and not peaked.weights_flat
    assert "no instance stands out" in flat.caption()
    size = (400, 320)
    _, y0, _, _ = colorbar_box(*size)
    molecule_area = _rgb(flat.draw(fmt="png", size=size))[: y0 - 10]
    assert _saturation(molecule_area).max() < 30
    assert (_saturation(_rgb(peaked.draw(fmt="png", size=size))[: y0 - 10]) > 80).sum() > 100
    grid = _rgb(draw_grid([flat, peaked], fmt="png", panel=PANEL))
    assert _saturation(grid[: PANEL[1], : PANEL[0]]).max() < 30
    assert (_saturation(grid[: PANEL[1], PANEL[0]:]) > 80).sum() > 100
    assert "no instance stands out" in draw_grid([flat], fmt="svg")


def test_grid_legends_name_ids_and_failed_rows():
    failed = Explanation(smiles="C1CC", prediction=None, status="failed",
                         error="unclosed ring", mol=None, instances=None)
    svg = draw_grid([_explanation([0.0, -2.0]), failed], ids=["M1", "M2"],
                    names=["butylbenzene", "broken"])
    assert "M1 butylbenzene: -1.50 = 0.50 + (-2.00)" in svg
    assert "M2 broken: failed (unclosed ring)" in svg
    assert "legend: prediction = baseline + (sum of contributions)" in svg
    assert "contribution to logS (log mol/L)" in svg
    assert _rgb(draw_grid([failed, failed], fmt="png")).shape[1] == 2 * PANEL[0]


def _dark_columns(region: np.ndarray) -> np.ndarray:
    """Columns of a region holding dark (text) pixels."""
    return np.flatnonzero((region.max(axis=-1) < 160).any(axis=0))


def test_failed_panel_shows_its_message_and_legends_keep_their_size():
    failed = Explanation(smiles="C1CC", prediction=None, status="failed",
                         error="SMILES Parse Error: unclosed ring for input: 'C1CC'", mol=None,
                         instances=None)
    short, far = _explanation([0.0, -2.0]), _explanation([0.0, -2.0])
    far.domain = {"max_similarity": 0.12, "unseen_fraction": 0.5, "in_domain": False,
                  "prediction_in_range": False}
    rgb = _rgb(draw_grid([short, failed, far], ids=["M1", "M2", "M3"], names=["a"] * 3,
                         fmt="png", panel=PANEL))
    assert rgb.shape[1] == 3 * PANEL[0]  # one panel per input, the failed one included
    message = rgb[: PANEL[1] - 50, PANEL[0] : 2 * PANEL[0]]
    assert len(_dark_columns(message)) > 100  # its error is written where the molecule would be
    # The same first legend line ("M1 a: -1.50 = ..." / "M3 a: ..."), once with a one-line
    # legend and once above three more lines on the domain: drawn equally wide (no shrinking).
    first_line = [rgb[PANEL[1] - 40 : PANEL[1] - 22, x : x + PANEL[0]] for x in (0, 2 * PANEL[0])]
    widths = [np.ptp(_dark_columns(region)) for region in first_line]
    assert widths[0] > 150 and abs(widths[0] - widths[1]) <= 3
    assert rgb.shape[0] > PANEL[1] + 60  # the panels grew to hold the long legend


def test_stripped_salts_are_named_in_legends():
    salt = _explanation([0.0, -2.0])
    salt.stripped = "Na+"
    assert "stripped: Na+" in salt.caption("M1") and "stripped" not in _explanation([1.0, 0.0]).caption()
    assert "stripped: Na+" in draw_grid([salt, _explanation([0.0, 1.0])])
    assert "stripped: Na+" in salt.draw()
