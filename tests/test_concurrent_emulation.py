"""The CUDA C kernels on a *concurrent* emulated GPU (``tests/emulation/cuda_emu.h``).

The blocks of a launch run at the same time on CPU threads, start in a random order, stall at
random after taking a tile and wait random short times before publishing a flag, so the
decoupled look-back of ``single_pass.cu`` meets predecessors that have not published anything
yet (it waits), predecessors that have published only their aggregate (it combines them), and,
with the inclusive states held back, whole windows of predecessors none of which is done (it
moves to the next window). Every kernel, both dtypes, both directions and the fused gradient
are held against the float64 loop for C in {1, 2, 3, 5, 17, 32, 33, 70} and T that are not
multiples of the tile, over several seeds; the emulation's counters show that those paths ran.

Every case runs with its own seed (inputs and schedule); ``SCANBOOK_EMU_SEEDS`` repeats the whole
set with that many seeds (1 by default, to keep ``make test`` short; ``make gpu-emulated`` uses
more).
Small tiles (64 threads, 4 floats or 2 doubles a thread) keep the launches cheap; the host code
with the book's real sizes runs on the same emulation in ``tests/test_fake_gpu.py``.
"""

from __future__ import annotations

import os
import shutil

import fake_gpu
import numpy as np
import pytest
from scanbook.kernels import cupy_raw as cr

pytestmark = pytest.mark.skipif(shutil.which("g++") is None, reason="needs a C++20 compiler")

CHANNELS = (1, 2, 3, 5, 17, 32, 33, 70)
BLOCK = 64
ITEMS = {"float": 4, "double": 2}
TOL = {"float": 2e-4, "double": 1e-12}
N_SEEDS = int(os.environ.get("SCANBOOK_EMU_SEEDS", "1"))


@pytest.fixture(scope="module")
def runners():
    return {dtype: fake_gpu.build_runner(dtype, items, BLOCK) for dtype, items in ITEMS.items()}


def tile(C: int, dtype: str) -> int:
    """Time steps of one single-pass tile in the runner's build."""
    return BLOCK // cr.channel_group(C) * ITEMS[dtype]


