"""scanbook.viz.lti (chapter 8): every figure draws from data and returns a Figure, or None."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import scanbook as sb  # noqa: E402

vlti = sb.viz.lti


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def test_figures_draw():
    lti = sb.lti
    Ad, Bd = lti.discretize(*lti.lmu(6, 20.0))
    H = lti.impulse_response(Ad, Bd, 50)
    fig = vlti.plot_legendre_basis(4)
    assert len(fig.axes[0].lines) == 4 + 1  # four polynomials and the zero line
    fig = vlti.plot_impulse_response(H, 20.0, rows=(0, 2, 9))  # row 9 > order: skipped
    assert len(fig.axes[0].lines) == 2 * 2 + 1
    t = np.arange(50)
    fig = vlti.plot_delay(t, np.sin(t / 5), {"r = 0.5": (np.sin(t / 5 - 1), np.sin(t / 5 - 1))})
    assert len(fig.axes[0].lines) == 3
    lam = lti.diagonalize(Ad, Bd)[0]
    fig = vlti.plot_eigenvalues({"q = 6": lam})
    offsets = fig.axes[0].collections[0].get_offsets()
    assert np.allclose(np.sort(offsets[:, 0]), np.sort(lam.real))
    fig = vlti.plot_costs([64, 128, 256], {"loop": [1e-3, 2e-3, None], "fft": [1e-3, 1e-3, 2e-3]})
    assert fig.axes[0].get_yscale() == "log"
    fig = vlti.plot_conditioning([2, 4], [2.0, 20.0], {"diagonal, float64": [1e-15, 1e-14]})
    assert len(fig.axes) == 2


def test_nothing_to_draw_gives_none():
    assert vlti.plot_impulse_response(np.zeros((0, 3)), 10.0) is None
    assert vlti.plot_costs([], {}) is None
