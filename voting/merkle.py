"""Merkle tree for the tamper-evident audit log (RFC 9162 §2.1, SHA-256; same tree as RFC 6962).

Pure functions over bytes, standard library only. Hashes are 32-byte SHA-256 digests:

* leaf hash ``H(0x00 || entry)``, interior node ``H(0x01 || left || right)``, empty tree ``H(b"")``;
* a tree of ``n`` leaves splits at ``k``, the largest power of two smaller than ``n`` (RFC 9162 §2.1.1).

Three layers:

1. list-based helpers (``merkle_root``, ``inclusion_proof``, ``consistency_proof`` and their
   ``*_from_hashes`` twins) that take the whole log in memory, written after the RFC's recursive
   definitions (§2.1.1, §2.1.3.1, §2.1.4.1);
2. verifiers (``verify_inclusion``, ``verify_consistency`` and ``*_hash`` twins) following the RFC's
   iterative algorithms (§2.1.3.2, §2.1.4.2); they return ``False`` and never raise on malformed input;
3. building blocks for a database-backed log: ``CompactRange`` for O(log n) appends,
   ``perfect_subtrees`` to decompose a leaf range into stored perfect subtrees, and
   ``inclusion_proof_from_subtrees`` / ``consistency_proof_from_subtrees`` that serve proofs through a
   ``get_subtree(start, end)`` callback with O(log n) lookups.

Storage scheme for perfect subtrees (used by layer 3): a *perfect subtree* ``(level, index)`` is the
complete binary tree over the ``2**level`` leaves ``[index * 2**level, (index + 1) * 2**level)``; level 0
holds the leaf hashes. In an append-only log such a node never changes once its last leaf exists, so a
store can persist it once, keyed by ``(level, index)`` (e.g. a table with primary key
``(level, index)`` and a 32-byte hash column; fewer than ``2 n`` rows for ``n`` leaves).
``CompactRange.append`` returns exactly the nodes completed by each append. Every node of any tree
that is not perfect lies on the right edge (``[start, size)``) and is never stored; it is rebuilt from
``perfect_subtrees(start, size)``, i.e. at most ``log2(n) + 1`` lookups (``subtree_hash``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "CompactRange",
    "canonical_json",
    "consistency_proof",
    "consistency_proof_from_hashes",
    "consistency_proof_from_subtrees",
    "inclusion_proof",
    "inclusion_proof_from_hashes",
    "inclusion_proof_from_subtrees",
    "leaf_hash",
    "merkle_root",
    "node_hash",
    "perfect_subtrees",
    "root_from_leaf_hashes",
    "subtree_getter_from_perfect",
    "subtree_hash",
    "verify_consistency",
    "verify_consistency_hash",
    "verify_inclusion",
    "verify_inclusion_hash",
]

HASH_SIZE = 32
"""Length in bytes of every hash (SHA-256)."""

EMPTY_ROOT: bytes = hashlib.sha256(b"").digest()
"""Root of the empty tree, ``SHA-256("")`` (RFC 9162 §2.1.1)."""

_sha256 = hashlib.sha256

GetSubtree = Callable[[int, int], bytes]
"""``get_subtree(start, end)``: hash of the tree node over leaves ``[start, end)`` (see
``inclusion_proof_from_subtrees``)."""

GetPerfect = Callable[[int, int], bytes]
"""``get_perfect(level, index)``: hash of the perfect subtree over leaves
``[index * 2**level, (index + 1) * 2**level)``."""


# --------------------------------------------------------------------------------------------------
# Hashing primitives


def leaf_hash(entry: bytes) -> bytes:
    """Return the leaf hash ``SHA-256(0x00 || entry)`` of a raw log entry."""
    h = _sha256(b"\x00")
    h.update(entry)
    return h.digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return the interior node hash ``SHA-256(0x01 || left || right)``."""
    h = _sha256(b"\x01")
    h.update(left)
    h.update(right)
    return h.digest()


def _split(n: int) -> int:
    """Largest power of two strictly smaller than ``n`` (``n >= 2``): the RFC's ``k``."""
    return 1 << ((n - 1).bit_length() - 1)


def _is_size(x: object) -> bool:
    """True for a non-negative ``int`` that is not a ``bool``."""
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0


