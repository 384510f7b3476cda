"""Where each dataset's archives come from, and the `download` stage."""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

from segbench import SegbenchError
from segbench.data import synthetic
from segbench.data.download import EXTRACTED, extract, fetch, file_checksum

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Archive:
    url: str
    checksum: str
    file_name: str


# Published locations and checksums (see the README's dataset section).
PUBLISHED = {
    "btxrd": [Archive("https://ndownloader.figshare.com/files/50653575",
                      "md5:59132a5036d030580ccade8add8f13df", "BTXRD.zip")],
    # as torchvision's OxfordIIITPet lists them
    "oxford_pets": [
        Archive("https://www.robots.ox.ac.uk/~vgg/data/pets/data/images.tar.gz",
                "md5:5c4f3ee8e5d25df40f4fd59a7f44e54c", "images.tar.gz"),
        Archive("https://www.robots.ox.ac.uk/~vgg/data/pets/data/annotations.tar.gz",
                "md5:95a8c909bbe2e81eed6a22bccdf3f68f", "annotations.tar.gz"),
    ],
}
SYNTHETIC_FILE = "BTXRD-synthetic.zip"


def _per_archive(value, published: list[Archive], key: str) -> list:
    """``dataset.<key>`` as one value (or None) per archive."""
    if value is None:
        return [None] * len(published)
    values = list(value) if isinstance(value, list) else [value]
    if len(values) != len(published):
        raise SegbenchError(f"dataset.{key}: this dataset has {len(published)} archives, so give one value for each "
                            f"of {[a.file_name for a in published]}, in that order; got {len(values)}")
    return values


def download_dataset(dataset: dict, synthetic_params: dict, archive_dir: Path, raw_dir: Path) -> Path:
    """The `download` stage: fetch and verify ``dataset['name']``'s archives into ``archive_dir``,
    then extract them together into ``raw_dir/extracted``.

    ``dataset.source`` / ``dataset.checksum`` override the published location and checksum
    (a list of them for a dataset of several archives). The synthetic demo is first
    generated into a temporary folder, as if published there, then goes through the same
    fetch -> verify -> extract path as a real archive.

    Returns:
        The extracted tree.
    """
    name = dataset["name"]
    published = PUBLISHED.get(name, [Archive("", "", SYNTHETIC_FILE)])
    sources = _per_archive(dataset["source"], published, "source")
    checksums = _per_archive(dataset["checksum"], published, "checksum")
    archive_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=archive_dir, prefix=".build-") as build:
        if name == "synthetic" and sources[0] is None:
            sources[0] = str(Path(build) / SYNTHETIC_FILE)
            log.info("generating the synthetic demo archive (%d images)", synthetic_params["n_images"])
            synthetic.build_archive(sources[0], **synthetic_params)
            checksums[0] = checksums[0] or file_checksum(Path(sources[0]))
        elif name == "synthetic" and checksums[0] is None:
            raise SegbenchError("dataset.checksum: required when dataset.source points to a synthetic archive")
        wanted = [(s or a.url, c or a.checksum, a.file_name) for a, s, c in zip(published, sources, checksums)]
        archives = [fetch(source, archive_dir / file_name, checksum) for source, checksum, file_name in wanted]
    return extract(archives, [checksum for _, checksum, _ in wanted], raw_dir / EXTRACTED)
