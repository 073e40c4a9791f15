"""The per-line hot path: a double-array trie and the one-pass lattice kernels over it.

Why this module exists (profile of the earlier path, 60-character lines, 4k model, one thread): SentencePiece's
``encode`` takes ~4.8 us a line; ours took ~7.5 us through ``sample_segmentation`` and ~10 us through
``viterbi()``. Only ~2.7 us of that was lattice work; the rest was per-call overhead: numba's dispatcher
(~0.4 us for arrays, ~2.3 us when an argument is a ``str``), boxing a fresh boundary array (~0.7 us), the
UTF-32 copy of the text (~0.7-1 us), cutting the tokens in Python (~100 ns a token) and, for an integer seed,
a new numpy Generator (~7-11 us). The lattice itself walked a hash-table trie with a probe loop per step.

So the hot path here:

- reads the ``str`` in place (numba's code-point accessor; no UTF-32 copy), maps code points to a dense
  alphabet, and walks a double-array trie (``base[node] + label`` and one ``check``: no probing, and the
  two words of a node share a cache line);
- writes the tokens into ONE new string, separated by a control character that does not occur in the text,
  so Python cuts it with ``str.split`` in C (the same number of string objects as SentencePiece creates);
- seeds xoshiro256** from a 64-bit word (splitmix64) inside the kernel: an integer seed costs nothing and a
  Generator gives one ``random_raw()``;
- is called through the compiled entry point of the one signature it uses (``FastKernel``): the dispatcher's
  type inference per call is skipped; the call sites pass exactly those types.

The ``str`` access uses numba's own unicode helpers (``_get_code_point``, ``_empty_string``,
``_set_code_point``, internal but stable since numba 0.4x); the tests cover every string kind (1, 2 and 4 bytes
per code point). The kernels are the same algorithms as ``kernels.py`` (which keeps the hash-trie versions, FFBS and the
by-end edge orders as independent references); the tests compare both in float64. Each kernel repeats the
trie walk inline on purpose: a shared walker taking the edge action as a first-class function costs numba an
indirect call per lattice edge, where the inlined walk is a few instructions.
"""

from __future__ import annotations

import numpy as np
from numba import njit, types
from numba.cpython.unicode import _empty_string, _get_code_point, _set_code_point

from backend.services.tokenize.kernels import _HASH_MUL, NEG_INF, _backtrack, _duel_push, _reservoir_push

# method codes shared with core.py
VITERBI, SAMPLE, LEGACY = 0, 1, 2
# status codes of the str / bytes kernels (a non-negative status is the token separator's code)
UNSEGMENTABLE, NO_SEPARATOR = -1, -2
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
# building: a free slot tried and rejected this many times is skipped as a scan start (darts' heuristic)
_MAX_FAILS = 16


# ---------------------------------------------------------------- seeding
@njit(cache=True, inline="always")
def _splitmix(x):
    z = x
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@njit(cache=True)
def seed_state(seed):
    """A xoshiro256** state from a 64-bit seed by splitmix64 (Vigna's recommended seeding; never all-zero)."""
    state = np.empty(4, dtype=np.uint64)
    x = np.uint64(seed)
    for i in range(4):
        x += _GOLDEN
        state[i] = _splitmix(x)
    if state[0] == 0 and state[1] == 0 and state[2] == 0 and state[3] == 0:
        state[0] = np.uint64(1)
    return state


# ---------------------------------------------------------------- building the double array
@njit(cache=True, inline="always")
def _unlink(u, head, nxt, prv, listed):
    """Take slot u out of the doubly linked list of scan starts; returns the new head."""
    if prv[u] == -1:
        head = nxt[u]
    else:
        nxt[prv[u]] = nxt[u]
    if nxt[u] != -1:
        prv[nxt[u]] = prv[u]
    listed[u] = False
    return head


