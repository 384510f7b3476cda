"""Fetch an archive (http(s)://, file:// or a local path), verify its checksum, extract it safely.

A transfer streams to ``<name>.part`` and resumes it with an HTTP Range request after an
interruption; the file only takes its final name once its checksum matches.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from segbench import SegbenchError

CHUNK = 1 << 20
EXTRACTED = "extracted"
STAMP = ".segbench-archive"  # inside the extracted tree: the checksum it was extracted from


def file_checksum(path: Path, algorithm: str = "sha256") -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return f"{algorithm}:{digest.hexdigest()}"


def matches(path: Path, checksum: str) -> bool:
    return path.is_file() and file_checksum(path, checksum.split(":")[0]) == checksum.lower()


def _manual_hint(dest: Path, checksum: str) -> str:
    return (f"download it by hand and set dataset.source to its path (or place it at {dest}); "
            f"its checksum must be {checksum}")


def _copy_local(source: Path, part: Path) -> None:
    if not source.is_file():
        raise SegbenchError(f"dataset.source: {source} does not exist")
    with open(source, "rb") as src, open(part, "wb") as dst, \
            tqdm(total=source.stat().st_size, unit="B", unit_scale=True, desc=source.name) as bar:
        while chunk := src.read(CHUNK):
            dst.write(chunk)
            bar.update(len(chunk))


def _http_get(url: str, part: Path, retries: int, timeout: float) -> None:
    """Stream ``url`` into ``part``, resuming what is there; retry with exponential backoff."""
    for attempt in range(retries + 1):
        have = part.stat().st_size if part.exists() else 0
        request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                resumed = response.status == 206
                total = int(response.headers.get("Content-Length") or 0) + (have if resumed else 0)
                with open(part, "ab" if resumed else "wb") as out, \
                        tqdm(total=total or None, initial=have if resumed else 0, unit="B",
                             unit_scale=True, desc=Path(urllib.parse.urlparse(url).path).name) as bar:
                    while chunk := response.read(CHUNK):
                        out.write(chunk)
                        bar.update(len(chunk))
                if total and part.stat().st_size < total:
                    raise ConnectionError(f"connection closed at {part.stat().st_size} of {total} bytes")
                return
        except urllib.error.HTTPError as exc:
            if exc.code == 416 and have:  # Range past the end: the .part is complete
                return
            if exc.code < 500 or attempt == retries:
                raise SegbenchError(f"{url}: HTTP {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as exc:
            if attempt == retries:
                raise SegbenchError(f"{url}: cannot download ({exc})") from None
        time.sleep(min(2 ** attempt, 30))


def fetch(source: str, dest: Path, checksum: str, retries: int = 4, timeout: float = 60.0) -> Path:
    """Put the archive at ``source`` at ``dest`` once its ``checksum`` ("md5:..."/"sha256:...") matches.

    A valid file already at ``dest`` is kept as is.

    Raises:
        SegbenchError: unreachable source or checksum mismatch, saying what was expected,
            what was found and how to supply the archive by hand.
    """
    if matches(dest, checksum):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    parsed = urllib.parse.urlparse(source)
    try:
        if parsed.scheme in ("http", "https"):
            _http_get(source, part, retries, timeout)
        else:
            part.unlink(missing_ok=True)
            path = urllib.request.url2pathname(parsed.path) if parsed.scheme == "file" else source
            _copy_local(Path(path), part)
    except SegbenchError as exc:
        raise SegbenchError(f"{exc}; {_manual_hint(dest, checksum)}") from None
    found = file_checksum(part, checksum.split(":")[0])
    if found != checksum.lower():
        part.unlink()
        raise SegbenchError(f"{source}: checksum mismatch: expected {checksum}, found {found}; "
                            f"{_manual_hint(dest, checksum)}")
    os.replace(part, dest)
    return dest


def _check_member(name: str, target: Path, archive: Path) -> None:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or not (target / path).resolve().is_relative_to(target.resolve()):
        raise SegbenchError(f"{archive}: refusing member {name!r}: it escapes the extraction folder")


def _extract_into(archive: Path, target: Path) -> None:
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                _check_member(info.filename, target, archive)
                if (info.external_attr >> 16) & 0o170000 == 0o120000:
                    raise SegbenchError(f"{archive}: refusing member {info.filename!r}: symbolic link")
            zf.extractall(target)
    elif tarfile.is_tarfile(archive):
        with tarfile.open(archive) as tf:
            for member in tf.getmembers():
                _check_member(member.name, target, archive)
            try:
                tf.extractall(target, filter="data")  # also refuses links pointing outside
            except tarfile.FilterError as exc:
                raise SegbenchError(f"{archive}: refusing member: {exc}") from None
    else:
        raise SegbenchError(f"{archive}: neither a zip nor a tar archive")


def _build_once(target: Path, stamp_text: str, fill: Callable[[Path], None]) -> Path:
    """Fill ``target`` once per ``stamp_text``: ``fill`` builds the tree under a temporary name, which is
    renamed into place when complete, so a half-built tree is never taken for a complete one."""
    stamp = target / STAMP
    if stamp.is_file() and stamp.read_text().strip() == stamp_text:
        return target
    partial = target.with_name(f".{target.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        fill(partial)
        (partial / STAMP).write_text(stamp_text + "\n")
        shutil.rmtree(target, ignore_errors=True)
        os.replace(partial, target)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return target


def extract(archives: list[Path], checksums: list[str], target: Path) -> Path:
    """Extract ``archives`` (zip or tar) together into ``target``, once per set of checksums."""
    def fill(partial: Path) -> None:
        partial.mkdir(parents=True)
        for archive in archives:
            _extract_into(archive, partial)

    return _build_once(target, " ".join(checksums), fill)


def tree_checksum(folder: Path) -> str:
    """SHA-256 over every file's relative path and content, in sorted order: a folder's checksum."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder).as_posix()).encode() + b"\0")
        digest.update(file_checksum(path).encode() + b"\0")
    return f"sha256:{digest.hexdigest()}"


def copy_tree(source: Path, target: Path, checksum: str) -> Path:
    """Copy the folder ``source`` to ``target`` once per ``checksum``."""
    return _build_once(target, checksum, lambda partial: shutil.copytree(source, partial))
