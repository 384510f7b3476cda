"""Where each dataset's archives come from, and the `download` stage."""

from __future__ import annotations

import logging
import tempfile
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from segbench import SegbenchError
from segbench.data import synthetic
from segbench.data.download import EXTRACTED, copy_tree, extract, fetch, file_checksum, tree_checksum

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
OWN = ("folder", "nnunet")  # a user's own dataset: dataset.source says where it is


def own_dataset(dataset: dict, archive_dir: Path, raw_dir: Path) -> Path:
    """A user's dataset into ``raw_dir/extracted``: a local folder (copied; its checksum is a hash of every
    file), or an archive by path or URL (fetched and verified as the published datasets are).

    Raises:
        SegbenchError: no source, a source that does not exist, or a URL without a checksum.
    """
    source, checksum = dataset["source"], dataset["checksum"]
    if not source or isinstance(source, list) or isinstance(checksum, list):
        raise SegbenchError(f"dataset.source: dataset.name {dataset['name']!r} needs one source: your dataset's "
                            "folder, or its archive (.zip, .tar.gz) as a path or URL")
    remote = urllib.parse.urlparse(source).scheme in ("http", "https")
    local = Path(urllib.request.url2pathname(urllib.parse.urlparse(source).path)) if source.startswith("file://") \
        else Path(source)
    if not remote and local.is_dir():
        found = tree_checksum(local)
        if checksum and found != checksum.lower():
            raise SegbenchError(f"dataset.source: the folder {local} changed: its checksum is {found}, "
                                f"dataset.checksum says {checksum}")
        return copy_tree(local, raw_dir / EXTRACTED, found)
    if not remote and not local.is_file():
        raise SegbenchError(f"dataset.source: {source} does not exist")
    if checksum is None:
        if remote:
            raise SegbenchError("dataset.checksum: required for an archive fetched by URL ('sha256:' and the "
                                "output of `sha256sum` on it), so a changed or broken download is caught")
        checksum = file_checksum(local)
    name = Path(urllib.parse.urlparse(source).path).name or "dataset.zip"
    archive = fetch(source, archive_dir / name, checksum)
    return extract([archive], [checksum], raw_dir / EXTRACTED)


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
    if name in OWN:
        archive_dir.mkdir(parents=True, exist_ok=True)
        return own_dataset(dataset, archive_dir, raw_dir)
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