@njit(cache=True)
def build_double_array(ids, starts, lps, alphabet_size):
    """The trie of the pieces ``ids[starts[i]:starts[i+1]]`` (labels 1..alphabet_size) as a double array.

    Returns (da, lp): ``da[t] = (base, check)``; the child of node t along label c is ``u = base[t] + c`` when
    ``check[u] == t``; ``lp[u]`` is the piece's score or -inf. The root is slot 0 (check -2); free slots have
    check -1; a leaf has base 0 (no slot ``0 + c`` can name it as parent). The array is padded so that
    ``base + c`` never leaves it for any label in 0..alphabet_size (label 0, an unknown unit, never matches).
    """
    n_pieces = starts.shape[0] - 1
    total = ids.shape[0]
    radix = np.int64(alphabet_size + 1)
    # 1. an ordinary trie (hash table keyed by parent * radix + label) giving parent and label of each node
    size = 1024
    while size < 2 * (total + 1):
        size *= 2
    mask = size - 1
    keys = np.full(size, -1, dtype=np.int64)
    vals = np.full(size, -1, dtype=np.int64)
    parent = np.empty(total + 1, dtype=np.int64)
    label = np.empty(total + 1, dtype=np.int64)
    piece_node = np.empty(n_pieces, dtype=np.int64)
    parent[0] = -1
    label[0] = 0
    n_nodes = 1
    for p in range(n_pieces):
        node = 0
        for j in range(starts[p], starts[p + 1]):
            key = node * radix + ids[j]
            i = np.int64((np.uint64(key) * _HASH_MUL) >> np.uint64(20)) & mask
            while keys[i] != -1 and keys[i] != key:
                i = (i + 1) & mask
            if keys[i] == -1:
                keys[i] = key
                vals[i] = n_nodes
                parent[n_nodes] = node
                label[n_nodes] = ids[j]
                n_nodes += 1
            node = vals[i]
        piece_node[p] = node
    # 2. children of every node, sorted by label
    order = np.argsort(parent[1:n_nodes] * radix + label[1:n_nodes]) + 1
    first_child = np.full(n_nodes + 1, 0, dtype=np.int64)
    for v in range(1, n_nodes):
        first_child[parent[v] + 1] += 1
    for v in range(n_nodes):
        first_child[v + 1] += first_child[v]
    # 3. place the children of each node (breadth first) at the first base where all their slots are free
    cap = max(1024, 2 * (n_nodes + alphabet_size + 2))
    base = np.zeros(cap, dtype=np.int64)
    check = np.full(cap, -1, dtype=np.int64)
    # doubly linked list of free slots (slot 0 is the root; the list runs over 1..cap-1, -1 ends it)
    nxt = np.arange(1, cap + 1, dtype=np.int64)
    prv = np.arange(-1, cap - 1, dtype=np.int64)
    nxt[cap - 1] = -1
    prv[1] = -1
    fails = np.zeros(cap, dtype=np.int32)
    listed = np.ones(cap, dtype=np.bool_)
    listed[0] = False
    head = 1
    check[0] = -2
    slot = np.empty(n_nodes, dtype=np.int64)
    slot[0] = 0
    queue = np.empty(n_nodes, dtype=np.int64)
    queue[0] = 0
    q_end = 1
    q_pos = 0
    max_used = 0
    while q_pos < q_end:
        v = queue[q_pos]
        q_pos += 1
        a, b = first_child[v], first_child[v + 1]
        if a == b:
            continue
        lo = label[order[a]]
        hi = label[order[b - 1]]
        p = head
        while True:
            if p == -1 or p - lo + hi >= cap:
                # grow: double the arrays and append the new slots to the free list
                new_cap = cap * 2
                while (p if p != -1 else cap) - lo + hi >= new_cap:
                    new_cap *= 2
                base2 = np.zeros(new_cap, dtype=np.int64)
                base2[:cap] = base
                check2 = np.full(new_cap, -1, dtype=np.int64)
                check2[:cap] = check
                nxt2 = np.arange(1, new_cap + 1, dtype=np.int64)
                prv2 = np.arange(-1, new_cap - 1, dtype=np.int64)
                nxt2[:cap] = nxt
                prv2[:cap] = prv
                nxt2[new_cap - 1] = -1
                fails2 = np.zeros(new_cap, dtype=np.int32)
                fails2[:cap] = fails
                listed2 = np.ones(new_cap, dtype=np.bool_)
                listed2[:cap] = listed
                # link the last free slot of the old range to the first new one
                last = -1
                q = head
                while q != -1:
                    last = q
                    q = nxt[q]
                if last == -1:
                    head = cap
                    prv2[cap] = -1
                else:
                    nxt2[last] = cap
                    prv2[cap] = last
                if p == -1:
                    p = cap
                base, check, nxt, prv, fails, listed, cap = base2, check2, nxt2, prv2, fails2, listed2, new_cap
                continue
            bb = p - lo
            if bb >= 1:
                ok = True
                for k in range(a, b):
                    if check[bb + label[order[k]]] != -1:
                        ok = False
                        break
                if ok:
                    break
            fails[p] += 1
            q = nxt[p]
            if fails[p] > _MAX_FAILS:
                # a free slot rejected this often sits in a crowded region: stop starting scans there
                # (it stays free for other nodes' children; it only leaves the list of scan starts)
                head = _unlink(p, head, nxt, prv, listed)
            p = q
        base[slot[v]] = bb
        for k in range(a, b):
            c = order[k]
            u = bb + label[c]
            check[u] = slot[v]
            slot[c] = u
            if u > max_used:
                max_used = u
            if listed[u]:
                head = _unlink(u, head, nxt, prv, listed)
            queue[q_end] = c
            q_end += 1
    max_base = 0
    for v in range(n_nodes):
        if base[slot[v]] > max_base:
            max_base = base[slot[v]]
    final = max(max_used, max_base + alphabet_size) + 1
    da = np.empty((final, 2), dtype=np.int32)
    lp = np.full(final, NEG_INF)
    for t in range(final):
        if t < cap:
            da[t, 0] = base[t]
            da[t, 1] = check[t]
        else:
            da[t, 0] = 0
            da[t, 1] = -1
    for p in range(n_pieces):
        lp[slot[piece_node[p]]] = lps[p]
    return da, lp


