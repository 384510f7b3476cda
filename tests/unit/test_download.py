import hashlib
import io
import tarfile
import zipfile

import pytest

from segbench import SegbenchError
from segbench.data.download import EXTRACTED, STAMP, extract, fetch
from support import serve

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB
SHA = "sha256:" + hashlib.sha256(PAYLOAD).hexdigest()


@pytest.fixture
def server():
    """Serves PAYLOAD at /file and /flaky (whose first full request is cut off half-way);
    /redirect points to /file."""
    with serve({"file": PAYLOAD, "flaky": PAYLOAD}, cut_once={"/flaky"}) as served:
        yield served


def test_http_download_follows_redirects_and_verifies(server, tmp_path):
    url, state = server
    dest = fetch(f"{url}/redirect", tmp_path / "a.zip", SHA)
    assert dest.read_bytes() == PAYLOAD
    assert [p for p, _ in state["requests"]] == ["/redirect", "/file"]
    fetch(f"{url}/redirect", dest, SHA)  # a valid archive in place is not downloaded again
    assert len(state["requests"]) == 2


def test_interrupted_download_resumes_with_range(server, tmp_path):
    url, state = server
    dest = fetch(f"{url}/flaky", tmp_path / "a.zip", SHA, retries=2)
    assert dest.read_bytes() == PAYLOAD
    ranges = [r for _, r in state["requests"]]
    assert ranges[0] is None and ranges[-1] == f"bytes={len(PAYLOAD) // 2}-"


def test_checksum_mismatch_says_expected_found_and_how(server, tmp_path):
    url, _ = server
    wrong = "md5:" + "0" * 32
    with pytest.raises(SegbenchError) as err:
        fetch(f"{url}/file", tmp_path / "a.zip", wrong)
    message = str(err.value)
    assert wrong in message and hashlib.md5(PAYLOAD).hexdigest() in message and "dataset.source" in message
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def test_unreachable_source_explains_manual_download(tmp_path):
    with pytest.raises(SegbenchError, match="cannot download.*by hand"):
        fetch("http://127.0.0.1:9/none.zip", tmp_path / "a.zip", SHA, retries=0, timeout=2)


def test_local_path_and_file_url(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(PAYLOAD)
    assert fetch(str(src), tmp_path / "out" / "a.bin", SHA).read_bytes() == PAYLOAD
    assert fetch(src.as_uri(), tmp_path / "out" / "b.bin", SHA).read_bytes() == PAYLOAD
    with pytest.raises(SegbenchError, match="does not exist"):
        fetch(str(tmp_path / "missing.zip"), tmp_path / "c.zip", SHA)


def make_zip(path, members):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


@pytest.mark.parametrize("member", ["../evil.txt", "/abs/evil.txt", "BTXRD/../../evil.txt"])
def test_zip_members_escaping_the_target_are_refused(tmp_path, member):
    archive = make_zip(tmp_path / "a.zip", {"BTXRD/ok.txt": b"ok", member: b"evil"})
    with pytest.raises(SegbenchError, match="refusing member"):
        extract([archive], ["sha256:x"], archive.parent / EXTRACTED)
    assert not (tmp_path / "extracted").exists() and not (tmp_path.parent / "evil.txt").exists()


def test_tar_link_pointing_outside_is_refused(tmp_path):
    archive = tmp_path / "a.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        link = tarfile.TarInfo("data/link")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tf.addfile(link)
    with pytest.raises(SegbenchError, match="refusing member"):
        extract([archive], ["sha256:x"], archive.parent / EXTRACTED)


def test_extraction_is_idempotent_and_never_half_done(tmp_path):
    archive = make_zip(tmp_path / "a.zip", {"BTXRD/x.txt": b"1"})
    tree = extract([archive], ["sha256:one"], archive.parent / EXTRACTED)
    assert (tree / "BTXRD/x.txt").read_bytes() == b"1" and (tree / STAMP).read_text().strip() == "sha256:one"
    (tree / "BTXRD/x.txt").write_bytes(b"changed")
    extract([archive], ["sha256:one"], archive.parent / EXTRACTED)  # same checksum: kept
    assert (tree / "BTXRD/x.txt").read_bytes() == b"changed"
    (tree / STAMP).unlink()  # an unfinished tree (no stamp) is redone
    extract([archive], ["sha256:one"], archive.parent / EXTRACTED)
    assert (tree / "BTXRD/x.txt").read_bytes() == b"1"
    tar = tmp_path / "t" / "b.tar.gz"
    tar.parent.mkdir()
    with tarfile.open(tar, "w:gz") as tf:
        info = tarfile.TarInfo("pets/a.txt")
        info.size = 2
        tf.addfile(info, io.BytesIO(b"hi"))
    assert (extract([tar], ["sha256:two"], tar.parent / EXTRACTED) / "pets/a.txt").read_bytes() == b"hi"


def test_a_dataset_of_two_archives_needs_a_source_for_each(tmp_path):
    from segbench.data.sources import download_dataset

    dataset = {"name": "oxford_pets", "source": str(tmp_path / "images.tar.gz"), "checksum": None}
    with pytest.raises(SegbenchError, match=r"dataset.source: this dataset has 2 archives.*'images.tar.gz', "
                                            r"'annotations.tar.gz'"):
        download_dataset(dataset, {}, tmp_path / "archives", tmp_path / "raw")
