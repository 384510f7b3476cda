"""Where each dataset's archive comes from, and the `download` stage."""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

from segbench import SegbenchError
from segbench.data import synthetic
from segbench.data.download import extract, fetch, file_checksum

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Archive:
    url: str
    checksum: str
    file_name: str


# Published locations and checksums (see the README's dataset section).
PUBLISHED = {
    "btxrd": Archive("https://ndownloader.figshare.com/files/50653575",
                     "md5:59132a5036d030580ccade8add8f13df", "BTXRD.zip"),
}
SYNTHETIC_FILE = "BTXRD-synthetic.zip"


def download_dataset(dataset: dict, synthetic_params: dict, raw_dir: Path) -> Path:
    """The `download` stage: fetch, verify and extract ``dataset['name']`` under ``raw_dir``.

    The synthetic demo is first generated into a temporary folder, as if published there,
    then goes through the same fetch -> verify -> extract path as a real archive.

    Returns:
        The extracted tree, ``raw_dir/extracted``.
    """
    name, source, checksum = dataset["name"], dataset["source"], dataset["checksum"]
    raw_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=raw_dir, prefix=".build-") as build:
        if name == "synthetic":
            file_name = SYNTHETIC_FILE
            if source is None:
                source = str(Path(build) / file_name)
                log.info("generating the synthetic demo archive (%d images)", synthetic_params["n_images"])
                synthetic.build_archive(source, **synthetic_params)
                checksum = checksum or file_checksum(Path(source))
            elif checksum is None:
                raise SegbenchError("dataset.checksum: required when dataset.source points to a synthetic archive")
        else:
            published = PUBLISHED[name]
            source, checksum, file_name = source or published.url, checksum or published.checksum, published.file_name
        archive = fetch(source, raw_dir / file_name, checksum)
    return extract(archive, checksum)
