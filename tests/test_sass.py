"""Chapter 4's kernels in machine code: NVRTC cubins for sm_90 (an H200), disassembled on the
CPU with ``cuobjdump`` (``pip install nvidia-cuda-cuobjdump``). What the chapter claims about
the code the GPU runs is checked here: no local memory, 16-byte vector loads on the aligned
path, the serial kernel's loads issued ahead of its arithmetic, release/acquire flags and no
full fence (``MEMBAR.SC``) in the look-back, registers that let two blocks share an SM."""

import re

import numpy as np
import pytest
from scanbook.kernels import cupy_raw as cr

pytestmark = pytest.mark.skipif(
    cr._cuobjdump() is None, reason="cuobjdump is not installed (pip install nvidia-cuda-cuobjdump)"
)


@pytest.fixture(scope="module")
def machine_code():
    return {name: cr.sass(name, "sm_90") for name in cr.KERNEL_FILES}


def test_every_kernel_is_there_without_local_memory(machine_code):
    names = {k for code in machine_code.values() for k in code}
    assert {"serial_f32", "single_pass_f32_cg1", "single_pass_vjp_f64_cg32"} <= names
    assert len(names) == 4 + 6 + 24
    for code in machine_code.values():
        for kernel, k in code.items():
            assert k["local"] == 0, kernel  # register arrays indexed at compile time only
            assert not any(i.startswith(("LDL", "STL")) for i in k["sass"]), kernel


def test_registers_leave_room_for_two_blocks_an_sm(machine_code):
    # 65,536 registers an SM: at most 128 a thread for two blocks of 256 threads
    for name in ("serial.cu", "single_pass.cu"):
        for kernel, k in machine_code[name].items():
            assert 16 <= k["registers"] <= 128, (kernel, k["registers"])


def test_vector_loads_and_stores_on_the_aligned_path(machine_code):
    sp = machine_code["single_pass.cu"]
    for kernel in ("single_pass_f32_cg1", "single_pass_f64_cg1", "single_pass_vjp_f32_cg1"):
        code = sp[kernel]["sass"]
        assert sum(i.startswith("LDG.E.128") or ".128" in i.split()[0] for i in code) >= 4, kernel
        assert any(i.startswith("STG.E.128") for i in code), kernel
    # up to 16 channels the tile goes through shared memory: 16-byte loads and stores of the
    # contiguous run of rows (aligned or not), not single words C apart
    for kind in ("", "_vjp"):  # the forward scan and the fused gradient
        for dtype in ("f32", "f64"):
            for cg in (2, 4, 8, 16):
                code = sp[f"single_pass{kind}_{dtype}_cg{cg}"]["sass"]
                assert any(i.startswith("LDG.E.128") for i in code), (kind, dtype, cg)
                assert any(i.startswith("STG.E.128") for i in code), (kind, dtype, cg)
                assert any(i.startswith("LDS") for i in code), (kind, dtype, cg)
    for kernel in ("stream_add_f32", "stream_add_f64"):
        code = machine_code["serial.cu"][kernel]["sass"]
        assert any(re.match(r"LDG\.E\.(CONSTANT\.)?128|LDG\.E\.128", i) for i in code), kernel


def longest_load_run(code, load="LDG", use=("FFMA", "DFMA")):
    """The most global loads issued in a row before the next multiply-add."""
    best = run = 0
    for i in code:
        full = i.split()[1] if i.startswith("@") else i.split()[0]
        op = full.split(".")[0]
        if load in (op, full):  # "LDG": any global load; "LDG.E.STRONG.GPU": that one
            run += 1
            best = max(best, run)
        elif op in use:
            run = 0
    return best


def test_serial_loads_a_batch_before_computing(machine_code):
    # the loop body: 2 * STEPS loads (a and b) out before the first multiply-add that needs one
    for kernel, dtype in (("serial_f32", "float32"), ("serial_f64", "float64")):
        code = machine_code["serial.cu"][kernel]["sass"]
        assert longest_load_run(code) >= 2 * cr.serial_steps(dtype), kernel


def test_three_phase_loads_a_batch_before_composing(machine_code):
    # each lane's batch of a and b (three_phase_steps each) goes out before the multiply-adds
    # that compose it, in both passes over the input; below 32 channels the lane groups of a
    # warp combine their maps with shuffles
    code = machine_code["three_phase.cu"]
    for dtype, sfx in (("float32", "f32"), ("float64", "f64")):
        for phase in ("reduce", "downsweep"):
            sass = code[f"three_phase_{phase}_{sfx}"]["sass"]
            assert longest_load_run(sass) >= 2 * cr.three_phase_steps(dtype), (phase, sfx)
        assert any("SHFL.UP" in i for i in code[f"three_phase_reduce_{sfx}"]["sass"]), sfx
        # phase 2: eight block maps (P and R) loaded before the first is stored over
        assert longest_load_run(code[f"three_phase_block_scan_{sfx}"]["sass"]) >= 16, sfx


