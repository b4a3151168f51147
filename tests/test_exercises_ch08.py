"""Chapter 8's graders: the reference answers pass, each typical mistake fails with its hint."""

import numpy as np
import scanbook as sb
import scipy.linalg
import scipy.special

ex = sb.exercises


def lmu(q, theta):
    i, j = np.arange(q)[:, None], np.arange(q)[None, :]
    A = (2 * i + 1) / theta * np.where(i < j, -1.0, (-1.0) ** (i - j + 1))
    return A, (2 * np.arange(q) + 1) * (-1.0) ** np.arange(q) / theta


def zoh(A, B, dt):
    q = len(A)
    M = np.zeros((q + 1, q + 1))
    M[:q, :q], M[:q, q] = A, B
    E = scipy.linalg.expm(M * dt)
    return E[:q, :q], E[:q, q]


def fft_memory(Ad, Bd, u, pad=True):
    T = len(u)
    H = [Bd]
    for _ in range(T - 1):
        H.append(Ad @ H[-1])
    n = 2 * T if pad else T
    U, Hf = np.fft.rfft(u, n), np.fft.rfft(np.array(H), n, axis=0)
    return np.fft.irfft(U[:, None] * Hf, n, axis=0)[:T]


def readout(m, r):
    return m @ scipy.special.eval_sh_legendre(np.arange(m.shape[1]), r)


def test_reference_answers_pass():
    assert ex.check_lmu_matrices(lmu, quiet=True)
    assert ex.check_lmu_matrices(lambda q, t: (lmu(q, t)[0], lmu(q, t)[1][:, None]), quiet=True)
    assert ex.check_zoh(zoh, quiet=True)
    assert ex.check_lti_fft(fft_memory, quiet=True)
    assert ex.check_legendre_readout(readout, quiet=True)


def test_mistakes_fail_with_their_hint():
    def failed(fb, words):
        return not fb and words in fb.message

    assert failed(ex.check_lmu_matrices(lambda q, t: (lmu(q, t)[0].T, lmu(q, t)[1]), quiet=True),
                  "transposed")  # fmt: skip
    assert failed(ex.check_lmu_matrices(lambda q, t: lmu(q, 1.0), quiet=True), "divide by theta")
    assert failed(ex.check_zoh(lambda A, B, dt: (np.eye(len(A)) + A * dt, B * dt), quiet=True),
                  "Euler")  # fmt: skip
    assert failed(ex.check_zoh(lambda A, B, dt: (scipy.linalg.expm(A * dt), B * dt), quiet=True),
                  "Bd is not B dt")  # fmt: skip
    assert failed(ex.check_lti_fft(lambda *a: fft_memory(*a, pad=False), quiet=True), "circular")
    assert failed(ex.check_lti_fft(lambda Ad, Bd, u: fft_memory(Ad, Bd, u) @ Ad.T, quiet=True),
                  "H[0] = Bd")  # fmt: skip
    assert failed(ex.check_legendre_readout(lambda m, r: readout(m, 1 - r), quiet=True),
                  "wrong way")  # fmt: skip
    legendre = np.polynomial.legendre.legvander
    assert failed(
        ex.check_legendre_readout(lambda m, r: m @ legendre(r, m.shape[1] - 1).reshape(-1),
                                  quiet=True),
        "SHIFTED",
    )  # fmt: skip
