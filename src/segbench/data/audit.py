"""The leakage audit: near-duplicate images (perceptual hashes) and metadata groups that a split puts on both sides
of a train / val / test boundary.

Hashes (imagehash's ``phash``, 256 bits: a 16 x 16 DCT of the image at 64 x 64) are taken once per image in
preprocessing: of the whole image, and of nine windows of 95 % of its width and height, centred and shifted by
2.5 % each way (the nine ways a border trim of up to 5 % can fall). Two images are near-duplicates when their
distance (the least Hamming distance among whole against whole, and either whole image against the other's
windows) is at most ``HAMMING`` bits.

Measured on 300 embedded synthetic X-rays, which look far more alike than real ones
(``tests/integration/test_leakage.py`` plants the same copies): a copy resized to 80 %, re-encoded as JPEG at quality
70, 10 % brighter, or with 5 % of its width and height trimmed evenly from the borders is found in 150 of 150
cases; trimmed at random from the sides, 148 of 150. Distinct images pair up falsely 6 times among the 300 (4 of
them two lesion-free images, which the generator draws nearly alike): 1 per 50 images.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from PIL import Image

from segbench.data.metadata import group_keys

HAMMING = 36                      # bits of 256: the documented threshold
WINDOW, SHIFT = 0.95, 0.025       # window size and shift, as fractions of the image's width and height
LOOSE = 96                        # whole-image distance beyond which no window matches (screening)
PREVIEW = 256                     # px: images are shrunk to this before hashing
BLOCK = 1024                      # images per block of the pairwise distances


def image_hashes(image: Image.Image) -> np.ndarray:
    """(10, 4) uint64: the 256-bit phash of the whole image, then of its nine 95 % windows (row by row)."""
    import imagehash

    grey = image.convert("L")
    grey.thumbnail((PREVIEW, PREVIEW), Image.Resampling.BOX)  # phash looks at 64 px: 3x faster, same rates
    w, h = grey.size
    hashes = [imagehash.phash(grey, 16)]
    for dy in (-SHIFT, 0, SHIFT):
        for dx in (-SHIFT, 0, SHIFT):
            x0, y0 = (0.5 - WINDOW / 2 + dx) * w, (0.5 - WINDOW / 2 + dy) * h
            hashes.append(imagehash.phash(grey.crop((round(x0), round(y0), round(x0 + WINDOW * w),
                                                     round(y0 + WINDOW * h))), 16))
    bits = np.stack([np.packbits(h.hash.ravel()) for h in hashes])  # (10, 32) bytes
    return bits.view(">u8").astype(np.uint64)


def _hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bits that differ between broadcast uint64 arrays, summed over the last axis."""
    return np.bitwise_count(a ^ b).sum(-1, dtype=np.int64)


def near_duplicates(hashes: np.ndarray, threshold: int = HAMMING) -> pd.DataFrame:
    """Every pair of images (i < j) at most ``threshold`` bits apart, with its distance.

    Blockwise over all pairs with NumPy's popcount: at a radius of 36 bits in 256 a BK-tree or bucketing prunes
    little, and vectorised pairs are faster up to about 10^5 images (``benchmarks/audit.py``). The whole-image
    hashes screen the pairs; the windows are compared only where they could still match.
    """
    n = len(hashes)
    whole, windows = hashes[:, 0], hashes[:, 1:]
    found = []
    for start in range(0, n, BLOCK):
        rows = np.arange(start, min(n, start + BLOCK))
        distance = _hamming(whole[rows, None], whole[None, :])
        r, j = np.nonzero((distance <= LOOSE) & (np.arange(n)[None, :] > rows[:, None]))
        i = rows[r]
        d = np.minimum.reduce([distance[r, j], _hamming(whole[i, None], windows[j]).min(1),
                               _hamming(whole[j, None], windows[i]).min(1)])
        keep = d <= threshold
        found.append(pd.DataFrame({"a": i[keep], "b": j[keep], "distance": d[keep]}))
    return pd.concat(found, ignore_index=True) if found else pd.DataFrame(columns=["a", "b", "distance"])


