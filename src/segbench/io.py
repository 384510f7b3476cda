"""Atomic file writing: a killed job never leaves a half file that looks complete."""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    On any exception the temporary file is removed and ``path`` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o666 & ~umask)  # mkstemp makes 0600; give the file ordinary permissions
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json(path: str | os.PathLike, data: dict) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def write_csv(path: str | os.PathLike, frame) -> None:
    """Write a pandas DataFrame without its index."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def read_json(path: str | os.PathLike) -> dict:
    return json.loads(Path(path).read_text())


class NpzWriter:
    """Arrays added one at a time to a compressed ``.npz`` that ``np.load`` reads, written atomically.

    Memory stays one array, whatever their number. Use as a context manager; ``add(key, array)``.
    """

    def __init__(self, path: str | os.PathLike, compresslevel: int = 1):
        self.path, self.compresslevel = Path(path), compresslevel

    def __enter__(self) -> NpzWriter:
        import zipfile

        self._atomic = atomic_path(self.path)
        self._zip = zipfile.ZipFile(self._atomic.__enter__(), "w", zipfile.ZIP_DEFLATED,
                                    compresslevel=self.compresslevel)
        return self

    def add(self, key: str, array) -> None:
        import numpy as np

        with self._zip.open(f"{key}.npy", "w", force_zip64=True) as handle:
            np.lib.format.write_array(handle, np.asarray(array), allow_pickle=False)

    def __exit__(self, *exc) -> None:
        self._zip.close()
        self._atomic.__exit__(*exc)


class MaskZip:
    """Label maps stored as PNG files (any image viewer opens them) in one uncompressed zip: the PNGs are
    compressed where they are made, in parallel workers. ``MaskZip.writer(path)`` writes one atomically
    (``add(key, png_bytes)``); ``MaskZip(path)[key]`` reads a map back as a uint8 array."""

    def __init__(self, path: str | os.PathLike):
        import zipfile

        self._zip = zipfile.ZipFile(path)
        self.files = [name.removesuffix(".png") for name in self._zip.namelist()]

    def __getitem__(self, key: str):
        import numpy as np
        from PIL import Image

        return np.asarray(Image.open(io.BytesIO(self._zip.read(f"{key}.png"))))

    def __enter__(self) -> MaskZip:
        return self

    def __exit__(self, *exc) -> None:
        self._zip.close()

    @staticmethod
    @contextlib.contextmanager
    def writer(path: str | os.PathLike) -> Iterator:
        """Yields ``add(key, png_bytes)``."""
        import zipfile

        with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as archive:
            yield lambda key, png: archive.writestr(f"{key}.png", png)


ZIP_DATE = (2024, 12, 1, 0, 0, 0)  # fixed zip member timestamps: the same content gives the same bytes


def xlsx_bytes(book) -> bytes:
    """An openpyxl Workbook as .xlsx bytes that depend on its content only: fixed created/modified dates
    and zip member timestamps (openpyxl stamps the current time)."""
    import datetime
    import re
    import zipfile

    book.properties.created = datetime.datetime(*ZIP_DATE)
    raw = io.BytesIO()
    book.save(raw)
    fixed = io.BytesIO()
    with zipfile.ZipFile(raw) as src, zipfile.ZipFile(fixed, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "docProps/core.xml":
                data = re.sub(rb"(<dcterms:modified[^>]*>)[^<]*", rb"\g<1>2024-12-01T00:00:00Z", data)
            dst.writestr(zipfile.ZipInfo(info.filename, ZIP_DATE), data)
    return fixed.getvalue()


def png_bytes(mask) -> bytes:
    """A uint8 (H, W) array as PNG bytes (lossless; fast on masks)."""
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(mask).save(out, "PNG", compress_level=1)
    return out.getvalue()
