"""Chapter 8's graders: the Legendre Memory Unit as a linear time-invariant recurrence.

Defined in chapter 8 (Linear time-invariant recurrences: the Legendre Memory Unit).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ._grading import Case, Feedback, grade, make_rng, random_values, same

__all__ = [
    "check_lmu_matrices",
    "check_zoh",
    "check_lti_fft",
    "check_legendre_readout",
]


def _flat_pair(got, expected, case: Case) -> str | None:
    """Compare ``(A, B)`` answers, accepting ``B`` of shape ``(q,)`` or ``(q, 1)``."""
    from ._grading import compare

    if not isinstance(got, tuple | list) or len(got) != 2:
        return f"expected a pair (A, B), got {type(got).__name__}"
    A, B = got
    Bx = np.asarray(B) if B is not None and np.ndim(B) == 2 else B
    if isinstance(Bx, np.ndarray) and Bx.ndim == 2 and Bx.shape[1] == 1:
        Bx = Bx[:, 0]
    why = compare(A, expected[0], rtol=case.rtol, atol=case.atol)
    if why is not None:
        return f"the matrix (item 0): {why}"
    why = compare(Bx, expected[1], rtol=case.rtol, atol=case.atol)
    if why is not None:
        return f"the input vector (item 1): {why}"
    return None


def check_lmu_matrices(
    fn: Callable, *, raise_on_fail: bool = False, quiet: bool = False
) -> Feedback:
    """Grade ``fn(order, theta) -> (A, B)``: the continuous Legendre delay system.

    ``A[i, j] = (2i+1)/theta * (-1 if i < j else (-1)**(i-j+1))`` and
    ``B[i] = (2i+1) (-1)**i / theta`` for ``i, j = 0 .. order-1``; ``B`` may have shape
    ``(q,)`` or ``(q, 1)``. Compared with :func:`scanbook.lti.lmu`.

    Chapter 8, exercise 1.
    """
    from .. import lti

    cases = []
    for q, theta in ((1, 1.0), (2, 1.0), (3, 2.5), (5, 0.7), (8, 10.0), (12, 33.0)):
        cases.append(Case(f"order={q}, theta={theta}", (q, theta), lti.lmu(q, theta)))

    def diagnose(case: Case, got) -> str | None:
        q, theta = case.args
        if not isinstance(got, tuple | list) or len(got) != 2 or q < 2:
            return None
        A, B = case.expected
        if same(got[0], A * theta):
            return "divide by theta: the window length scales time, dm/dt = (A m + B u) / theta"
        if same(got[0], A.T):
            return "A is transposed: the -1 entries sit ABOVE the diagonal (i < j: row < column)"
        if same(got[0], -A) or same(got[0], np.abs(A) * np.sign(A.T)):
            return "check the signs: the diagonal is -(2i+1)/theta and i >= j gives (-1)**(i-j+1)"
        return None

    return grade(
        "check_lmu_matrices",
        fn,
        cases,
        hint="build index grids i = arange(q)[:, None], j = arange(q)[None, :] and use np.where",
        compare=_flat_pair,
        diagnose=diagnose,
        forbid=("scanbook.lti.lmu",),
        raise_on_fail=raise_on_fail,
        quiet=quiet,
    )


def check_zoh(fn: Callable, *, raise_on_fail: bool = False, quiet: bool = False) -> Feedback:
    """Grade ``fn(A, B, dt) -> (Ad, Bd)``: zero-order-hold discretisation.

    ``Ad = expm(A dt)`` and ``Bd = integral_0^dt expm(A s) ds @ B``, the exact step of
    ``dm/dt = A m + B u`` with ``u`` held constant. ``B`` has shape ``(q,)``. Cases: LMU systems
    and random stable matrices, including a singular ``A``. Compared with
    :func:`scanbook.lti.discretize` (``scipy.linalg.expm`` is allowed).

    Chapter 8, exercise 2.
    """
    from .. import lti

    rng = make_rng(81)
    systems = [
        ("LMU order 1, theta 2, dt 1", *lti.lmu(1, 2.0), 1.0),
        ("LMU order 4, theta 10, dt 1", *lti.lmu(4, 10.0), 1.0),
        ("LMU order 6, theta 5, dt 0.3", *lti.lmu(6, 5.0), 0.3),
    ]
    M = random_values(rng, (3, 3), low=0.1, high=1.0)
    systems.append(("random A - 2I, dt 0.5", M - 2 * np.eye(3), random_values(rng, 3), 0.5))
    singular = np.array([[0.0, 1.0], [0.0, -1.0]])  # an integrator: A has no inverse
    systems.append(("singular A, dt 2", singular, random_values(rng, 2), 2.0))
    cases = [
        Case(label, (A, B, dt), lti.discretize(A, B, dt=dt), show={"A": A, "B": B, "dt": dt})
        for label, A, B, dt in systems
    ]

    def diagnose(case: Case, got) -> str | None:
        A, B, dt = case.args
        if not isinstance(got, tuple | list) or len(got) != 2:
            return None
        q = len(A)
        if same(got[0], np.eye(q) + A * dt):
            return "that is Euler's step, I + A dt; the exact step is the matrix exponential"
        if same(got[0], case.expected[0]) and same(got[1], B * dt):
            return (
                "Bd is not B dt: the input acts during the whole step and decays meanwhile, "
                "Bd = (integral of expm(A s) over [0, dt]) B"
            )
        return None

    return grade(
        "check_zoh",
        fn,
        cases,
        hint="exponentiate the block matrix [[A, B], [0, 0]] * dt: its top row is [Ad, Bd]",
        compare=_flat_pair,
        diagnose=diagnose,
        forbid=("scanbook.lti.discretize",),
        raise_on_fail=raise_on_fail,
        quiet=quiet,
    )


def check_lti_fft(fn: Callable, *, raise_on_fail: bool = False, quiet: bool = False) -> Feedback:
    """Grade ``fn(Ad, Bd, u) -> m``: the LTI recurrence as an FFT convolution.

    ``u`` has shape ``(T,)``; the answer has shape ``(T, q)`` and equals the loop
    ``m[t] = Ad @ m[t-1] + Bd * u[t]``, ``m[-1] = 0``, i.e. ``m[t] = sum_k H[k] u[t-k]`` with
    ``H[k] = Ad^k Bd``. Compared with :func:`scanbook.lti.apply` (``method="loop"``). Lengths
    include 1 and non-powers of two; the grader cannot see how you compute it, so the loop
    passes too, but the exercise asks for ``np.fft``.

    Chapter 8, exercise 3.
    """
    from .. import lti

    rng = make_rng(83)
    cases = []
    for T, q, theta in ((1, 3, 4.0), (2, 2, 3.0), (7, 4, 5.0), (64, 5, 20.0), (257, 6, 40.0)):
        Ad, Bd = lti.discretize(*lti.lmu(q, theta))
        u = random_values(rng, T)
        want = lti.apply(Ad, Bd, u, method="loop")
        cases.append(Case(f"T={T}, q={q}", (Ad, Bd, u), want, show={"Ad": Ad, "Bd": Bd, "u": u}))

    def diagnose(case: Case, got) -> str | None:
        Ad, Bd, u = case.args
        T = len(u)
        if same(got, case.expected @ Ad.T):
            return "the impulse response starts at H[0] = Bd (the input of step t counts at t)"
        if T < 2:
            return None
        H = lti.impulse_response(Ad, Bd, T)
        circular = np.fft.irfft(np.fft.rfft(u, T)[:, None] * np.fft.rfft(H, T, axis=0), T, axis=0)
        if same(got, circular):
            return (
                "the FFT convolution is circular: pad u and H with zeros to length >= 2T - 1, "
                "or the end of the sequence wraps around onto its start"
            )
        return None

    return grade(
        "check_lti_fft",
        fn,
        cases,
        hint=(
            "H[k] = Ad^k Bd for k < T; n >= 2T - 1; "
            "m = irfft(rfft(u, n)[:, None] * rfft(H, n, axis=0), n, axis=0)[:T]"
        ),
        diagnose=diagnose,
        forbid=("scanbook.lti.apply", "scanbook.lti.memory"),
        raise_on_fail=raise_on_fail,
        quiet=quiet,
    )


def check_legendre_readout(
    fn: Callable, *, raise_on_fail: bool = False, quiet: bool = False
) -> Feedback:
    """Grade ``fn(m, r) -> u_delayed``: decode ``u(t - r theta)`` from LMU states.

    ``m`` has shape ``(T, q)`` and ``r`` is a number in ``[0, 1]``; the answer, shape ``(T,)``,
    is ``sum_i m[:, i] P_i(r)`` with the shifted Legendre polynomials
    ``P_i(r) = L_i(2r - 1)``. Compared with :func:`scanbook.lti.readout`.

    Chapter 8, exercise 4.
    """
    from .. import lti

    rng = make_rng(84)
    cases = []
    for T, q, r in ((1, 1, 0.5), (3, 2, 0.25), (5, 4, 1.0), (17, 6, 0.0), (40, 9, 0.6)):
        m = random_values(rng, (T, q))
        cases.append(Case(f"T={T}, q={q}, r={r}", (m, r), lti.readout(m, r), show={"m": m, "r": r}))

    def diagnose(case: Case, got) -> str | None:
        m, r = case.args
        q = m.shape[1]
        if q < 2:
            return None
        if same(got, lti.readout(m, 1.0 - r)):
            return (
                "the polynomials run the wrong way: P_i(r) = L_i(2r - 1), r = 1 is the oldest input"
            )
        unshifted = m @ np.polynomial.legendre.legvander(np.asarray(r, float), q - 1).reshape(-1)
        if same(got, unshifted):
            return "use the SHIFTED polynomials on [0, 1]: P_i(r) = L_i(2r - 1), not L_i(r)"
        return None

    return grade(
        "check_legendre_readout",
        fn,
        cases,
        hint="Bonnet: (n+1) L_{n+1}(x) = (2n+1) x L_n(x) - n L_{n-1}(x), with x = 2r - 1",
        diagnose=diagnose,
        forbid=(
            "scanbook.lti.readout",
            "scanbook.lti.legendre",
            "numpy.polynomial.legendre.legval",
        ),
        raise_on_fail=raise_on_fail,
        quiet=quiet,
    )
