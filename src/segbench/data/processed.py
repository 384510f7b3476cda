"""The preprocess stage's arrays with the split joined: subsets, folds, statistics and the truth at evaluation
resolution. NumPy and pandas only: the report and the command line read it without importing torch."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from segbench import SegbenchError, paths
from segbench.data.images import Geometry
from segbench.io import MaskZip, read_json
from segbench.labels import IGNORE

CHUNK_BYTES = 16 << 20  # statistics read the images this many bytes at a time


class NpyRows:
    """The rows of a ``.npy`` file, each read with ``pread`` when asked for.

    Why not a memory map: every page a map touches stays in the process's resident memory,
    so an epoch over a 6 GB array would show 6 GB resident. Reads go through the page cache
    instead, and the process holds only the rows in use.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        with open(self.path, "rb") as handle:
            version = np.lib.format.read_magic(handle)
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) \
                else np.lib.format.read_array_header_2_0
            self.shape, fortran, self.dtype = read_header(handle)
            self.offset = handle.tell()
        if fortran:
            raise SegbenchError(f"{self.path}: Fortran-ordered arrays are not supported; rerun preprocess")
        self.row_shape = self.shape[1:]
        self.row_bytes = int(np.prod(self.row_shape, dtype=np.int64)) * self.dtype.itemsize
        self._fd: int | None = None

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def _read(self, start: int, count: int) -> np.ndarray:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDONLY)
        data = os.pread(self._fd, count * self.row_bytes, self.offset + start * self.row_bytes)
        return np.frombuffer(data, self.dtype).reshape(count, *self.row_shape)

    def __getitem__(self, index: int) -> np.ndarray:
        """Row ``index``, a writable copy."""
        return self._read(int(index), 1)[0].copy()

    def chunks(self, indices: np.ndarray):
        """The rows ``indices`` in blocks of about CHUNK_BYTES: (block_indices, (n, *row_shape) array)."""
        step = max(1, CHUNK_BYTES // max(1, self.row_bytes))
        for start in range(0, len(indices), step):
            block = indices[start:start + step]
            yield block, np.stack([self._read(int(i), 1)[0] for i in block])

    def __getstate__(self) -> dict:  # DataLoader workers reopen the file
        return {**self.__dict__, "_fd": None}

    def __del__(self) -> None:
        if getattr(self, "_fd", None) is not None:
            os.close(self._fd)


@dataclass
class Processed:
    """The preprocess stage's outputs, with the split assignment (subset, fold) joined to meta."""

    images: NpyRows     # (N, S, S) grey or (N, S, S, 3) RGB, uint8
    masks: NpyRows      # (N, S, S) uint8: class ids, or IGNORE
    meta: pd.DataFrame  # one row per array index, with 'subset' (and 'fold') columns
    directory: Path
    _originals: MaskZip | None = field(default=None, repr=False)

    @classmethod
    def load(cls, processed_dir: Path, split_csv: Path) -> Processed:
        for path in (processed_dir / paths.IMAGES, processed_dir / paths.MASKS, processed_dir / paths.META,
                     processed_dir / paths.INFO, split_csv):
            if not path.exists():
                raise SegbenchError(f"{path}: missing; run the stage that makes it first")
        meta = pd.read_csv(processed_dir / paths.META)
        assignment = pd.read_csv(split_csv).set_index("sample_id")
        for column in [c for c in ("subset", "fold", *paths.REFERENCES.values()) if c in assignment]:
            meta[column] = meta["sample_id"].map(assignment[column])
        if meta["subset"].isna().any():
            missing = meta.loc[meta["subset"].isna(), "sample_id"].head(3).tolist()
            raise SegbenchError(f"{split_csv}: no subset for samples {missing}...; rerun `segbench split`")
        return cls(NpyRows(processed_dir / paths.IMAGES), NpyRows(processed_dir / paths.MASKS), meta, processed_dir)

    @property
    def channels(self) -> int:
        return 1 if self.images.ndim == 3 else self.images.shape[-1]

    @property
    def info(self) -> dict:
        """info.json: class_names (background first), channels, strata, stratify."""
        return read_json(self.directory / paths.INFO)

    @property
    def class_names(self) -> list[str]:
        return self.info["class_names"]

    @property
    def size(self) -> int:
        return self.images.shape[1]

    def indices(self, subset: str) -> np.ndarray:
        return np.flatnonzero(self.meta["subset"].to_numpy() == subset)

    @property
    def leave_one_group_out(self) -> bool:
        """The split's folds are groups (``split.folds: {by: ...}``): each fold's test set is its held-out group,
        and there is no common test subset."""
        return "fold" in self.meta and not (self.meta["subset"] == "test").any()

    def held_out(self, fold: int) -> np.ndarray:
        """Leave-one-group-out: the indices of fold ``fold``'s held-out group, its test images."""
        return np.flatnonzero(self.meta["fold"].to_numpy() == fold)

    def in_group(self, fold: int | None = None) -> np.ndarray:
        """The in-group test images (``paths.IN_GROUP``); leave-one-group-out: those of the groups ``fold`` trains
        on."""
        chosen = self.meta["subset"].to_numpy() == paths.IN_GROUP
        if fold is not None:
            chosen &= self.meta["fold"].to_numpy() != fold
        return np.flatnonzero(chosen)

    def fold_indices(self, fold: int | str) -> tuple[np.ndarray, np.ndarray]:
        """(train, val) indices of the run that validates on ``fold``: with ``split.folds`` the other folds
        train it; leave-one-group-out: the train and val images of the other groups; without folds, the only
        fold is 0, and its train and val are the split's subsets. A reference training (``fold``: a column of
        ``paths.REFERENCES``) takes the images that column marks train and val."""
        if isinstance(fold, str):
            if fold not in self.meta:
                raise SegbenchError(f"the split has no {fold} column: set split.holdout and rerun `segbench split`")
            marks = self.meta[fold].to_numpy()
            return np.flatnonzero(marks == "train"), np.flatnonzero(marks == "val")
        if self.leave_one_group_out:
            folds, subset = self.meta["fold"].to_numpy(), self.meta["subset"].to_numpy()
            if fold not in folds:
                raise SegbenchError(f"sweep.folds: the split has folds {sorted(set(folds))} (one per group), "
                                    f"not {fold}")
            return (np.flatnonzero((folds != fold) & (subset == "train")),
                    np.flatnonzero((folds != fold) & (subset == "val")))
        if "fold" not in self.meta:
            if fold != 0:
                raise SegbenchError(f"sweep.folds: fold {fold} needs split.folds; without it the split has one "
                                    "fold, 0, whose val images are the val subset")
            return self.indices("train"), self.indices("val")
        folds = self.meta["fold"].to_numpy()
        if fold not in folds:
            raise SegbenchError(f"sweep.folds: the split has folds {sorted(set(folds) - {-1})}, not {fold}")
        return np.flatnonzero((folds != fold) & (folds >= 0)), np.flatnonzero(folds == fold)

    def normalisation(self, indices: np.ndarray) -> tuple[list[float], list[float]]:
        """Per-channel mean and std of the pixels (in [0, 1]) of the images ``indices``.

        Integer sums over blocks of CHUNK_BYTES: exact, and memory stays a few blocks whatever
        the number of images (the thesis normalises with the train set's statistics).
        """
        total, squares, count = np.zeros(self.channels, np.uint64), np.zeros(self.channels, np.uint64), 0
        for _, block in self.images.chunks(indices):
            pixels = block.reshape(-1, self.channels)
            total += pixels.sum(0, dtype=np.uint64)
            squares += (pixels.astype(np.uint32) ** 2).sum(0, dtype=np.uint64)
            count += len(pixels)
        mean = total / (255.0 * max(1, count))
        std = np.sqrt(np.maximum(squares / (255.0 ** 2 * max(1, count)) - mean ** 2, 0))
        return mean.tolist(), [float(s) or 1.0 for s in std]

    def class_frequencies(self, indices: np.ndarray, classes: int = 2) -> list[float]:
        """Pixel share of each class in the masks ``indices`` (ignored pixels left out)."""
        counts = np.zeros(IGNORE + 1, np.int64)
        for _, block in self.masks.chunks(indices):
            counts += np.bincount(block.ravel(), minlength=IGNORE + 1)
        counts = counts[:classes]
        return (counts / max(1, counts.sum())).tolist()

    def original_masks(self):
        """``masks_original.zip``: each sample's mask at its image's original size, by sample id."""
        path = self.directory / paths.ORIGINAL_MASKS
        if not path.exists():
            raise SegbenchError(f"{path}: missing; rerun `segbench preprocess`")
        return MaskZip(path)

    def __getstate__(self) -> dict:  # DataLoader workers open the masks' zip themselves
        return {**self.__dict__, "_originals": None}

    def geometry(self, index: int) -> Geometry:
        """Where image ``index`` sits in its canvas."""
        return Geometry.of(self.meta.iloc[index], self.size)

    def truth(self, index: int, original: bool) -> np.ndarray:
        """Image ``index``'s mask at the evaluation resolution: its original size, or the un-padded canvas.
        Validation and evaluation both compare predictions with this."""
        if not original:
            return self.geometry(index).crop(self.masks[index])
        if self._originals is None:
            self._originals = self.original_masks()
        return self._originals[self.meta["sample_id"].iloc[index]]