def clusters(n: int, pairs: pd.DataFrame) -> np.ndarray:
    """A cluster label per image: near-duplicates, and near-duplicates of near-duplicates, share one."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(len(pairs)), (pairs["a"], pairs["b"])), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def _tested(side: str) -> bool:
    """Whether a side of the split is only tested on: the test subsets (test, in_group)."""
    return side.startswith("test") or side == "in_group"


def _learnt_from(side: str) -> bool:
    """Whether a model learns from a side of the split: train, val (checkpoint choice) and folds."""
    return not _tested(side)


def audit(meta: pd.DataFrame, pairs: pd.DataFrame, assignment: pd.Series, group_columns: list[str]) -> dict:
    """What a split leaks: near-duplicate pairs and metadata groups on both sides of a boundary, and the *leaked
    test images*: test images with a near-duplicate or a group mate outside the test subsets, counted per side
    they reach (train, val, a fold); in-group test images (``split.holdout``) that leak the same way are listed
    apart (``leaked_in_group_images``): the generalisation gap leaves them out of its reference.

    ``meta``: meta.csv (array order); ``pairs``: ``near_duplicates`` (array indices); ``assignment``: each
    sample's part (subset, or subset and fold) by sample id; ``group_columns``: the dataset's columns that
    together stand for a patient or a lesion (none: only the images are audited).
    """
    ids = meta["sample_id"].astype(str).to_numpy()
    part = assignment.reindex(ids).to_numpy()
    rows, crossing = [], {}
    for a, b, distance in pairs.itertuples(index=False):
        if part[a] != part[b]:
            key = " / ".join(sorted((str(part[a]), str(part[b]))))
            crossing[key] = crossing.get(key, 0) + 1
            rows.append({"a": ids[a], "b": ids[b], "subset_a": str(part[a]), "subset_b": str(part[b]),
                         "distance": int(distance)})
    leaks: dict[str, set[str]] = {}  # test image -> the sides a model learns from that hold its near-copy or mate
    for r in rows:
        for mine, theirs in (("a", "b"), ("b", "a")):
            if _tested(r[f"subset_{mine}"]) and _learnt_from(r[f"subset_{theirs}"]):
                leaks.setdefault(r[mine], set()).add(r[f"subset_{theirs}"])
    out = {"checked": [f"near-duplicate images: imagehash phash, 256 bits, of the whole image and of 95 % windows "
                       f"shifted by up to {SHIFT:.1%}; a pair within {HAMMING} bits (a mirrored copy is not found: "
                       "phash is not flip-invariant)"],
           "near_duplicate_pairs": int(len(pairs)), "pairs_across_subsets": crossing, "pairs": rows}
    if group_columns:  # a blank field puts an image in no group: unknown is not equal (metadata.group_keys)
        groups = group_keys(meta, group_columns).to_numpy()
        spanning = pd.Series(part).groupby(groups).nunique()
        spanning = spanning[spanning > 1]
        out["checked"].append(f"metadata groups: equal {', '.join(group_columns)}")
        out["groups_across_subsets"] = int(len(spanning))
        out["unknown_group_fields"] = int(pd.isna(groups).sum())
        for i in np.flatnonzero(np.isin(groups, spanning.index) & np.array([_tested(str(p)) for p in part])):
            mates = set(part[(groups == groups[i]) & (np.arange(len(part)) != i)].astype(str))
            leaks.setdefault(ids[i], set()).update(m for m in mates if _learnt_from(m))
    side_of = dict(zip(ids, map(str, part)))
    in_group = {i for i in leaks if side_of[i] == "in_group"}
    test = {i: sides for i, sides in leaks.items() if sides and i not in in_group}
    out["leaked_test_images"] = sorted(test)
    out["leaked_test_images_by_side"] = {side: sum(side in sides for sides in test.values())
                                         for side in sorted(set().union(*test.values()))} if test else {}
    out["leaked_in_group_images"] = sorted(i for i in in_group if leaks[i])
    return out
