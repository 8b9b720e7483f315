"""The Flickr8k download against a real HTTP server on 127.0.0.1 serving zips built here."""

import hashlib
import http.server
import io
import random
import threading
import zipfile

import pytest

from captioner.data.download import MARKER, RemoteFile, download_flickr8k, safe_unpack
from captioner.data.flickr import detect_layout, read_dataset
from captioner.errors import DownloadError, OfflineError


class Server:
    """Serves ``files`` (name -> bytes) with Range support; ``cut[name] = n`` makes the next response for
    that name stop after n bytes (the connection closes mid-way)."""

    def __init__(self, files):
        self.files = dict(files)
        self.cut: dict[str, int] = {}
        self.requests: list[tuple[str, str | None]] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                name = self.path.rsplit("/", 1)[-1]
                server.requests.append((name, self.headers.get("Range")))
                data = server.files.get(name)
                if data is None:
                    self.send_error(404)
                    return
                start = 0
                if self.headers.get("Range"):
                    start = int(self.headers["Range"].removeprefix("bytes=").split("-")[0])
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                limit = server.cut.pop(name, None)
                self.wfile.write(body if limit is None else body[:limit])
                self.wfile.flush()
                if limit is not None:
                    self.close_connection = True

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/Flickr8k/"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def make_zip(members: dict[str, bytes], symlinks=()) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        for name, target in symlinks:
            info = zipfile.ZipInfo(name)
            info.external_attr = (0o120777 << 16)
            zf.writestr(info, target)
    return buffer.getvalue()


def flickr8k_zips():
    rng = random.Random(0)  # incompressible, like JPEG data, so the archive is large enough to cut mid-way
    images = {f"Flicker8k_Dataset/img{i}.jpg": rng.randbytes(100_000) for i in range(4)}
    images["__MACOSX/Flicker8k_Dataset/._img0.jpg"] = b"resource fork"
    tokens = "".join(f"img{i}.jpg#{k}\tA picture number {i} , caption {k} .\n" for i in range(4) for k in range(5))
    text = {"Flickr8k.token.txt": tokens.encode(), "Flickr_8k.trainImages.txt": b"img0.jpg\nimg1.jpg\n",
            "Flickr_8k.devImages.txt": b"img2.jpg\n", "Flickr_8k.testImages.txt": b"img3.jpg\n",
            "readme.txt": b"Flickr8k\n"}
    return {"Flickr8k_Dataset.zip": make_zip(images), "Flickr8k_text.zip": make_zip(text)}


def specs_for(zips, **wrong):
    """The file table with the checksums of the zips served here (``wrong`` replaces some)."""
    return tuple(RemoteFile(name, "Flickr8k_text" if "text" in name else "",
                            sha256=wrong.get(name, hashlib.sha256(data).hexdigest()), size=len(data))
                 for name, data in sorted(zips.items(), reverse=True))


def test_download_unpacks_a_readable_data_set_and_a_second_run_does_nothing(tmp_path):
    zips = flickr8k_zips()
    with Server(zips) as server:
        dest = download_flickr8k(tmp_path / "flickr8k", server.url, files=specs_for(zips))
        assert detect_layout(dest) == "flickr8k"
        dataset = read_dataset(dest)
        assert len(dataset.items) == 4 and all((dest / "Flicker8k_Dataset" / f"img{i}.jpg").is_file() for i in range(4))
        assert dataset.splits == {"train": ["img0.jpg", "img1.jpg"], "val": ["img2.jpg"], "test": ["img3.jpg"]}
        assert not (dest / "__MACOSX").exists() and not (dest / ".downloads").exists()
        assert (dest / MARKER).is_file()
        served = len(server.requests)
        download_flickr8k(dest, server.url, files=specs_for(zips))
        assert len(server.requests) == served  # idempotent: no request at all


def test_base_url_from_the_environment(tmp_path, monkeypatch):
    zips = flickr8k_zips()
    with Server(zips) as server:
        monkeypatch.setenv("CAPTIONER_FLICKR8K_URL", server.url)
        download_flickr8k(tmp_path / "d", files=specs_for(zips))
        assert {name for name, _ in server.requests} == set(zips)


