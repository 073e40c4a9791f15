"""Numba kernels over a unigram lattice: the hot loops of the tokenize service.

A text is an int32 array of units (Unicode code points or UTF-8 bytes). A vocabulary is a trie stored in
an open-addressing hash table (``keys``/``vals``: ``parent * radix + unit`` -> child node) plus the score of
each node (``node_lp``: -inf for a node that is not a piece). Walking the trie from position s lists every
edge (s, e) of the lattice in increasing e; the kernels that need the edges *ending* at e walk a second trie
built over the reversed pieces.

``unk_lp`` (finite, or nan for none) scores a one-unit edge over a unit that has no one-unit piece, the way
SentencePiece scores unknown characters; with nan such a unit makes the text unsegmentable.

Randomness comes from a xoshiro256** generator whose 4-word state the caller seeds from a numpy Generator
and which the kernels advance in place, so a seed fixes every output.

All kernels are compiled with ``cache=True``: the first process pays the compile once, later ones load the
machine code from ``__pycache__``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

NEG_INF = -np.inf
_HASH_MUL = np.uint64(0x9E3779B97F4A7C15)


# ---------------------------------------------------------------- random numbers (xoshiro256**)
@njit(cache=True, inline="always")
def _rotl(x, k):
    return (x << np.uint64(k)) | (x >> np.uint64(64 - k))


@njit(cache=True, inline="always")
def _next_u64(state):
    s0, s1, s2, s3 = state[0], state[1], state[2], state[3]
    result = _rotl(s1 * np.uint64(5), 7) * np.uint64(9)
    t = s1 << np.uint64(17)
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    s3 = _rotl(s3, 45)
    state[0], state[1], state[2], state[3] = s0, s1, s2, s3
    return result


@njit(cache=True)
def _seed_ok(state):
    """The all-zero state is xoshiro's one fixed point (probability 2^-256 from a seed): nudge it."""
    if state[0] == 0 and state[1] == 0 and state[2] == 0 and state[3] == 0:
        state[0] = np.uint64(1)


@njit(cache=True, inline="always")
def uniform(state):
    """A double in [0, 1) with 53 random bits (so ``u < 1`` always holds: the first candidate passes)."""
    return np.float64(_next_u64(state) >> np.uint64(11)) * (1.0 / 9007199254740992.0)


# ---------------------------------------------------------------- trie in a hash table
@njit(cache=True, inline="always")
def _slot(key, mask):
    return np.int64((np.uint64(key) * _HASH_MUL) >> np.uint64(20)) & mask


@njit(cache=True, inline="always")
def child(keys, vals, mask, radix, node, unit):
    """The child of ``node`` along ``unit``, or -1."""
    key = np.int64(node) * radix + unit
    i = _slot(key, mask)
    while True:
        k = keys[i]
        if k == key:
            return vals[i]
        if k == -1:
            return -1
        i = (i + 1) & mask


@njit(cache=True)
def build_trie(units, starts, lps, radix, reverse):
    """Insert every piece ``units[starts[i]:starts[i+1]]`` (reversed if ``reverse``) with score ``lps[i]``.

    Returns (keys, vals, node_lp). A piece given twice keeps its last score (callers pass unique pieces).
    """
    total = units.shape[0]
    size = 1024
    while size < 2 * (total + 1):
        size *= 2
    mask = size - 1
    keys = np.full(size, -1, dtype=np.int64)
    vals = np.full(size, -1, dtype=np.int32)
    node_lp = np.full(total + 1, NEG_INF)
    n_nodes = 1
    for p in range(starts.shape[0] - 1):
        a, b = starts[p], starts[p + 1]
        node = 0
        for j in range(b - a):
            unit = units[b - 1 - j] if reverse else units[a + j]
            key = np.int64(node) * radix + unit
            i = _slot(key, mask)
            while keys[i] != -1 and keys[i] != key:
                i = (i + 1) & mask
            if keys[i] == -1:
                keys[i] = key
                vals[i] = n_nodes
                n_nodes += 1
            node = vals[i]
        node_lp[node] = lps[p]
    return keys, vals, node_lp[:n_nodes].copy()