# ---------------------------------------------------------------- lattice passes (edges grouped by start)
@njit(cache=True, inline="always")
def _unk_lp(da, lp, unk, c):
    """Score of the one-unit edge over an alphabet id with no one-unit piece (nan: no such edge)."""
    if unk != unk:
        return np.nan
    if c != 0:
        t = da[0, 0] + c
        if da[t, 1] == 0 and lp[t] != NEG_INF:
            return np.nan
    return unk


# The three one-pass methods walk the edges from each start s in the same way: the one-unit edge first (the
# piece, or the unknown edge when the unit has no one-unit piece), then the longer pieces in increasing end.
# Their order within one start does not matter (each goes to a different end); at each end the edges arrive
# by increasing start, longest first, as in BytePiece's automaton.
@njit(cache=True)
def viterbi_pass(ids, da, lp, unk, score, back):
    """Best score of every prefix into ``score`` with back-pointers (ties: the smallest start wins)."""
    n = ids.shape[0]
    score[0] = 0.0
    back[0] = -1
    for i in range(1, n + 1):
        score[i] = NEG_INF
        back[i] = -1
    root = da[0, 0]
    for s in range(n):
        here = score[s]
        if here == NEG_INF:
            continue
        c = ids[s]
        node = root + c
        if c != 0 and da[node, 1] == 0:
            w = lp[node]
            if w == NEG_INF:
                w = unk
            if w == w and here + w > score[s + 1]:
                score[s + 1] = here + w
                back[s + 1] = s
            for e in range(s + 2, n + 1):
                t = da[node, 0] + ids[e - 1]
                if da[t, 1] != node:
                    break
                node = t
                w = lp[t]
                if w != NEG_INF:
                    cand = here + w
                    if cand > score[e]:
                        score[e] = cand
                        back[e] = s
        elif unk == unk and here + unk > score[s + 1]:
            score[s + 1] = here + unk
            back[s + 1] = s


@njit(cache=True)
def reservoir_pass(ids, da, lp, unk, alpha, state, logz, back):
    """The corrected one-pass sampler (log-space reservoir, see ``kernels.reservoir_sample``)."""
    n = ids.shape[0]
    logz[0] = 0.0
    back[0] = -1
    for i in range(1, n + 1):
        logz[i] = NEG_INF
        back[i] = -1
    root = da[0, 0]
    for s in range(n):
        here = logz[s]
        if here == NEG_INF:
            continue
        c = ids[s]
        node = root + c
        if c != 0 and da[node, 1] == 0:
            w = lp[node]
            if w == NEG_INF:
                w = unk
            if w == w:
                _reservoir_push(logz, back, s, s + 1, here + alpha * w, state)
            for e in range(s + 2, n + 1):
                t = da[node, 0] + ids[e - 1]
                if da[t, 1] != node:
                    break
                node = t
                w = lp[t]
                if w != NEG_INF:
                    _reservoir_push(logz, back, s, e, here + alpha * w, state)
        elif unk == unk:
            _reservoir_push(logz, back, s, s + 1, here + alpha * unk, state)


