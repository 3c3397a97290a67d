"""Tests for voting.merkle: RFC 9162 §2.1 Merkle tree, proofs, compact range and canonical JSON."""

from __future__ import annotations

import base64
import hashlib
import json
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from voting.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    CompactRange,
    canonical_json,
    consistency_proof,
    consistency_proof_from_hashes,
    consistency_proof_from_subtrees,
    inclusion_proof,
    inclusion_proof_from_hashes,
    inclusion_proof_from_subtrees,
    leaf_hash,
    merkle_root,
    node_hash,
    perfect_subtrees,
    root_from_leaf_hashes,
    subtree_getter_from_perfect,
    subtree_hash,
    verify_consistency,
    verify_consistency_hash,
    verify_inclusion,
    verify_inclusion_hash,
)

VECTORS = Path(__file__).resolve().parent.parent / "fixtures" / "merkle-vectors"
INCLUSION_FILES = sorted((VECTORS / "inclusion").glob("*/*.json"))
CONSISTENCY_FILES = sorted((VECTORS / "consistency").glob("*/*.json"))

# The standard RFC 6962 test entries (certificate-transparency / transparency-dev test data).
RFC_ENTRIES = [
    bytes.fromhex(h)
    for h in [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
]

# Published roots for the first 1..8 entries (transparency-dev/merkle testonly/constants.go RootHashes).
PUBLISHED_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]

# Published reference proofs over the same entries (certificate-transparency merkle_tree_test /
# transparency-dev testonly reference tests), leaf indices 0-based.
PUBLISHED_INCLUSION = [
    (0, 1, []),
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]
PUBLISHED_CONSISTENCY = [
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]


# --------------------------------------------------------------------------------------------------
# Independent reference implementation, written directly from the RFC text (no code shared with
# voting.merkle).


def _h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _k(n: int) -> int:
    """Largest power of two strictly smaller than n (n > 1), by counting up."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(entries: list[bytes]) -> bytes:
    """MTH(D[n]) exactly as RFC 9162 §2.1.1 defines it, over raw entries."""
    n = len(entries)
    if n == 0:
        return _h(b"")
    if n == 1:
        return _h(b"\x00" + entries[0])
    k = _k(n)
    return _h(b"\x01" + ref_mth(entries[:k]) + ref_mth(entries[k:]))


def ref_root_from_path(leaf: bytes, m: int, n: int, proof: list[bytes]) -> bytes | None:
    """Recompute the root from an audit path by walking PATH's recursion; None if the shape is wrong."""
    if not 0 <= m < n:
        return None
    if n == 1:
        return leaf if not proof else None
    if not proof:
        return None
    *rest, top = proof
    k = _k(n)
    if m < k:
        sub = ref_root_from_path(leaf, m, k, rest)
        return None if sub is None else _h(b"\x01" + sub + top)
    sub = ref_root_from_path(leaf, m - k, n - k, rest)
    return None if sub is None else _h(b"\x01" + top + sub)


def ref_verify_inclusion(leaf: bytes, m: int, n: int, proof: list[bytes], root: bytes) -> bool:
    """Reference inclusion check: the recursive recomputation equals the root."""
    return ref_root_from_path(leaf, m, n, proof) == root


def _ref_sub(m: int, n: int, b: bool, proof: list[bytes], old_root: bytes):
    """Walk SUBPROOF(m, D[n], b) backwards; return (old subtree hash, new subtree hash) or None."""
    if m == n:
        if b:
            return (old_root, old_root) if not proof else None
        return (proof[0], proof[0]) if len(proof) == 1 else None
    if not proof:
        return None
    *rest, top = proof
    k = _k(n)
    if m <= k:
        sub = _ref_sub(m, k, b, rest, old_root)
        return None if sub is None else (sub[0], _h(b"\x01" + sub[1] + top))
    sub = _ref_sub(m - k, n - k, False, rest, old_root)
    if sub is None:
        return None
    return (_h(b"\x01" + top + sub[0]), _h(b"\x01" + top + sub[1]))