@njit(cache=True, inline="always")
def _unk_edge(keys, vals, mask, radix, node_lp, unk_lp, unit):
    """Score of the extra one-unit edge over ``unit`` when it has no one-unit piece (nan: no edge)."""
    if unk_lp != unk_lp:
        return np.nan
    c = child(keys, vals, mask, radix, 0, unit)
    if c >= 0 and node_lp[c] != NEG_INF:
        return np.nan
    return unk_lp


@njit(cache=True)
def _backtrack(back, n):
    """Boundaries 0 = b_0 < ... < b_k = n read from back-pointers."""
    k = 0
    e = n
    while e > 0:
        e = back[e]
        k += 1
    out = np.empty(k + 1, dtype=np.int64)
    e = n
    for j in range(k, -1, -1):
        out[j] = e
        if e > 0:
            e = back[e]
    return out


# ---------------------------------------------------------------- forward passes (edges grouped by start)
@njit(cache=True)
def viterbi(units, keys, vals, node_lp, radix, unk_lp):
    """Best path: (best score of every prefix, back-pointers). Ties keep the first edge found (smallest start)."""
    n = units.shape[0]
    mask = keys.shape[0] - 1
    score = np.full(n + 1, NEG_INF)
    back = np.full(n + 1, -1, dtype=np.int64)
    score[0] = 0.0
    for s in range(n):
        base = score[s]
        if base == NEG_INF:
            continue
        node = 0
        for e in range(s + 1, n + 1):
            node = child(keys, vals, mask, radix, node, units[e - 1])
            if node < 0:
                break
            lp = node_lp[node]
            if lp != NEG_INF:
                c = base + lp
                if c > score[e]:
                    score[e] = c
                    back[e] = s
        u = _unk_edge(keys, vals, mask, radix, node_lp, unk_lp, units[s])
        if u == u and base + u > score[s + 1]:
            score[s + 1] = base + u
            back[s + 1] = s
    return score, back


@njit(cache=True, inline="always")
def _reservoir_push(logz, back, s, e, w, state):
    """Offer edge (s, e) with log-weight w to the reservoir of position e."""
    cur = logz[e]
    if cur == NEG_INF:
        # first candidate: exp(w - w) = 1, always kept, no draw needed
        logz[e] = w
        back[e] = s
        return
    # logZ[e] = logaddexp(cur, w) and the acceptance exp(w - logZ[e]), sharing one exp: with t = exp(-|w - cur|)
    # the acceptance is t / (1 + t) when w <= cur and 1 / (1 + t) otherwise
    if w > cur:
        t = np.exp(cur - w)
        logz[e] = w + np.log1p(t)
        accept = 1.0 / (1.0 + t)
    else:
        t = np.exp(w - cur)
        logz[e] = cur + np.log1p(t)
        accept = t / (1.0 + t)
    if uniform(state) < accept:
        back[e] = s


@njit(cache=True)
def reservoir_sample(units, keys, vals, node_lp, radix, unk_lp, alpha, state):
    """The corrected one-pass Viterbi Sampling (log-space reservoir); returns (logZ, back).

    Each edge (s, e) carries log-weight w = logZ[s] + alpha * lp; logZ[e] accumulates logsumexp of them and
    the edge replaces back[e] with probability exp(w - logZ[e]), so back[e] = s with probability
    Z(s) p^alpha / Z(e) whatever the arrival order. Every edge ending at s has been seen before the walk
    from s starts, because such edges start before s.
    """
    n = units.shape[0]
    mask = keys.shape[0] - 1
    logz = np.full(n + 1, NEG_INF)
    back = np.full(n + 1, -1, dtype=np.int64)
    logz[0] = 0.0
    for s in range(n):
        base = logz[s]
        if base == NEG_INF:
            continue
        node = 0
        for e in range(s + 1, n + 1):
            node = child(keys, vals, mask, radix, node, units[e - 1])
            if node < 0:
                break
            lp = node_lp[node]
            if lp != NEG_INF:
                _reservoir_push(logz, back, s, e, base + alpha * lp, state)
        lp = _unk_edge(keys, vals, mask, radix, node_lp, unk_lp, units[s])
        if lp == lp:
            _reservoir_push(logz, back, s, s + 1, base + alpha * lp, state)
    return logz, back