@njit(cache=True)
def legacy_pass(ids, da, lp, unk, alpha, state, cur, back):
    """The original, biased Viterbi Sampling (see ``kernels.legacy_sample``)."""
    n = ids.shape[0]
    cur[0] = 0.0
    back[0] = -1
    for i in range(1, n + 1):
        cur[i] = NEG_INF
        back[i] = -1
    root = da[0, 0]
    for s in range(n):
        here = cur[s]
        if here == NEG_INF:
            continue
        c = ids[s]
        node = root + c
        if c != 0 and da[node, 1] == 0:
            w = lp[node]
            if w == NEG_INF:
                w = unk
            if w == w:
                _duel_push(cur, back, s, s + 1, here + w, alpha, state)
            for e in range(s + 2, n + 1):
                t = da[node, 0] + ids[e - 1]
                if da[t, 1] != node:
                    break
                node = t
                w = lp[t]
                if w != NEG_INF:
                    _duel_push(cur, back, s, e, here + w, alpha, state)
        elif unk == unk:
            _duel_push(cur, back, s, s + 1, here + unk, alpha, state)


@njit(cache=True, inline="always")
def _kbest_push(kscore, kpos, krank, kn, e, cand, s, r):
    """Insert a path of score ``cand`` (rank r at s, then the edge to e) into e's sorted top-k list."""
    k = kscore.shape[1]
    m = kn[e]
    if m == k and cand <= kscore[e, k - 1]:
        return False
    j = m if m < k else k - 1
    # ties keep the earlier path first (smaller start, then better rank)
    while j > 0 and kscore[e, j - 1] < cand:
        kscore[e, j] = kscore[e, j - 1]
        kpos[e, j] = kpos[e, j - 1]
        krank[e, j] = krank[e, j - 1]
        j -= 1
    kscore[e, j] = cand
    kpos[e, j] = s
    krank[e, j] = r
    if m < k:
        kn[e] = m + 1
    return True


@njit(cache=True)
def kbest(ids, da, lp, unk, k):
    """The ``k`` best segmentations by score (ties: the smaller start first): (scores, flat bounds, offsets).

    A top-k list per position: each edge (s, e) offers every path in s's list, best first, to e's list, and
    stops at the first that does not get in (the lists are sorted). Every path is a distinct segmentation.
    """
    n = ids.shape[0]
    kscore = np.full((n + 1, k), NEG_INF)
    kpos = np.full((n + 1, k), -1, dtype=np.int64)
    krank = np.full((n + 1, k), -1, dtype=np.int64)
    kn = np.zeros(n + 1, dtype=np.int64)
    kscore[0, 0] = 0.0
    kn[0] = 1
    root = da[0, 0]
    for s in range(n):
        if kn[s] == 0:
            continue
        c = ids[s]
        node = root + c
        if c != 0 and da[node, 1] == 0:
            w = lp[node]
            if w == NEG_INF:
                w = unk
            if w == w:
                for r in range(kn[s]):
                    if not _kbest_push(kscore, kpos, krank, kn, s + 1, kscore[s, r] + w, s, r):
                        break
            for e in range(s + 2, n + 1):
                t = da[node, 0] + ids[e - 1]
                if da[t, 1] != node:
                    break
                node = t
                w = lp[t]
                if w != NEG_INF:
                    for r in range(kn[s]):
                        if not _kbest_push(kscore, kpos, krank, kn, e, kscore[s, r] + w, s, r):
                            break
        elif unk == unk:
            for r in range(kn[s]):
                if not _kbest_push(kscore, kpos, krank, kn, s + 1, kscore[s, r] + unk, s, r):
                    break
    m = kn[n]
    scores = kscore[n, :m].copy()
    flat = np.empty(m * (n + 1), dtype=np.int64)
    offsets = np.zeros(m + 1, dtype=np.int64)
    path = np.empty(n + 1, dtype=np.int64)
    pos = 0
    for q in range(m):
        e = n
        r = q
        depth = 0
        path[0] = n
        while e > 0:
            e, r = kpos[e, r], krank[e, r]
            depth += 1
            path[depth] = e
        for j in range(depth, -1, -1):
            flat[pos] = path[j]
            pos += 1
        offsets[q + 1] = pos
    return scores, flat[:pos].copy(), offsets