def ref_verify_consistency(m: int, n: int, old_root: bytes, new_root: bytes, proof: list[bytes]) -> bool:
    """Reference consistency check for 0 < m <= n via the recursive PROOF definition."""
    if not 0 < m <= n:
        return False
    if m == n:
        return not proof and old_root == new_root
    got = _ref_sub(m, n, True, proof, old_root)
    return got is not None and got == (old_root, new_root)


def flip(h: bytes, bit: int) -> bytes:
    """Return ``h`` with one bit flipped."""
    b = bytearray(h)
    b[bit // 8] ^= 1 << (bit % 8)
    return bytes(b)


def distinct_entries(n: int, salt: bytes = b"") -> list[bytes]:
    """n distinct raw entries."""
    return [salt + i.to_bytes(4, "big") for i in range(n)]


# Sizes drawn uniformly from 1..70 (plain st.lists would mostly produce tiny trees); entries distinct.
entries_st = st.integers(1, 70).flatmap(
    lambda n: st.lists(st.binary(max_size=12), min_size=n, max_size=n, unique=True)
)
PROPS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --------------------------------------------------------------------------------------------------
# Published vectors


def _b64(v: str | None) -> bytes:
    return base64.b64decode(v or "")


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def test_vector_fixtures_present() -> None:
    """The copied transparency-dev vectors (with licence and provenance) are all there."""
    assert (VECTORS / "LICENSE").is_file()
    assert (VECTORS / "SOURCES.md").is_file()
    assert len(INCLUSION_FILES) == 31
    assert len(CONSISTENCY_FILES) == 22


@pytest.mark.parametrize("path", INCLUSION_FILES, ids=lambda p: "/".join(p.parts[-2:]))
def test_inclusion_vector(path: Path) -> None:
    """Each inclusion vector verifies iff wantErr is false; happy paths are reproduced exactly."""
    v = _load(path)
    proof = [_b64(p) for p in (v["proof"] or [])]
    leaf, root = _b64(v["leafHash"]), _b64(v["root"])
    ok = verify_inclusion_hash(leaf, v["leafIdx"], v["treeSize"], proof, root)
    assert ok is (not v["wantErr"])
    if not v["wantErr"]:
        entries = RFC_ENTRIES[: v["treeSize"]]
        assert leaf == leaf_hash(entries[v["leafIdx"]])
        assert verify_inclusion(entries[v["leafIdx"]], v["leafIdx"], v["treeSize"], proof, root)
        assert merkle_root(entries) == root
        assert inclusion_proof(entries, v["leafIdx"]) == proof


@pytest.mark.parametrize("path", CONSISTENCY_FILES, ids=lambda p: "/".join(p.parts[-2:]))
def test_consistency_vector(path: Path) -> None:
    """Each consistency vector verifies iff wantErr is false; happy paths are reproduced exactly."""
    v = _load(path)
    proof = [_b64(p) for p in (v["proof"] or [])]
    root1, root2 = _b64(v["root1"]), _b64(v["root2"])
    ok = verify_consistency(v["size1"], v["size2"], root1, root2, proof)
    assert ok is (not v["wantErr"])
    assert verify_consistency_hash(v["size1"], v["size2"], root1, root2, proof) is ok
    if not v["wantErr"]:
        entries = RFC_ENTRIES[: v["size2"]]
        assert merkle_root(entries[: v["size1"]]) == root1
        assert merkle_root(entries) == root2
        assert consistency_proof(entries, v["size1"]) == proof


def test_rfc6962_roots_naive_and_published() -> None:
    """Roots over the 8 standard entries equal the naive RFC MTH and the published hex roots."""
    assert merkle_root([]) == EMPTY_ROOT == ref_mth([]) == hashlib.sha256(b"").digest()
    for n in range(1, 9):
        expected = ref_mth(RFC_ENTRIES[:n])
        assert merkle_root(RFC_ENTRIES[:n]) == expected
        assert expected.hex() == PUBLISHED_ROOTS[n - 1]
    assert (
        merkle_root(RFC_ENTRIES).hex() == "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
    )


@pytest.mark.parametrize("index,size,expected", PUBLISHED_INCLUSION)
def test_published_inclusion_proofs(index: int, size: int, expected: list[str]) -> None:
    """Inclusion proofs equal the published certificate-transparency reference paths and verify."""
    entries = RFC_ENTRIES[:size]
    proof = inclusion_proof(entries, index)
    assert [p.hex() for p in proof] == expected
    assert verify_inclusion(entries[index], index, size, proof, bytes.fromhex(PUBLISHED_ROOTS[size - 1]))


@pytest.mark.parametrize("old,new,expected", PUBLISHED_CONSISTENCY)
def test_published_consistency_proofs(old: int, new: int, expected: list[str]) -> None:
    """Consistency proofs equal the published certificate-transparency reference proofs and verify."""
    proof = consistency_proof(RFC_ENTRIES[:new], old)
    assert [p.hex() for p in proof] == expected
    r1, r2 = bytes.fromhex(PUBLISHED_ROOTS[old - 1]), bytes.fromhex(PUBLISHED_ROOTS[new - 1])
    assert verify_consistency(old, new, r1, r2, proof)


# --------------------------------------------------------------------------------------------------
# Primitives and exhaustive small trees


def test_hash_primitives() -> None:
    """leaf_hash and node_hash use the RFC domain-separation prefixes 0x00 and 0x01."""
    assert leaf_hash(b"abc") == _h(b"\x00abc")
    assert leaf_hash(bytearray(b"abc")) == leaf_hash(memoryview(b"abc")) == _h(b"\x00abc")
    left, right = _h(b"l"), _h(b"r")
    assert node_hash(left, right) == _h(b"\x01" + left + right)
    assert HASH_SIZE == len(EMPTY_ROOT) == 32


def test_exhaustive_small_trees_match_reference() -> None:
    """For n <= 33, roots match ref_mth and every proof passes both verifiers and the reference ones."""
    for n in range(0, 34):
        entries = distinct_entries(n)
        leaves = [leaf_hash(e) for e in entries]
        root = ref_mth(entries)
        assert merkle_root(entries) == root_from_leaf_hashes(leaves) == root
        for i in range(n):
            proof = inclusion_proof(entries, i)
            assert len(proof) <= (n - 1).bit_length()
            assert ref_verify_inclusion(leaves[i], i, n, proof, root)
            assert verify_inclusion(entries[i], i, n, proof, root)
        for m in range(0, n + 1):
            proof = consistency_proof(entries, m)
            old_root = ref_mth(entries[:m])
            assert verify_consistency(m, n, old_root, root, proof)
            if m:
                assert ref_verify_consistency(m, n, old_root, root, proof)


def test_inclusion_proof_does_not_bind_size_when_path_shape_matches() -> None:
    """Documented RFC property: leaf 0's path in size 3 also verifies as size 4 against the size-3 root.

    Hence callers must take (size, root) together from one signed tree head.
    """
    entries = distinct_entries(3)
    proof, root = inclusion_proof(entries, 0), merkle_root(entries)
    assert verify_inclusion(entries[0], 0, 4, proof, root)
    assert not verify_inclusion(entries[0], 0, 5, proof, root)


GOOD = "good"  # placeholder for the correct root of the one-entry tree [b"x"]


def test_extra_proof_element_with_extended_root_rejected() -> None:
    """Once the path has reached the root (sn == 0), a further element fails even with a forged root."""
    entries = distinct_entries(3)
    proof, root, x = inclusion_proof(entries, 2), merkle_root(entries), leaf_hash(b"x")
    assert verify_inclusion(entries[2], 2, 3, proof, root)
    assert not verify_inclusion(entries[2], 2, 3, proof + [x], node_hash(x, root))
    entries = distinct_entries(5)
    cproof, old_root, root = consistency_proof(entries, 3), merkle_root(entries[:3]), merkle_root(entries)
    assert verify_consistency(3, 5, old_root, root, cproof)
    assert not verify_consistency(3, 5, node_hash(x, old_root), node_hash(x, root), cproof + [x])


@pytest.mark.parametrize(
    "entry,index,size,proof,root",
    [
        (b"x", 0, 1, [], "not bytes"),
        (b"x", 0, 1, [], b"\x00" * 31),
        (b"x", -1, 1, [], GOOD),
        (b"x", 1, 1, [], GOOD),
        (b"x", 0, 0, [], GOOD),
        (b"x", True, 2, [], GOOD),
        (b"x", 0, True, [], GOOD),
        (b"x", 0.0, 1, [], GOOD),
        (b"x", "0", 1, [], GOOD),
        (b"x", 0, None, [], GOOD),
        (b"x", 0, 1, None, GOOD),
        (b"x", 0, 2, "garbage", GOOD),
        (b"x", 0, 2, [b"short"], GOOD),
        (b"x", 0, 2, [123], GOOD),
        (b"x", 0, 2, [None], GOOD),
        (b"x", 0, 2, b"\x00" * 32, GOOD),
        (b"x", 0, 2, [b"\x00" * 32, b"\x00" * 32], GOOD),
        (b"x", 0, 2**70, [b"\x00" * 32], GOOD),
        (b"x", 2**64 - 1, 1, [], GOOD),
        ("x", 0, 1, [], GOOD),
        (None, 0, 1, [], GOOD),
    ],
)
def test_verify_inclusion_malformed_returns_false(entry, index, size, proof, root) -> None:
    """Malformed inclusion inputs give False and never raise."""
    root = merkle_root([b"x"]) if root == GOOD else root
    assert verify_inclusion(b"x", 0, 1, [], merkle_root([b"x"]))  # the unmodified call is valid
    assert verify_inclusion(entry, index, size, proof, root) is False
    leaf = leaf_hash(entry) if isinstance(entry, bytes) else entry
    assert verify_inclusion_hash(leaf, index, size, proof, root) is False


@pytest.mark.parametrize(
    "old,new,old_root,new_root,proof",
    [
        (2, 1, "r2", "r1", []),
        (-1, 2, "r1", "r2", []),
        (1, 2, "r1", "r2", None),
        (1, 2, "r1", "r2", "garbage"),
        (1, 2, "r1", "r2", [b"\x00" * 31]),
        (1, 2, "r1", "r2", [1]),
        (1, 2, "r1", "r2", []),
        (1, 2, b"short", "r2", "proof"),
        (1, 2, "r1", None, "proof"),
        (1, 2, "r1", "r2", "proof+extra"),
        (True, 2, "r1", "r2", "proof"),
        (1, 2.0, "r1", "r2", "proof"),
        ("1", 2, "r1", "r2", "proof"),
        (1, 1, "r1", "r2", []),
        (1, 1, "r1", "r1", "proof"),
        (0, 2, "r1", "r2", []),
        (0, 2, EMPTY_ROOT, "r2", "proof"),
        (1, 2**80, "r1", "r2", "proof"),
    ],
)
def test_verify_consistency_malformed_returns_false(old, new, old_root, new_root, proof) -> None:
    """Malformed consistency inputs give False and never raise."""
    entries = [b"a", b"b"]
    named = {"r1": merkle_root(entries[:1]), "r2": merkle_root(entries)}
    good = consistency_proof(entries, 1)
    proofs = {"proof": good, "proof+extra": good + good}
    old_root = named.get(old_root, old_root) if isinstance(old_root, str) else old_root
    new_root = named.get(new_root, new_root) if isinstance(new_root, str) else new_root
    proof = proofs.get(proof, proof) if isinstance(proof, str) else proof
    assert verify_consistency(old, new, old_root, new_root, proof) is False
    assert verify_consistency_hash(old, new, old_root, new_root, proof) is False


def test_consistency_edge_cases() -> None:
    """Sizes equal need equal roots and no proof; from the empty tree the old root must be EMPTY_ROOT."""
    r = merkle_root([b"a", b"b"])
    assert verify_consistency(2, 2, r, r, [])
    assert verify_consistency(0, 2, EMPTY_ROOT, r, [])
    assert verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    assert not verify_consistency(0, 2, r, r, [])


def test_generators_reject_bad_arguments() -> None:
    """Proof generators raise ValueError for out-of-range indices and sizes."""
    entries = distinct_entries(3)
    get = subtree_getter_from_perfect(lambda level, index: b"\x00" * 32)
    for call in (
        lambda: inclusion_proof(entries, 3),
        lambda: inclusion_proof(entries, -1),
        lambda: inclusion_proof([], 0),
        lambda: consistency_proof(entries, 4),
        lambda: consistency_proof(entries, -1),
        lambda: inclusion_proof_from_subtrees(3, 3, get),
        lambda: consistency_proof_from_subtrees(4, 3, get),
        lambda: perfect_subtrees(3, 2),
        lambda: subtree_hash(1, 3, lambda level, index: b"\x00" * 32),
        lambda: subtree_hash(2, 2, lambda level, index: b"\x00" * 32),
    ):
        with pytest.raises(ValueError):
            call()


# --------------------------------------------------------------------------------------------------
# Property tests


@PROPS
@given(entries=entries_st, rnd=st.randoms(use_true_random=False))
def test_inclusion_properties(entries: list[bytes], rnd: random.Random) -> None:
    """Every index's proof verifies; a flipped bit in proof, root or leaf, or another index, fails.

    A changed size is judged by the recursive reference verifier: it fails whenever the path shape
    differs (the RFC proof itself does not bind the size, see the dedicated test).
    """
    n = len(entries)
    leaves = [leaf_hash(e) for e in entries]
    root = merkle_root(entries)
    for i in range(n):
        proof = inclusion_proof(entries, i)
        assert verify_inclusion(entries[i], i, n, proof, root)
        assert verify_inclusion_hash(leaves[i], i, n, tuple(proof), root)
        for j in range(len(proof)):
            bad = list(proof)
            bad[j] = flip(bad[j], rnd.randrange(256))
            assert not verify_inclusion(entries[i], i, n, bad, root)
        assert not verify_inclusion(entries[i], i, n, proof, flip(root, rnd.randrange(256)))
        assert not verify_inclusion_hash(flip(leaves[i], rnd.randrange(256)), i, n, proof, root)
        assert not verify_inclusion(entries[i], i, n, proof[:-1], root) or not proof
        assert not verify_inclusion(entries[i], i, n, proof + [root], root)
        # An extra element with a matching "extended" root must not pass for the claimed size.
        extra = leaves[(i + 1) % n]
        assert not verify_inclusion(entries[i], i, n, proof + [extra], node_hash(extra, root))
        assert not verify_inclusion(entries[i], i, n, proof + [extra], node_hash(root, extra))
        for other in {i - 1, i + 1, i ^ 2, rnd.randrange(n), n, 2**64 - 1} - {i}:
            assert not verify_inclusion(entries[i], other, n, proof, root)
        for size in {n - 1, n + 1, 2 * n, n // 2, rnd.randrange(1, 2 * n + 2)} - {n}:
            got = verify_inclusion_hash(leaves[i], i, size, proof, root)
            assert got == ref_verify_inclusion(leaves[i], i, size, proof, root)


@PROPS
@given(entries=entries_st, rnd=st.randoms(use_true_random=False))
def test_consistency_properties(entries: list[bytes], rnd: random.Random) -> None:
    """Every old size's proof verifies; a flipped bit in proof or either root fails; changed sizes
    agree with the recursive reference verifier (and differently shaped proofs fail)."""
    n = len(entries)
    roots = [merkle_root(entries[:m]) for m in range(n + 1)]
    new_root = roots[n]
    for m in range(n + 1):
        proof = consistency_proof(entries, m)
        old_root = roots[m]
        assert verify_consistency(m, n, old_root, new_root, proof)
        for j in range(len(proof)):
            bad = list(proof)
            bad[j] = flip(bad[j], rnd.randrange(256))
            assert not verify_consistency(m, n, old_root, new_root, bad)
        assert not verify_consistency(m, n, flip(old_root, rnd.randrange(256)), new_root, proof)
        if m > 0:  # nothing binds the new root to the empty tree
            assert not verify_consistency(m, n, old_root, flip(new_root, rnd.randrange(256)), proof)
            assert not verify_consistency(m, n, old_root, new_root, proof + [old_root])
            # An extra element with matching "extended" roots must not pass for the claimed sizes.
            x = leaf_hash(b"extra")
            assert not verify_consistency(m, n, node_hash(x, old_root), node_hash(x, new_root), proof + [x])
        if proof:
            assert not verify_consistency(m, n, old_root, new_root, proof[:-1])
            assert not verify_consistency(m, n, old_root, new_root, proof[1:])
        if 0 < m < n:
            assert not verify_consistency(m, n, new_root, old_root, proof)
        for m2 in {m - 1, m + 1, m ^ 2, rnd.randrange(n + 1)} - {m}:
            if 0 < m2 <= n:
                got = verify_consistency(m2, n, old_root, new_root, proof)
                assert got == ref_verify_consistency(m2, n, old_root, new_root, proof)
        if m > 0:
            for n2 in {n - 1, n + 1, 2 * n, rnd.randrange(m, 2 * n + 2)} - {n}:
                got = verify_consistency(m, n2, old_root, new_root, proof)
                assert got == ref_verify_consistency(m, n2, old_root, new_root, proof)


@PROPS
@given(entries=entries_st)
def test_compact_range_matches_merkle_root(entries: list[bytes]) -> None:
    """CompactRange root equals merkle_root after every append; state stays within log2(n)+1 hashes
    and survives serialisation; append reports exactly the perfect subtrees it completes."""
    cr = CompactRange()
    assert cr.root() == EMPTY_ROOT and cr.size == 0 and cr.to_list() == []
    store: dict[tuple[int, int], bytes] = {}
    for i, e in enumerate(entries):
        completed = cr.append_entry(e)
        assert completed[0] == (0, i, leaf_hash(e))
        for level, index, h in completed:
            start = index << level
            assert h == ref_mth(entries[start : start + (1 << level)])
            assert (level, index) not in store
            store[(level, index)] = h
        n = i + 1
        assert cr.size == len(cr) == n
        assert cr.root() == merkle_root(entries[:n]) == ref_mth(entries[:n])
        assert len(cr.hashes) == n.bit_count() <= n.bit_length()
        assert CompactRange.from_list(cr.to_list()) == cr
        assert CompactRange(cr.size, cr.hashes) == cr
        assert CompactRange.from_perfect(n, lambda level, index: store[(level, index)]) == cr
        assert [(lvl, idx) for lvl, idx, _ in cr.nodes()] == perfect_subtrees(0, n)
    assert len(store) == 2 * len(entries) - len(entries).bit_count()
    copy = cr.copy()
    copy.append(leaf_hash(b"more"))
    assert copy != cr and copy.size == cr.size + 1


def test_compact_range_rejects_bad_state() -> None:
    """Restoring a CompactRange with the wrong number or size of hashes fails."""
    h = b"\x11" * 32
    with pytest.raises(ValueError):
        CompactRange(3, [h])
    with pytest.raises(ValueError):
        CompactRange(1, [b"short"])
    with pytest.raises(ValueError):
        CompactRange.from_list([(0, h), (1, h)])
    with pytest.raises(ValueError):
        CompactRange().append(b"not a hash")
    cr = CompactRange()
    cr.extend([h, h, h])
    assert cr.to_list() == [(1, node_hash(h, h)), (0, h)]


@PROPS
@given(entries=entries_st)
def test_subtree_proofs_match_list_proofs(entries: list[bytes]) -> None:
    """Proofs served from a perfect-subtree store are byte-identical to list-based proofs, with
    O(log n) store lookups and only tree-node ranges requested."""
    n = len(entries)
    leaves = [leaf_hash(e) for e in entries]
    store: dict[tuple[int, int], bytes] = {}
    cr = CompactRange()
    for leaf in leaves:
        for level, index, h in cr.append(leaf):
            store[(level, index)] = h
    lookups = 0

    def get_perfect(level: int, index: int) -> bytes:
        nonlocal lookups
        lookups += 1
        return store[(level, index)]

    get_subtree = subtree_getter_from_perfect(get_perfect)
    assert get_subtree(0, n) == cr.root()
    bound = 2 * n.bit_length() + 2
    for i in range(n):
        lookups = 0
        assert inclusion_proof_from_subtrees(i, n, get_subtree) == inclusion_proof_from_hashes(leaves, i)
        assert lookups <= bound
    for m in range(n + 1):
        lookups = 0
        got = consistency_proof_from_subtrees(m, n, get_subtree)
        assert got == consistency_proof_from_hashes(leaves, m)
        assert lookups <= bound

    def naive_subtree(start: int, end: int) -> bytes:
        return ref_mth(entries[start:end])

    for i in range(n):
        assert inclusion_proof_from_subtrees(i, n, naive_subtree) == inclusion_proof(entries, i)


@settings(max_examples=200, deadline=None)
@given(start=st.integers(0, 5000), width=st.integers(0, 5000))
def test_perfect_subtrees_decomposition(start: int, width: int) -> None:
    """perfect_subtrees covers [start, end) contiguously with aligned power-of-two pieces, few of them."""
    end = start + width
    pieces = perfect_subtrees(start, end)
    pos = start
    for level, index in pieces:
        assert index << level == pos
        pos += 1 << level
    assert pos == end
    assert len(pieces) <= 2 * max(width, 1).bit_length()
    if width:
        # Maximality: two neighbours of equal level never form an aligned pair.
        for (l1, i1), (l2, _) in zip(pieces, pieces[1:], strict=False):
            assert not (l1 == l2 and i1 % 2 == 0)


def _ref_nodes(lo: int, hi: int):
    """All node ranges of the RFC tree over leaves [lo, hi), by the MTH recursion."""
    yield lo, hi
    if hi - lo > 1:
        k = _k(hi - lo)
        yield from _ref_nodes(lo, lo + k)
        yield from _ref_nodes(lo + k, hi)


def test_subtree_hash_on_all_tree_nodes() -> None:
    """subtree_hash rebuilds every node of every tree up to 45 leaves (including non-perfect right-edge
    nodes) from stored perfect-subtree hashes with at most log2(width)+1 lookups."""
    entries = distinct_entries(45)
    store = {}
    cr = CompactRange()
    for e in entries:
        for level, index, h in cr.append_entry(e):
            store[(level, index)] = h
    calls = []

    def get_perfect(level: int, index: int) -> bytes:
        calls.append((level, index))
        return store[(level, index)]

    for size in range(1, 46):
        for start, end in _ref_nodes(0, size):
            calls.clear()
            assert subtree_hash(start, end, get_perfect) == ref_mth(entries[start:end])
            assert len(calls) <= (end - start).bit_length()


# --------------------------------------------------------------------------------------------------
# Canonical JSON


def test_canonical_json_format() -> None:
    """Keys sorted, no whitespace, UTF-8 without escapes, nested structures canonicalised."""
    obj = {"b": [1, True, None, "ä€😀"], "a": {"z": 1, "y": "x"}, "é": -5, "A": 2**70}
    out = canonical_json(obj)
    assert out == '{"A":1180591620717411303424,"a":{"y":"x","z":1},"b":[1,true,null,"ä€😀"],"é":-5}'.encode()
    assert canonical_json({"y": 1, "x": 2}) == canonical_json({"x": 2, "y": 1})
    assert canonical_json(("a", 1)) == b'["a",1]'
    assert canonical_json('line\nbreak"') == b'"line\\nbreak\\""'


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf"), 1.5, 0.0, {"a": [1.0]}])
def test_canonical_json_rejects_floats(value) -> None:
    """All floats (including NaN and Infinity) are rejected with ValueError."""
    with pytest.raises(ValueError):
        canonical_json(value)


@pytest.mark.parametrize("value", [{1: "a"}, {"a": {(1, 2): 3}}, {"a": b"bytes"}, {1, 2}, object()])
def test_canonical_json_rejects_non_json_types(value) -> None:
    """Non-str keys and non-JSON types raise TypeError instead of being coerced."""
    with pytest.raises(TypeError):
        canonical_json(value)


def test_canonical_json_rejects_lone_surrogate() -> None:
    """A string that is not valid Unicode cannot be encoded as UTF-8."""
    with pytest.raises(ValueError):
        canonical_json({"a": "\ud800"})