@njit(cache=True, inline="always")
def _duel_push(cur, back, s, e, c, alpha, state):
    """Offer a candidate path of score c to position e: it beats the holder with prob. sigmoid(alpha*gap)."""
    if back[e] < 0 or uniform(state) < 1.0 / (1.0 + np.exp(-alpha * (c - cur[e]))):
        cur[e] = c
        back[e] = s


@njit(cache=True)
def legacy_sample(units, keys, vals, node_lp, radix, unk_lp, alpha, state):
    """The original (biased) Viterbi Sampling: a chain of two-way duels against the current winner.

    ``cur[e]`` holds the score of the one path sampled so far to e; a new candidate wins with probability
    sigmoid(alpha * (candidate - cur[e])). Kept only to show its bias next to the corrected sampler.
    Edges reach e longest first (smallest start first), the order BytePiece's automaton tends to use.
    """
    n = units.shape[0]
    mask = keys.shape[0] - 1
    cur = np.full(n + 1, NEG_INF)
    back = np.full(n + 1, -1, dtype=np.int64)
    cur[0] = 0.0
    for s in range(n):
        base = cur[s]
        if base == NEG_INF:
            continue
        node = 0
        for e in range(s + 1, n + 1):
            node = child(keys, vals, mask, radix, node, units[e - 1])
            if node < 0:
                break
            lp = node_lp[node]
            if lp != NEG_INF:
                _duel_push(cur, back, s, e, base + lp, alpha, state)
        lp = _unk_edge(keys, vals, mask, radix, node_lp, unk_lp, units[s])
        if lp == lp:
            _duel_push(cur, back, s, s + 1, base + lp, alpha, state)
    return cur, back


@njit(cache=True)
def forward_logz(units, keys, vals, node_lp, radix, unk_lp, alpha):
    """logZ of every prefix (no sampling): logZ[e] = logsumexp over edges (s, e) of logZ[s] + alpha * lp."""
    n = units.shape[0]
    mask = keys.shape[0] - 1
    logz = np.full(n + 1, NEG_INF)
    logz[0] = 0.0
    for s in range(n):
        base = logz[s]
        if base == NEG_INF:
            continue
        node = 0
        for e in range(s + 1, n + 1):
            node = child(keys, vals, mask, radix, node, units[e - 1])
            if node < 0:
                break
            lp = node_lp[node]
            if lp != NEG_INF:
                logz[e] = np.logaddexp(logz[e], base + alpha * lp)
        lp = _unk_edge(keys, vals, mask, radix, node_lp, unk_lp, units[s])
        if lp == lp:
            logz[s + 1] = np.logaddexp(logz[s + 1], base + alpha * lp)
    return logz


@njit(cache=True)
def backward_logz(units, keys, vals, node_lp, radix, unk_lp, alpha):
    """logZ of every suffix: logZb[s] = logsumexp over edges (s, e) of alpha * lp + logZb[e]."""
    n = units.shape[0]
    mask = keys.shape[0] - 1
    logzb = np.full(n + 1, NEG_INF)
    logzb[n] = 0.0
    for s in range(n - 1, -1, -1):
        acc = NEG_INF
        node = 0
        for e in range(s + 1, n + 1):
            node = child(keys, vals, mask, radix, node, units[e - 1])
            if node < 0:
                break
            lp = node_lp[node]
            if lp != NEG_INF and logzb[e] != NEG_INF:
                acc = np.logaddexp(acc, alpha * lp + logzb[e])
        lp = _unk_edge(keys, vals, mask, radix, node_lp, unk_lp, units[s])
        if lp == lp and logzb[s + 1] != NEG_INF:
            acc = np.logaddexp(acc, alpha * lp + logzb[s + 1])
        logzb[s] = acc
    return logzb