@njit(cache=True)
def forward_pass(ids, da, lp, unk, alpha):
    """logZ of every prefix (no sampling)."""
    n = ids.shape[0]
    logz = np.full(n + 1, NEG_INF)
    logz[0] = 0.0
    for s in range(n):
        here = logz[s]
        if here == NEG_INF:
            continue
        node = 0
        for e in range(s + 1, n + 1):
            t = da[node, 0] + ids[e - 1]
            if da[t, 1] != node:
                break
            node = t
            w = lp[t]
            if w != NEG_INF:
                logz[e] = np.logaddexp(logz[e], here + alpha * w)
        u = _unk_lp(da, lp, unk, ids[s])
        if u == u:
            logz[s + 1] = np.logaddexp(logz[s + 1], here + alpha * u)
    return logz


@njit(cache=True)
def backward_pass(ids, da, lp, unk, alpha):
    """logZ of every suffix: logZb[s] = logsumexp over edges (s, e) of alpha * lp + logZb[e]."""
    n = ids.shape[0]
    logzb = np.full(n + 1, NEG_INF)
    logzb[n] = 0.0
    for s in range(n - 1, -1, -1):
        acc = NEG_INF
        node = 0
        for e in range(s + 1, n + 1):
            t = da[node, 0] + ids[e - 1]
            if da[t, 1] != node:
                break
            node = t
            w = lp[t]
            if w != NEG_INF and logzb[e] != NEG_INF:
                acc = np.logaddexp(acc, alpha * w + logzb[e])
        u = _unk_lp(da, lp, unk, ids[s])
        if u == u and logzb[s + 1] != NEG_INF:
            acc = np.logaddexp(acc, alpha * u + logzb[s + 1])
        logzb[s] = acc
    return logzb


@njit(cache=True)
def _draw(ids, da, lp, unk, alpha, method, state, work, back):
    """One pass of ``method``; ``work[n]`` ends as logZ (samplers) or the best score (Viterbi, legacy runs)."""
    if method == VITERBI:
        viterbi_pass(ids, da, lp, unk, work, back)
    elif method == SAMPLE:
        reservoir_pass(ids, da, lp, unk, alpha, state, work, back)
    else:
        legacy_pass(ids, da, lp, unk, alpha, state, work, back)


@njit(cache=True)
def run_many(ids, da, lp, unk, alpha, method, seed, n_samples):
    """``n_samples`` draws: (logZ or best score of the last draw, flat boundaries, offsets); -inf: none exists."""
    n = ids.shape[0]
    state = seed_state(seed)
    work = np.empty(n + 1)
    back = np.empty(n + 1, dtype=np.int64)
    flat = np.empty(n_samples * (n + 1), dtype=np.int64)
    offsets = np.zeros(n_samples + 1, dtype=np.int64)
    pos = 0
    for r in range(n_samples):
        if method == VITERBI and r > 0:
            # deterministic: every further sample is the first one
            k = offsets[1]
            flat[pos:pos + k] = flat[0:k]
            pos += k
            offsets[r + 1] = pos
            continue
        _draw(ids, da, lp, unk, alpha, method, state, work, back)
        if work[n] == NEG_INF:
            return NEG_INF, flat[:0].copy(), np.zeros(n_samples + 1, dtype=np.int64)
        b = _backtrack(back, n)
        flat[pos:pos + b.shape[0]] = b
        pos += b.shape[0]
        offsets[r + 1] = pos
    return work[n], flat[:pos].copy(), offsets


# ---------------------------------------------------------------- str in, one separated str out
@njit(cache=True)
def _emit_one(text, n, back, sep):
    """The tokens of the path in ``back`` as one string, separated by ``sep``, written from the end."""
    k = 0
    e = n
    while e > 0:
        e = back[e]
        k += 1
    out = _empty_string(text._kind, n + k - 1, text._is_ascii)
    j = n + k - 2
    start = back[n]
    for i in range(n - 1, -1, -1):
        _set_code_point(out, j, _get_code_point(text, i))
        j -= 1
        if i == start and i > 0:
            _set_code_point(out, j, sep)
            j -= 1
            start = back[start]
    return out


