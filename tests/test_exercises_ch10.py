"""Chapter 10's graders: the reference answers pass, each typical mistake fails with its hint."""

import numpy as np
import scanbook as sb

ex = sb.exercises


def summaries(a, b, p):
    T = len(a)
    L = -(-T // p)
    A, U = np.ones((p, *a.shape[1:])), np.zeros((p, *a.shape[1:]))
    for i in range(p):
        for t in range(i * L, min(i * L + L, T)):
            A[i], U[i] = a[t] * A[i], a[t] * U[i] + b[t]
    return A, U


def carries(A, U, h0, exclusive=True):
    C, h = [], np.asarray(h0, float)
    for i in range(len(A)):
        if exclusive:
            C.append(h)
        h = A[i] * h + U[i]
        if not exclusive:
            C.append(h)
    return np.array(C)


def sharded(a, b, h0, p, fix=True):
    T = len(a)
    if T == 0:
        return np.zeros(a.shape)
    L = -(-T // p)
    A, U = summaries(a, b, p)
    C = carries(A, U, h0) if fix else np.zeros_like(A)
    out = []
    for i in range(0, T, L):
        P, u = np.ones(a.shape[1:]), np.zeros(a.shape[1:])
        for t in range(i, min(i + L, T)):
            P, u = a[t] * P, a[t] * u + b[t]
            out.append(u + P * C[i // L])
    return np.array(out)


def bytes_sent(T, C, p, s):
    L = -(-T // p)
    return (p - 1) * 2 * C * s, (p - 1) * 2 * C * L * s


def failed(fb, words):
    return not fb and words in fb.message


def test_reference_answers_pass():
    assert ex.check_chunk_summaries(summaries, quiet=True)
    assert ex.check_carries(carries, quiet=True)
    assert ex.check_sharded_recurrence(sharded, quiet=True)
    assert ex.check_bytes_sent(bytes_sent, quiet=True)


def test_the_library_passes_its_own_graders():
    def lib(T, C, p, s):
        d = sb.distributed.communication_bytes(T, C, p, s)
        return d["sharded_scan"], d["gather_all"]

    assert ex.check_bytes_sent(lib, quiet=True)

    def on_this_machines_devices(a, b, h0, p):  # p is ignored: JAX's devices decide
        h0 = np.broadcast_to(np.asarray(h0, float), a.shape[1:])
        return np.asarray(sb.distributed.linear_recurrence(a, b, h0))

    assert ex.check_sharded_recurrence(on_this_machines_devices, quiet=True)


def test_mistakes_fail_with_their_hint():
    def summed(a, b, p):
        A, _ = summaries(a, b, p)
        L = -(-len(a) // p)
        return A, np.stack([b[i * L : i * L + L].sum(0) for i in range(p)])

    assert failed(ex.check_chunk_summaries(summed, quiet=True), "not the sum")

    def only_real_chunks(a, b, p):  # forgets the empty chunks when p > T
        A, U = summaries(a, b, p)
        n = -(-len(a) // -(-len(a) // p)) if len(a) else 0
        return A[:n], U[:n]

    assert failed(ex.check_chunk_summaries(only_real_chunks, quiet=True), "one summary per chunk")
    assert failed(ex.check_carries(lambda A, U, h0: carries(A, U, h0, False), quiet=True), "AFTER")
    assert failed(ex.check_carries(lambda A, U, h0: carries(A, U, 0 * h0), quiet=True), "from h0")
    assert failed(
        ex.check_sharded_recurrence(lambda *a: sharded(*a, fix=False), quiet=True), "fixed up"
    )
    assert failed(
        ex.check_bytes_sent(lambda T, C, p, s: (p * 2 * C * s, p * 2 * C * -(-T // p) * s),
                            quiet=True), "p - 1 blocks")  # fmt: skip
    assert failed(
        ex.check_bytes_sent(lambda T, C, p, s: ((p - 1) * C * s, 0), quiet=True), "two numbers"
    )

    def floor_chunks(T, C, p, s):
        return (p - 1) * 2 * C * s, (p - 1) * 2 * C * (T // p) * s

    assert failed(ex.check_bytes_sent(floor_chunks, quiet=True), "ceil(T / p)")