# ---------------------------------------------------------------- FFBS (edges grouped by end, reverse trie)
@njit(cache=True)
def _in_edges(units, e, rkeys, rvals, rnode_lp, radix, keys, vals, node_lp, unk_lp, starts, lps):
    """Fill starts/lps with the edges ending at e (walking the reversed-piece trie); returns their count."""
    mask = rkeys.shape[0] - 1
    k = 0
    node = 0
    for s in range(e - 1, -1, -1):
        node = child(rkeys, rvals, mask, radix, node, units[s])
        if node < 0:
            break
        lp = rnode_lp[node]
        if lp != NEG_INF:
            starts[k] = s
            lps[k] = lp
            k += 1
    lp = _unk_edge(keys, vals, keys.shape[0] - 1, radix, node_lp, unk_lp, units[e - 1])
    if lp == lp:
        starts[k] = e - 1
        lps[k] = lp
        k += 1
    return k


@njit(cache=True)
def ffbs(units, rkeys, rvals, rnode_lp, keys, vals, node_lp, radix, unk_lp, alpha, state, n_samples):
    """Forward-filtering backward-sampling, SentencePiece's Lattice::Sample, as an independent reference.

    Forward: logZ[e] = logsumexp of the in-edges of e (two-pass max/sum). Backward: from n, draw the previous
    boundary s among the in-edges of the current one with probability Z(s) p^alpha / Z(e).
    Returns (logZ, flat boundaries of all samples, offsets into them).
    """
    _seed_ok(state)
    n = units.shape[0]
    width = n + 1
    starts = np.empty(width + 1, dtype=np.int64)
    lps = np.empty(width + 1)
    ws = np.empty(width + 1)
    logz = np.full(n + 1, NEG_INF)
    logz[0] = 0.0
    for e in range(1, n + 1):
        k = _in_edges(units, e, rkeys, rvals, rnode_lp, radix, keys, vals, node_lp, unk_lp, starts, lps)
        m = NEG_INF
        for j in range(k):
            ws[j] = logz[starts[j]] + alpha * lps[j]
            if ws[j] > m:
                m = ws[j]
        if m == NEG_INF:
            continue
        acc = 0.0
        for j in range(k):
            acc += np.exp(ws[j] - m)
        logz[e] = m + np.log(acc)
    offsets = np.zeros(n_samples + 1, dtype=np.int64)
    if logz[n] == NEG_INF:
        return logz, np.empty(0, dtype=np.int64), offsets
    flat = np.empty(n_samples * (n + 1), dtype=np.int64)
    path = np.empty(n + 1, dtype=np.int64)
    pos = 0
    for r in range(n_samples):
        e = n
        depth = 0
        path[0] = n
        while e > 0:
            k = _in_edges(units, e, rkeys, rvals, rnode_lp, radix, keys, vals, node_lp, unk_lp, starts, lps)
            u = uniform(state)
            acc = 0.0
            chosen = -1
            for j in range(k):
                if logz[starts[j]] == NEG_INF:
                    continue
                acc += np.exp(logz[starts[j]] + alpha * lps[j] - logz[e])
                chosen = starts[j]
                if u < acc:
                    break
            # rounding can leave acc a hair under u: the last reachable start then takes the remainder
            e = chosen
            depth += 1
            path[depth] = e
        for j in range(depth, -1, -1):
            flat[pos] = path[j]
            pos += 1
        offsets[r + 1] = pos
    return logz, flat[:pos].copy(), offsets


