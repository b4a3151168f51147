"""Chapter 10's figures draw, return a Figure, and return None when there is nothing to draw."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import scanbook as sb  # noqa: E402

viz = sb.viz.distributed


def test_draw_devices():
    fig = viz.draw_devices(p=3, L=4)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert "device 2" in texts and "$(P_2, U_2)$" in texts and "$C_{1}$" in texts
    assert "$u_{11}$" in texts and "$h_{0}$" in texts
    plt.close(fig)
    assert viz.draw_devices(p=0) is None


def test_plot_phases():
    rng = np.random.default_rng(0)
    a, b = rng.uniform(0.5, 1, 20), rng.normal(size=20)
    h = sb.linear_recurrence(a, b, backend="numpy")
    fig = viz.plot_phases(h * 0.5, h, 4, carries=np.zeros(4))
    assert len(fig.axes[0].lines) >= 5
    plt.close(fig)
    assert viz.plot_phases([], [], 4) is None
    assert viz.plot_phases([1.0, 2.0], [1.0], 2) is None


def test_plot_bytes():
    Ts = [256, 1024, 4096]
    model = [sb.distributed.communication_bytes(T, 16, 8) for T in Ts]
    fig = viz.plot_bytes(
        Ts,
        [m["sharded_scan"] for m in model],
        [m["gather_all"] for m in model],
        measured=([1024], [896], [114688]),
        p=8,
    )
    assert fig.axes[0].get_xscale() == "log" and len(fig.axes[0].lines) == 4
    plt.close(fig)
    assert viz.plot_bytes([], [], []) is None