def _is_hash(x: object) -> bool:
    """True for a 32-byte ``bytes``/``bytearray``."""
    return isinstance(x, bytes | bytearray) and len(x) == HASH_SIZE


def _proof_ok(proof: object) -> bool:
    """True when ``proof`` is a list/tuple of 32-byte hashes."""
    return isinstance(proof, list | tuple) and all(_is_hash(p) for p in proof)


def _check_size(name: str, value: object) -> int:
    if not _is_size(value):
        raise ValueError(f"{name} must be a non-negative int, got {value!r}")
    return value  # type: ignore[return-value]


# --------------------------------------------------------------------------------------------------
# List-based tree (whole log in memory)


def root_from_leaf_hashes(leaves: Sequence[bytes]) -> bytes:
    """Return the Merkle tree hash MTH over already-hashed leaves (RFC 9162 §2.1.1).

    Pairs adjacent nodes level by level and promotes an odd last node unchanged, which yields the same
    tree as the RFC's "split at the largest power of two" recursion. O(n) hashes.
    """
    level = list(leaves)
    if not level:
        return EMPTY_ROOT
    while len(level) > 1:
        nxt = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return bytes(level[0])


def merkle_root(entries: Sequence[bytes]) -> bytes:
    """Return the Merkle tree hash over raw entries; ``EMPTY_ROOT`` for no entries."""
    return root_from_leaf_hashes([leaf_hash(e) for e in entries])


def _mth(leaves: Sequence[bytes], lo: int, hi: int) -> bytes:
    """MTH(D[lo:hi]) over leaf hashes, ``hi > lo``, by the RFC recursion."""
    if hi - lo == 1:
        return bytes(leaves[lo])
    k = _split(hi - lo)
    return node_hash(_mth(leaves, lo, lo + k), _mth(leaves, lo + k, hi))