@njit(cache=True)
def by_end_sample(units, rkeys, rvals, rnode_lp, keys, vals, node_lp, radix, unk_lp, alpha, state, legacy, shuffle):
    """The one-pass samplers fed edges grouped by end position instead of by start.

    Within one end the edges come shortest first, or in a random order when ``shuffle``; the corrected
    sampler's distribution must not depend on it, the legacy sampler's does. Returns (logZ / cur, back).
    """
    n = units.shape[0]
    starts = np.empty(n + 2, dtype=np.int64)
    lps = np.empty(n + 2)
    logz = np.full(n + 1, NEG_INF)
    back = np.full(n + 1, -1, dtype=np.int64)
    logz[0] = 0.0
    for e in range(1, n + 1):
        k = _in_edges(units, e, rkeys, rvals, rnode_lp, radix, keys, vals, node_lp, unk_lp, starts, lps)
        if shuffle:
            for j in range(k - 1, 0, -1):
                i = np.int64(uniform(state) * (j + 1))
                starts[i], starts[j] = starts[j], starts[i]
                lps[i], lps[j] = lps[j], lps[i]
        for j in range(k):
            s = starts[j]
            base = logz[s]
            if base == NEG_INF:
                continue
            if legacy:
                _duel_push(logz, back, s, e, base + lps[j], alpha, state)
            else:
                _reservoir_push(logz, back, s, e, base + alpha * lps[j], state)
    return logz, back


# ---------------------------------------------------------------- many samples in one call
@njit(cache=True)
def sample_many(units, rkeys, rvals, rnode_lp, keys, vals, node_lp, radix, unk_lp, alpha, state, n_samples,
                method, order):
    """Run a one-pass method ``n_samples`` times (method 0: reservoir, 1: legacy, 2: Viterbi).

    ``order`` 0 feeds edges grouped by start (longest first at each end, the forward trie), 1 grouped by end
    shortest first, 2 grouped by end in random order (orders 1 and 2 need the reverse trie).
    Returns (prefix logZ / scores of the last run, flat boundaries, offsets).
    """
    _seed_ok(state)
    n = units.shape[0]
    flat = np.empty(n_samples * (n + 1), dtype=np.int64)
    offsets = np.zeros(n_samples + 1, dtype=np.int64)
    pos = 0
    for r in range(n_samples):
        if method == 2:
            logz, back = viterbi(units, keys, vals, node_lp, radix, unk_lp)
        elif order == 0 and method == 0:
            logz, back = reservoir_sample(units, keys, vals, node_lp, radix, unk_lp, alpha, state)
        elif order == 0:
            logz, back = legacy_sample(units, keys, vals, node_lp, radix, unk_lp, alpha, state)
        else:
            logz, back = by_end_sample(units, rkeys, rvals, rnode_lp, keys, vals, node_lp, radix, unk_lp,
                                       alpha, state, method == 1, order == 2)
        if logz[n] == NEG_INF:
            return logz, np.empty(0, dtype=np.int64), np.zeros(n_samples + 1, dtype=np.int64)
        b = _backtrack(back, n)
        flat[pos:pos + b.shape[0]] = b
        pos += b.shape[0]
        offsets[r + 1] = pos
        if method == 2:
            # deterministic: every further sample is the same path
            for q in range(r + 1, n_samples):
                flat[pos:pos + b.shape[0]] = b
                pos += b.shape[0]
                offsets[q + 1] = pos
            break
    return logz, flat[:pos].copy(), offsets


@njit(cache=True)
def sample_one(units, keys, vals, node_lp, radix, unk_lp, alpha, state):
    """One reservoir sample (Viterbi for alpha < 0): boundaries, or an empty array when unsegmentable."""
    _seed_ok(state)
    n = units.shape[0]
    if alpha < 0:
        logz, back = viterbi(units, keys, vals, node_lp, radix, unk_lp)
    else:
        logz, back = reservoir_sample(units, keys, vals, node_lp, radix, unk_lp, alpha, state)
    if logz[n] == NEG_INF:
        return np.empty(0, dtype=np.int64)
    return _backtrack(back, n)