def test_interrupted_download_resumes_with_a_range_request(tmp_path):
    zips = flickr8k_zips()
    big = "Flickr8k_Dataset.zip"
    with Server(zips) as server:
        server.cut[big] = len(zips[big]) // 2
        with pytest.raises(DownloadError, match="run the same command again to resume"):
            download_flickr8k(tmp_path / "d", server.url, files=specs_for(zips), retries=0)
        part = tmp_path / "d" / ".downloads" / (big + ".part")
        kept = part.stat().st_size
        assert 0 < kept <= len(zips[big]) // 2
        assert not (tmp_path / "d" / ".downloads" / big).exists()  # never under its real name while partial
        download_flickr8k(tmp_path / "d", server.url, files=specs_for(zips), retries=0)
        assert server.requests[-1] == (big, f"bytes={kept}-")
        assert len(read_dataset(tmp_path / "d").items) == 4


def test_a_broken_connection_is_retried_within_one_run(tmp_path):
    zips = flickr8k_zips()
    with Server(zips) as server:
        server.cut["Flickr8k_Dataset.zip"] = 300_000
        download_flickr8k(tmp_path / "d", server.url, files=specs_for(zips), retries=2)
        ranges = [r for name, r in server.requests if name == "Flickr8k_Dataset.zip"]
        assert ranges[0] is None and len(ranges) == 2 and ranges[1].startswith("bytes=")
        assert 0 < int(ranges[1].removeprefix("bytes=").rstrip("-")) <= 300_000


def test_checksum_mismatch_is_a_clear_error_and_leaves_nothing(tmp_path):
    zips = flickr8k_zips()
    with Server(zips) as server:
        files = specs_for(zips, **{"Flickr8k_text.zip": "0" * 64})
        with pytest.raises(DownloadError, match="does not match its published checksum"):
            download_flickr8k(tmp_path / "d", server.url, files=files)
    assert not (tmp_path / "d").exists()


def test_a_checksum_mismatch_deletes_only_that_archive(tmp_path):
    zips = flickr8k_zips()
    with Server(zips) as server:
        with pytest.raises(DownloadError, match="Flickr8k_Dataset.zip does not match"):
            download_flickr8k(tmp_path / "d", server.url, files=specs_for(zips, **{"Flickr8k_Dataset.zip": "0" * 64}))
        assert sorted(p.name for p in (tmp_path / "d" / ".downloads").iterdir()) == ["Flickr8k_text.zip"]
        server.requests.clear()
        download_flickr8k(tmp_path / "d", server.url, files=specs_for(zips))
    assert [name for name, _ in server.requests] == ["Flickr8k_Dataset.zip"]  # the verified one is not fetched again
    assert read_dataset(tmp_path / "d").layout == "flickr8k"


def test_hostile_zip_with_path_traversal_is_refused(tmp_path):
    zips = flickr8k_zips()
    zips["Flickr8k_text.zip"] = make_zip({"Flickr8k.token.txt": b"x.jpg#0\tA dog .\n", "../../evil.txt": b"owned"})
    with Server(zips) as server:
        with pytest.raises(DownloadError, match="outside the destination"):
            download_flickr8k(tmp_path / "d", server.url, files=specs_for(zips))
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path.parent / "evil.txt").exists()
    # nothing unpacked; the hostile archive is deleted, the one that verified stays for the next run
    assert [p.name for p in (tmp_path / "d").iterdir()] == [".downloads"]
    assert [p.name for p in (tmp_path / "d" / ".downloads").iterdir()] == ["Flickr8k_Dataset.zip"]


@pytest.mark.parametrize("members,symlinks,message", [
    ({"/etc/evil": b"x"}, (), "outside the destination"),
    ({"C:\\evil": b"x"}, (), "outside the destination"),
    ({"ok.txt": b"x"}, [("link", "/etc/passwd")], "symbolic link"),
    ({"zeros.bin": bytes(8 << 20)}, (), "zip bomb"),
])
def test_unsafe_archives_are_refused_before_anything_is_unpacked(tmp_path, members, symlinks, message):
    archive = tmp_path / "a.zip"
    archive.write_bytes(make_zip(members, symlinks))
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(DownloadError, match=message):
        safe_unpack(archive, dest)
    assert list(dest.iterdir()) == []


def test_total_size_cap(tmp_path):
    archive = tmp_path / "a.zip"
    archive.write_bytes(make_zip({"a.txt": b"a" * 1000, "b.txt": b"b" * 1000}))
    (tmp_path / "dest").mkdir()
    with pytest.raises(DownloadError, match="more than 1,500 bytes"):
        safe_unpack(archive, tmp_path / "dest", max_unpacked_bytes=1500)


def test_unreachable_server_is_an_offline_error(tmp_path):
    with pytest.raises(OfflineError, match="could not reach"):
        download_flickr8k(tmp_path / "d", "http://127.0.0.1:9/", retries=0, timeout=2)
    assert not (tmp_path / "d").exists()