def test_lookback_publishes_with_release_and_polls_with_acquire(machine_code):
    for kernel, k in machine_code["single_pass.cu"].items():
        code = k["sass"]
        ops = [i.split()[1] if i.startswith("@") else i.split()[0] for i in code]
        assert not any(op.startswith("MEMBAR.SC") for op in ops), kernel  # no __threadfence
        # st.release.gpu: a MEMBAR.ALL.GPU then a strong store, twice (flag 1, flag 2)
        releases = [n for n, op in enumerate(ops) if op == "MEMBAR.ALL.GPU"]
        assert len(releases) >= 2, kernel
        assert all(any(o.startswith("STG.E.STRONG.GPU") for o in ops[n : n + 4]) for n in releases)
        # ld.acquire.gpu: a strong load then an L1 invalidation; NANOSLEEP while waiting
        assert any(
            op.startswith("LDG.E.STRONG.GPU") and ops[n + 1].startswith("CCTL.IVALL")
            for n, op in enumerate(ops[:-1])
        ), kernel
        assert "NANOSLEEP" in ops, kernel


def test_gradient_loads_h_before_the_lookback(machine_code):
    # a, g and the forward states hf (ITEMS each, float4 loads) are all out before the tile
    # publishes its aggregate: the third DRAM round trip overlaps the scan and the look-back
    for kernel, items in (("single_pass_vjp_f32_cg1", 16), ("single_pass_vjp_f64_cg1", 8)):
        ops = [i.split()[1] if i.startswith("@") else i.split()[0]
               for i in machine_code["single_pass.cu"][kernel]["sass"]]  # fmt: skip
        first_release = ops.index("MEMBAR.ALL.GPU")
        vector_loads = sum(op.startswith("LDG.E.128") for op in ops[:first_release])
        per_array = items * (4 if "f32" in kernel else 8) // 16
        assert vector_loads >= 3 * per_array, (kernel, vector_loads)


def test_lookback_fetches_a_lane_groups_predecessors_before_composing(machine_code):
    # each lane loads the aggregates (A and B) of its K predecessors, all of them out before the
    # first multiply that composes them: one round trip to L2 for the pass, not one each
    strong = {"f32": "LDG.E.STRONG.GPU", "f64": "LDG.E.64.STRONG.GPU"}  # __ldcg
    for dtype, sfx in ((np.float32, "f32"), (np.float64, "f64")):
        for cg in (8, 16, 32):
            k = cr.lookback_fetch(cg, dtype)
            for kind in ("single_pass", "single_pass_vjp"):
                kernel = f"{kind}_{sfx}_cg{cg}"
                code = machine_code["single_pass.cu"][kernel]["sass"]
                run = longest_load_run(code, load=strong[sfx],
                                       use=("FFMA", "DFMA", "FMUL", "DMUL", "BAR"))  # fmt: skip
                assert run >= 2 * k, (kernel, run, k)


def test_lookback_polls_one_flag_a_lane_between_barriers(machine_code):
    # an acquire load is a strong load and an L1 invalidation that waits for it, so a lane
    # with two of them in a row waits two round trips: the kernel spreads the window's 128
    # flags over 4 warps, one acquire load a lane, a barrier between one poll and the next
    for kernel, k in machine_code["single_pass.cu"].items():
        ops = [i.split()[1] if i.startswith("@") else i.split()[0] for i in k["sass"]]
        acquires = [
            n
            for n, op in enumerate(ops[:-1])
            if op.startswith("LDG.E.STRONG.GPU") and ops[n + 1].startswith("CCTL.IVALL")
        ]
        assert acquires, kernel
        for n0, n1 in zip(acquires, acquires[1:], strict=False):
            assert any(op.startswith("BAR.SYNC") for op in ops[n0:n1]), (kernel, n0, n1)


def test_lookback_fetches_only_after_the_poll_and_its_barrier(machine_code):
    # the values (__ldcg: strong loads without the acquire's L1 invalidation) are read by warps
    # that did not poll: only a barrier after the polling warps' acquire loads orders them
    for kernel, k in machine_code["single_pass.cu"].items():
        ops = [i.split()[1] if i.startswith("@") else i.split()[0] for i in k["sass"]]
        strong = [n for n, op in enumerate(ops) if op.startswith("LDG.E") and "STRONG.GPU" in op]
        acquires = [n for n in strong if ops[n + 1].startswith("CCTL.IVALL")]
        fetches = [n for n in strong if n not in acquires]
        barrier = next(n for n in range(acquires[-1], len(ops)) if ops[n].startswith("BAR.SYNC"))
        assert fetches and min(fetches) > barrier, (kernel, acquires, barrier, min(fetches))