def inclusion_proof_from_hashes(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """Return PATH(index, D[n]) over leaf hashes (RFC 9162 §2.1.3.1), deepest sibling first.

    Raises ``ValueError`` unless ``0 <= index < len(leaves)``.
    """
    n = len(leaves)
    _check_size("index", index)
    if index >= n:
        raise ValueError(f"index {index} out of range for tree size {n}")

    def path(m: int, lo: int, hi: int) -> list[bytes]:
        if hi - lo == 1:
            return []
        k = _split(hi - lo)
        if m < k:
            return path(m, lo, lo + k) + [_mth(leaves, lo + k, hi)]
        return path(m - k, lo + k, hi) + [_mth(leaves, lo, lo + k)]

    return path(index, 0, n)


def inclusion_proof(entries: Sequence[bytes], index: int) -> list[bytes]:
    """Return the audit path of raw entry ``index`` in the tree over ``entries`` (RFC 9162 §2.1.3.1)."""
    return inclusion_proof_from_hashes([leaf_hash(e) for e in entries], index)


def consistency_proof_from_hashes(leaves: Sequence[bytes], old_size: int) -> list[bytes]:
    """Return PROOF(old_size, D[n]) over leaf hashes (RFC 9162 §2.1.4.1).

    The proof is empty for ``old_size == 0`` (every tree extends the empty tree) and for
    ``old_size == len(leaves)``. Raises ``ValueError`` unless ``0 <= old_size <= len(leaves)``.
    """
    n = len(leaves)
    _check_size("old_size", old_size)
    if old_size > n:
        raise ValueError(f"old_size {old_size} exceeds tree size {n}")
    if old_size == 0:
        return []

    def subproof(m: int, lo: int, hi: int, b: bool) -> list[bytes]:
        if m == hi - lo:
            return [] if b else [_mth(leaves, lo, hi)]
        k = _split(hi - lo)
        if m <= k:
            return subproof(m, lo, lo + k, b) + [_mth(leaves, lo + k, hi)]
        return subproof(m - k, lo + k, hi, False) + [_mth(leaves, lo, lo + k)]

    return subproof(old_size, 0, n, True)


def consistency_proof(entries: Sequence[bytes], old_size: int) -> list[bytes]:
    """Return the consistency proof between the first ``old_size`` entries and all ``entries``."""
    return consistency_proof_from_hashes([leaf_hash(e) for e in entries], old_size)


# --------------------------------------------------------------------------------------------------
# Verification (never raises)


def verify_inclusion_hash(leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> bool:
    """Check an inclusion proof for a leaf hash (RFC 9162 §2.1.3.2).

    Returns ``False`` for any malformed input: sizes that are not non-negative ints, ``index >= size``,
    hashes that are not 32 bytes, a proof of the wrong length or a proof that is not a list/tuple.

    The proof binds ``root``; a caller must take ``size`` and ``root`` together from the same signed
    tree head. (As in RFC 9162, the same path can be valid for two sizes whose trees put the leaf at
    the same position, e.g. leaf 0 of sizes 3 and 4; only the matching root makes it meaningful.)
    """
    try:
        if not (_is_size(index) and _is_size(size) and index < size):
            return False
        if not isinstance(proof, list | tuple) or len(proof) > (size - 1).bit_length():
            return False  # cheap length bound before touching the elements
        if not (_is_hash(leaf) and _is_hash(root) and _proof_ok(proof)):
            return False
        fn, sn, r = index, size - 1, bytes(leaf)
        for p in proof:
            if sn == 0:
                return False
            if fn & 1 or fn == sn:
                r = node_hash(p, r)
                if not fn & 1:
                    while not fn & 1 and fn != 0:
                        fn >>= 1
                        sn >>= 1
            else:
                r = node_hash(r, p)
            fn >>= 1
            sn >>= 1
        return sn == 0 and r == root
    except Exception:  # pragma: no cover - defensive: verification must never raise
        return False


def verify_inclusion(entry: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> bool:
    """Check that raw ``entry`` is leaf ``index`` of the tree of ``size`` leaves with ``root``."""
    if not isinstance(entry, bytes | bytearray | memoryview):
        return False
    return verify_inclusion_hash(leaf_hash(entry), index, size, proof, root)


def verify_consistency_hash(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """Check a consistency proof between two tree heads (RFC 9162 §2.1.4.2).

    Edge cases (the RFC only defines ``0 < old_size < new_size``), as in transparency-dev/merkle:
    ``old_size == new_size`` needs an empty proof and equal roots; ``old_size == 0`` needs an empty
    proof and ``old_root == EMPTY_ROOT`` (``new_root`` is then only checked to be 32 bytes). Any
    malformed input yields ``False``.
    """
    try:
        if not (_is_size(old_size) and _is_size(new_size) and old_size <= new_size):
            return False
        if not isinstance(proof, list | tuple) or len(proof) > 2 * new_size.bit_length() + 2:
            return False  # generous cheap bound (real proofs have <= log2(new_size) + 1 elements)
        if not (_is_hash(old_root) and _is_hash(new_root) and _proof_ok(proof)):
            return False
        if old_size == new_size:
            return len(proof) == 0 and old_root == new_root
        if old_size == 0:
            return len(proof) == 0 and old_root == EMPTY_ROOT
        if len(proof) == 0:
            return False
        path = list(proof)
        if old_size & (old_size - 1) == 0:  # exact power of two
            path.insert(0, bytes(old_root))
        fn, sn = old_size - 1, new_size - 1
        while fn & 1:
            fn >>= 1
            sn >>= 1
        fr = sr = bytes(path[0])
        for c in path[1:]:
            if sn == 0:
                return False
            if fn & 1 or fn == sn:
                fr = node_hash(c, fr)
                sr = node_hash(c, sr)
                if not fn & 1:
                    while not fn & 1 and fn != 0:
                        fn >>= 1
                        sn >>= 1
            else:
                sr = node_hash(sr, c)
            fn >>= 1
            sn >>= 1
        return sn == 0 and fr == old_root and sr == new_root
    except Exception:  # pragma: no cover - defensive: verification must never raise
        return False


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """Check that the tree ``(new_size, new_root)`` extends ``(old_size, old_root)`` (RFC 9162 §2.1.4.2).

    Same as ``verify_consistency_hash``: a consistency proof contains only node hashes.
    """
    return verify_consistency_hash(old_size, new_size, old_root, new_root, proof)


# --------------------------------------------------------------------------------------------------
# Perfect-subtree decomposition and proofs through a subtree callback


def perfect_subtrees(start: int, end: int) -> list[tuple[int, int]]:
    """Split leaves ``[start, end)`` into maximal aligned perfect subtrees, left to right.

    Returns ``(level, index)`` pairs; ``(level, index)`` covers ``[index << level, (index + 1) << level)``.
    This is the "compact range" decomposition: levels first rise, then fall, and there are at most
    ``2 * log2(end - start) + 2`` pieces. For a range that is a node of the tree (see
    ``subtree_hash``) levels strictly decrease, so there are at most ``log2(end - start) + 1`` pieces.
    ``perfect_subtrees(0, n)`` matches the set bits of ``n``, i.e. the hashes ``CompactRange`` keeps.
    Raises ``ValueError`` unless ``0 <= start <= end``.
    """
    _check_size("start", start)
    _check_size("end", end)
    if start > end:
        raise ValueError(f"start {start} > end {end}")
    out: list[tuple[int, int]] = []
    while start < end:
        level = (end - start).bit_length() - 1
        if start:
            level = min(level, (start & -start).bit_length() - 1)
        out.append((level, start >> level))
        start += 1 << level
    return out


def _is_node_range(start: int, end: int) -> bool:
    """True if ``[start, end)`` is a node of the tree of size ``end`` (or a perfect subtree)."""
    width = end - start
    if width <= 0:
        return False
    span = 1 << (width - 1).bit_length()  # smallest power of two >= width
    return start % span == 0


def subtree_hash(start: int, end: int, get_perfect: GetPerfect) -> bytes:
    """Hash of the tree node over leaves ``[start, end)`` from stored perfect-subtree hashes.

    ``[start, end)`` must be a node of the Merkle tree: either a perfect subtree (``end - start`` a
    power of two and ``start`` a multiple of it) or a right-edge node of the tree of size ``end``
    (``start`` a multiple of the smallest power of two ``>= end - start``). Every ``get_subtree``
    request issued by the ``*_from_subtrees`` proof functions has this form, and ``[0, n)`` (the root)
    does too. The hash is the right fold ``H(p1, H(p2, ... pk))`` of ``perfect_subtrees(start, end)``,
    so it costs at most ``log2(end - start) + 1`` ``get_perfect(level, index)`` lookups.
    Raises ``ValueError`` for ranges that are not tree nodes.
    """
    _check_size("start", start)
    _check_size("end", end)
    if not _is_node_range(start, end):
        raise ValueError(f"[{start}, {end}) is not a node of a Merkle tree")
    pieces = perfect_subtrees(start, end)
    acc = bytes(get_perfect(*pieces[-1]))
    for level, index in reversed(pieces[:-1]):
        acc = node_hash(get_perfect(level, index), acc)
    return acc


def subtree_getter_from_perfect(get_perfect: GetPerfect) -> GetSubtree:
    """Adapt a ``get_perfect(level, index)`` store lookup into a ``get_subtree(start, end)`` callback.

    Use it with ``inclusion_proof_from_subtrees`` / ``consistency_proof_from_subtrees`` when the
    store keeps perfect subtrees keyed by ``(level, index)`` (see the module docstring).
    """

    def get_subtree(start: int, end: int) -> bytes:
        return subtree_hash(start, end, get_perfect)

    return get_subtree


def inclusion_proof_from_subtrees(index: int, size: int, get_subtree: GetSubtree) -> list[bytes]:
    """Return PATH(index, D[size]) (RFC 9162 §2.1.3.1) fetching node hashes via ``get_subtree``.

    ``get_subtree(start, end)`` must return MTH over leaves ``[start, end)``; it is only called for
    tree nodes (see ``subtree_hash``), at most ``log2(size) + 1`` times, and at most one call is for a
    non-perfect (right-edge) node. With ``subtree_getter_from_perfect`` the whole proof costs
    O(log n) store lookups. Byte-identical to ``inclusion_proof_from_hashes``.
    Raises ``ValueError`` unless ``0 <= index < size``.
    """
    _check_size("index", index)
    _check_size("size", size)
    if index >= size:
        raise ValueError(f"index {index} out of range for tree size {size}")
    proof: list[bytes] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            proof.append(bytes(get_subtree(lo + k, hi)))
            hi = lo + k
        else:
            proof.append(bytes(get_subtree(lo, lo + k)))
            lo += k
    proof.reverse()
    return proof


def consistency_proof_from_subtrees(old_size: int, new_size: int, get_subtree: GetSubtree) -> list[bytes]:
    """Return PROOF(old_size, D[new_size]) (RFC 9162 §2.1.4.1) fetching node hashes via ``get_subtree``.

    Same contract for ``get_subtree`` as ``inclusion_proof_from_subtrees`` (tree nodes only, at most
    ``log2(new_size) + 1`` calls, at most one non-perfect node). Byte-identical to
    ``consistency_proof_from_hashes``; empty for ``old_size`` 0 or ``new_size``.
    Raises ``ValueError`` unless ``0 <= old_size <= new_size``.
    """
    _check_size("old_size", old_size)
    _check_size("new_size", new_size)
    if old_size > new_size:
        raise ValueError(f"old_size {old_size} exceeds new_size {new_size}")
    if old_size == 0 or old_size == new_size:
        return []
    proof: list[bytes] = []
    lo, hi, m, complete = 0, new_size, old_size, True
    while m != hi - lo:
        k = _split(hi - lo)
        if m <= k:
            proof.append(bytes(get_subtree(lo + k, hi)))
            hi = lo + k
        else:
            proof.append(bytes(get_subtree(lo, lo + k)))
            lo += k
            m -= k
            complete = False
    if not complete:
        proof.append(bytes(get_subtree(lo, hi)))
    proof.reverse()
    return proof


# --------------------------------------------------------------------------------------------------
# Incremental tree: compact range over [0, size)


class CompactRange:
    """Right edge of a growing Merkle tree: O(log n) state, O(log n) appends, no rehash of the log.

    Holds one hash per set bit of ``size``: the perfect subtrees ``perfect_subtrees(0, size)``, largest
    (leftmost) first, so at most ``log2(size) + 1`` hashes. ``append`` costs at most ``log2(size)``
    node hashes (amortised one) and ``root`` at most ``log2(size)``.

    Persistence: store ``size`` and ``hashes`` (restore with ``CompactRange(size, hashes)``), or
    ``to_list()`` pairs ``(level, hash)`` (restore with ``CompactRange.from_list``; the size follows
    from the levels). ``CompactRange.from_perfect`` rebuilds it from a perfect-subtree store.
    """

    __slots__ = ("_size", "_hashes")

    def __init__(self, size: int = 0, hashes: Iterable[bytes] = ()) -> None:
        _check_size("size", size)
        hs = [bytes(h) for h in hashes]
        if len(hs) != size.bit_count():
            raise ValueError(f"size {size} needs {size.bit_count()} hashes, got {len(hs)}")
        if not all(len(h) == HASH_SIZE for h in hs):
            raise ValueError("every hash must be 32 bytes")
        self._size = size
        self._hashes = hs

    @classmethod
    def from_list(cls, items: Iterable[tuple[int, bytes]]) -> CompactRange:
        """Restore from ``(level, hash)`` pairs as returned by ``to_list`` (strictly decreasing levels)."""
        size, hashes, prev = 0, [], None
        for level, h in items:
            _check_size("level", level)
            if prev is not None and level >= prev:
                raise ValueError("levels must be strictly decreasing")
            prev = level
            size += 1 << level
            hashes.append(h)
        return cls(size, hashes)

    @classmethod
    def from_perfect(cls, size: int, get_perfect: GetPerfect) -> CompactRange:
        """Rebuild from a perfect-subtree store with ``bit_count(size)`` lookups."""
        return cls(size, [get_perfect(level, index) for level, index in perfect_subtrees(0, size)])

    @property
    def size(self) -> int:
        """Number of leaves appended so far."""
        return self._size

    @property
    def hashes(self) -> list[bytes]:
        """Copy of the stored perfect-subtree hashes, largest subtree first."""
        return list(self._hashes)

    def to_list(self) -> list[tuple[int, bytes]]:
        """Return ``(level, hash)`` pairs, largest subtree first (inverse of ``from_list``)."""
        levels = [lvl for lvl in range(self._size.bit_length() - 1, -1, -1) if self._size >> lvl & 1]
        return list(zip(levels, self._hashes, strict=True))

    def nodes(self) -> list[tuple[int, int, bytes]]:
        """Return ``(level, index, hash)`` for each stored perfect subtree, largest first."""
        return [
            (level, index, h)
            for (level, index), h in zip(perfect_subtrees(0, self._size), self._hashes, strict=True)
        ]

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Append a leaf hash; return the perfect subtrees this completes, bottom-up.

        The result always starts with ``(0, old_size, leaf)`` and then lists every interior perfect
        subtree ``(level, index, hash)`` that became complete; a store that keeps perfect subtrees keyed
        by ``(level, index)`` persists exactly these rows. Raises ``ValueError`` for a non-32-byte leaf.
        """
        if not _is_hash(leaf):
            raise ValueError("leaf must be a 32-byte leaf hash (use leaf_hash(entry))")
        h = bytes(leaf)
        n, level, index = self._size, 0, self._size
        completed = [(0, index, h)]
        while n & 1:
            h = node_hash(self._hashes.pop(), h)
            n >>= 1
            level += 1
            index >>= 1
            completed.append((level, index, h))
        self._hashes.append(h)
        self._size += 1
        return completed

    def append_entry(self, entry: bytes) -> list[tuple[int, int, bytes]]:
        """Append a raw entry (hashed with ``leaf_hash``); see ``append``."""
        return self.append(leaf_hash(entry))

    def extend(self, leaves: Iterable[bytes]) -> None:
        """Append several leaf hashes."""
        for leaf in leaves:
            self.append(leaf)

    def root(self) -> bytes:
        """Return the Merkle tree hash of the ``size`` leaves; ``EMPTY_ROOT`` when empty."""
        if not self._hashes:
            return EMPTY_ROOT
        acc = self._hashes[-1]
        for h in reversed(self._hashes[:-1]):
            acc = node_hash(h, acc)
        return acc

    def copy(self) -> CompactRange:
        """Return an independent copy."""
        return CompactRange(self._size, self._hashes)

    def __len__(self) -> int:
        return self._size

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CompactRange):
            return NotImplemented
        return self._size == other._size and self._hashes == other._hashes

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"CompactRange(size={self._size}, root={self.root().hex()})"


# --------------------------------------------------------------------------------------------------
# Canonical JSON for log entries


def _check_json(obj: Any, depth: int = 0) -> None:
    if depth > 100:
        raise ValueError("JSON value nested too deeply")
    if obj is None or isinstance(obj, bool | str):
        return
    if isinstance(obj, float):
        raise ValueError("floats are not allowed in canonical JSON; use int or a decimal string")
    if isinstance(obj, int):
        return
    if isinstance(obj, dict):
        for key, value in obj.items():
            if not isinstance(key, str):
                raise TypeError(f"JSON object keys must be str, got {type(key).__name__}")
            _check_json(value, depth + 1)
        return
    if isinstance(obj, list | tuple):
        for value in obj:
            _check_json(value, depth + 1)
        return
    raise TypeError(f"type {type(obj).__name__} is not allowed in canonical JSON")


def canonical_json(obj: Any) -> bytes:
    """Serialise a log entry to canonical JSON bytes (the input to ``leaf_hash``).

    Keys sorted (by Unicode code point), separators ``","``/``":"``, no whitespace, UTF-8 without
    ``\\u`` escapes for non-ASCII (``ensure_ascii=False``). Allowed: ``None``, ``bool``, ``int``,
    ``str``, ``list``/``tuple`` and ``dict`` with ``str`` keys.

    Floats are rejected entirely (``ValueError``, which covers NaN and ±Infinity): their text form
    differs between languages and serialisers, which would break independent re-verification of the
    log; store amounts as ``int`` (e.g. cents) or decimal strings. Non-``str`` keys and other types
    raise ``TypeError`` (``json`` would silently turn ``1`` into ``"1"`` and make ``{1: .., "1": ..}``
    ambiguous). Strings with lone surrogates raise ``UnicodeEncodeError`` (a ``ValueError``).
    """
    _check_json(obj)
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return text.encode("utf-8")