def cases_for(dtype: str, seed: int):
    out = []  # (kernel, T, C, reverse, with_h0, seed, p1, p2)
    for i, C in enumerate(CHANNELS):
        L = tile(C, dtype)
        n_time = max(3, 10 // -(-C // cr.channel_group(C)))  # about ten tiles a launch
        T = n_time * L + 1 + (seed + i) % (L - 1 if L > 2 else 1)  # never a multiple of L
        for reverse in (0, 1):
            s = 1000 * seed + 10 * i + reverse
            cg = cr.channel_group(C)
            out += [
                ("serial", T, C, reverse, 1, s, 0, 0),
                ("three_phase", T, C, reverse, reverse, s, 5, 2),
                # a and b 0-3 elements past 16-byte alignment (a sliced input), h 0-1
                ("single_pass", T, C, reverse, 1 - reverse, s, cg, (seed + i + reverse) % 4),
                ("single_pass_vjp", T, C, reverse, 1, s, cg, 0),
            ]
    return out


@pytest.mark.parametrize("dtype", ["float", "double"])
def test_every_kernel_matches_the_loop_under_concurrency(runners, dtype):
    cases = [c for seed in range(N_SEEDS) for c in cases_for(dtype, seed)]
    assert all(c[1] % tile(c[2], dtype) for c in cases)  # T is never a whole number of tiles
    rows = fake_gpu.run_cases(runners[dtype], cases, resident=8, jitter_us=300, stall_us=3000)
    bad = [
        (c, r["error"]) for c, r in zip(cases, rows, strict=True) if not r["error"] <= TOL[dtype]
    ]
    assert not bad, bad
    # the look-back met predecessors in every state: not yet published (it waited), aggregate
    # only (it combined), inclusive; and blocks really ran side by side
    scans = [r for c, r in zip(cases, rows, strict=True) if c[0].startswith("single_pass")]
    total = {k: sum(r[k] for r in scans) for k in ("flag0", "flag1", "flag2", "waits")}
    assert total["waits"] > 0 and total["flag0"] > 0, total
    assert total["flag1"] > 0 and total["flag2"] > 0, total
    assert max(r["max_resident"] for r in rows) >= 4


@pytest.mark.parametrize("dtype", ["float", "double"])
def test_three_phase_lane_groups_under_concurrency(runners, dtype):
    # below 32 channels the lanes of a warp split its slice into 32 / CG sub-slices: several
    # warps a block, sub-slices of two batches and a few steps (both loops of the batching), or
    # of a step or none (more lane groups than steps), against the float64 loop
    steps = cr.three_phase_steps(np.float32 if dtype == "float" else np.float64)
    cases = []
    for i, C in enumerate((1, 2, 3, 6)):
        groups = 32 // cr.channel_group(C)
        for reverse in (0, 1):
            for n_blocks, warps, sub in ((3, 4, 2 * steps + 3), (2, 32, 1), (4, 2, 0.5)):
                T = int(n_blocks * warps * groups * sub) + 1 + i
                cases.append(("three_phase", T, C, reverse, 1 - reverse, 20 * i + reverse,
                              n_blocks, warps))  # fmt: skip
    rows = fake_gpu.run_cases(runners[dtype], cases, resident=4, jitter_us=300)
    bad = [
        (c, r["error"]) for c, r in zip(cases, rows, strict=True) if not r["error"] <= TOL[dtype]
    ]
    assert not bad, bad


def test_lookback_walks_past_a_window(runners):
    # the window narrowed to 32 predecessors (one flag a lane, SP_POLLS=1) and 48 blocks
    # resident, each holding back its inclusive state: a tile finds 32 predecessors with
    # aggregates only and must look further back
    exe = fake_gpu.build_runner("float", ITEMS["float"], BLOCK, ("SP_POLLS=1",))
    cases = []
    for k, C in enumerate((1, 5)):  # one channel group: 48 resident tiles in one sequence
        T = 60 * tile(C, "float") + 5
        cases += [("single_pass", T, C, k, 1, 7 + k, cr.channel_group(C), 0)]
        cases += [("single_pass_vjp", T, C, 1 - k, 1, 8 + k, cr.channel_group(C), 0)]
    rows = fake_gpu.run_cases(exe, cases, resident=48, jitter_us=100, hold_us=100_000)
    for c, r in zip(cases, rows, strict=True):
        assert r["error"] <= TOL["float"], (c, r)
        groups = -(-c[2] // cr.channel_group(c[2]))
        assert r["max_distance"] > 32 * groups, (c, r)  # a second window was polled
        assert r["max_resident"] > 32, (c, r)


def test_shared_memory_is_per_block():
    src = "__shared__ T s_wa[SP_WARPS][CG];\n    __shared__ unsigned int s_tile;"
    out = fake_gpu.emulate_source(src)
    assert "__shared__" not in out
    assert "auto& s_wa = emu_shared<T[SP_WARPS][CG], __COUNTER__>();" in out
    assert "auto& s_tile = emu_shared<unsigned int, __COUNTER__>();" in out
    # every declaration in the book's kernels is rewritten (the header refuses any other)
    for name, text in cr.sources().items():
        assert "__shared__" not in fake_gpu.emulate_source(text), name


def test_lookback_fetches_a_window_in_several_passes():
    # the fetch narrowed to 8 bytes of A and of B a lane (SP_LB_BYTES=8: K = 2 predecessors a
    # lane group at CG = 32, 4 a pass of 2 warps) and 48 tiles resident, each holding back its
    # inclusive state: a tile finds the nearest state many predecessors back and fetches the
    # values in several passes
    exe = fake_gpu.build_runner("float", ITEMS["float"], BLOCK, ("SP_LB_BYTES=8",))
    cases = []
    for k, C in enumerate((32, 17, 64, 4)):
        groups = -(-C // cr.channel_group(C))
        T = 60 // groups * tile(C, "float") + 3
        cases += [("single_pass", T, C, k % 2, 1, 20 + k, cr.channel_group(C), 0)]
        cases += [("single_pass_vjp", T, C, 1 - k % 2, 1, 30 + k, cr.channel_group(C), 0)]
    rows = fake_gpu.run_cases(exe, cases, resident=48, jitter_us=100, hold_us=100_000)
    for c, r in zip(cases, rows, strict=True):
        assert r["error"] <= TOL["float"], (c, r)
        groups = -(-c[2] // cr.channel_group(c[2]))
        assert r["max_distance"] > 4 * groups, (c, r)  # past one pass of 4 predecessors