@njit(cache=True)
def segment_str(da, lp, cmap, unk, text, alpha, method, seed, n_samples):
    """Segment a ``str`` ``n_samples`` times (n >= 1); returns (status, sample_sep, joined, logZ or best score).

    ``da, lp, cmap, unk`` (the vocabulary) come first so that a vocabulary can bind them once.
    ``joined`` holds the samples' tokens: within a sample they are separated by the code point ``status``,
    and the samples by ``sample_sep`` (the two smallest code points absent from the text). Status
    UNSEGMENTABLE: no segmentation exists; NO_SEPARATOR: the text uses every code point below 64 (cut it
    by boundaries instead).
    """
    n = len(text)
    ids = np.empty(n, dtype=np.int32)
    present = np.uint64(0)
    size = cmap.shape[0]
    for i in range(n):
        cp = _get_code_point(text, i)
        if cp < 64:
            present |= np.uint64(1) << np.uint64(cp)
        ids[i] = cmap[cp] if cp < size else 0
    token_sep = -1
    sample_sep = -1
    for c in range(64):
        if (present >> np.uint64(c)) & np.uint64(1) == 0:
            if token_sep < 0:
                token_sep = c
            elif sample_sep < 0:
                sample_sep = c
                break
    if n_samples == 1:
        # the per-line case: one pass, the string written straight from the back-pointers
        state = seed_state(seed)
        work = np.empty(n + 1)
        back = np.empty(n + 1, dtype=np.int64)
        _draw(ids, da, lp, unk, alpha, method, state, work, back)
        if work[n] == NEG_INF:
            return UNSEGMENTABLE, -1, "", work[n]
        if token_sep < 0:
            return NO_SEPARATOR, -1, "", work[n]
        return token_sep, -1, _emit_one(text, n, back, token_sep), work[n]
    log_z, flat, offsets = run_many(ids, da, lp, unk, alpha, method, seed, n_samples)
    if log_z == NEG_INF:
        return UNSEGMENTABLE, -1, "", log_z
    if token_sep < 0 or sample_sep < 0:
        return NO_SEPARATOR, -1, "", log_z
    tokens = flat.shape[0] - n_samples  # boundaries minus one per sample
    length = n * n_samples + (tokens - n_samples) + (n_samples - 1)
    out = _empty_string(text._kind, length, text._is_ascii)
    j = 0
    for r in range(n_samples):
        if r > 0:
            _set_code_point(out, j, sample_sep)
            j += 1
        k = offsets[r] + 1
        for i in range(n):
            if i == flat[k]:
                _set_code_point(out, j, token_sep)
                j += 1
                k += 1
            _set_code_point(out, j, _get_code_point(text, i))
            j += 1
    return token_sep, sample_sep, out, log_z


@njit(cache=True)
def units_to_ids(units, cmap):
    """Alphabet ids of an int32 unit array (0 for a unit outside the alphabet)."""
    n = units.shape[0]
    ids = np.empty(n, dtype=np.int32)
    size = cmap.shape[0]
    for i in range(n):
        u = units[i]
        ids[i] = cmap[u] if 0 <= u < size else 0
    return ids


@njit(cache=True)
def segment_units(da, lp, cmap, unk, units, alpha, method, seed, n_samples):
    """Like ``segment_str`` over an int32 unit array (bytes, or a text with no free separator): boundaries."""
    return run_many(units_to_ids(units, cmap), da, lp, unk, alpha, method, seed, n_samples)


# ---------------------------------------------------------------- calling a kernel without the dispatcher
class FastKernel:
    """A numba kernel called through the compiled entry point of one declared signature.

    The dispatcher infers the type of every argument on every call (~0.1 us an array, ~2 us a ``str``); the
    entry point only unboxes them. The signature is compiled (or loaded from the on-disk cache) on the first
    call; the call sites must pass exactly these types (the entry point converts a Python int or float to the
    declared scalar type and raises OverflowError for an int out of its range).
    """

    def __init__(self, dispatcher, signature: tuple) -> None:
        self._dispatcher = dispatcher
        self._signature = signature
        self._entry = None

    def entry(self):
        """The compiled entry point (compiling the signature, or loading it from the cache, on first use)."""
        if self._entry is None:
            self._dispatcher.compile(self._signature)
            self._entry = self._dispatcher.overloads[self._signature].entry_point
        return self._entry

    def __call__(self, *args):
        return (self._entry or self.entry())(*args)


_DA = types.int32[:, ::1]
_F64 = types.float64[::1]
_I32 = types.int32[::1]
_SCALARS = (types.float64, types.int64, types.uint64, types.int64)  # alpha, method, seed, n_samples
fast_segment_str = FastKernel(segment_str, (_DA, _F64, _I32, types.float64, types.unicode_type, *_SCALARS))
fast_segment_units = FastKernel(segment_units, (_DA, _F64, _I32, types.float64, _I32, *_SCALARS))
