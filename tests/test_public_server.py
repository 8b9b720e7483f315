"""A real `captioner serve` (waitress) set up as for the public: keys required, rate limits, a translation
service with a secret key. Against it, on 127.0.0.1 with real sockets: a soak of 2,000 requests from 16
clients, slow clients trickling headers and uploads, uploads never written to disk, the disk filling up
under the history database, and no secret in the server's log. One server for the whole module."""

from __future__ import annotations

import io
import random
import re
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from PIL import Image

from captioner.history import open_history
from captioner.history.keys import KeyStore
from captioner.web.launch import start_server
from support.fake_azure_translator import KEY as TRANSLATOR_KEY
from support.fake_azure_translator import REGION, FakeAzureTranslator
from support.real_services import mount_tiny_filesystem, unmount, write_recorder
from support.web import shapes_image_bytes

pytestmark = pytest.mark.slow
CLIENTS = 16
SOAK_REQUESTS = 2000
WARM_UP_PER_CLIENT = 10
RSS_GROWTH_BOUND = 32 * 2**20  # bytes the server may grow by over the soak, after its warm-up
CLIENT_TIMEOUT_S = 3  # the server closes connections silent for this long


class PublicServer:
    def __init__(self, server, keys, folder, database_folder, disk_full_skip):
        self.server = server
        self.url = server.url
        self.keys = keys  # name -> key
        self.folder = folder
        self.database_folder = database_folder
        self.disk_full_skip = disk_full_skip  # why the database is not on a small filesystem, or None
        self.writes_log = folder / "writes.log"
        self.tmp = folder / "tmp"

    def headers(self, name: str = "alice") -> dict:
        return {"Authorization": f"Bearer {self.keys[name]}"}


@pytest.fixture(scope="module")
def public(tmp_path_factory, demo_models_dir):
    folder = tmp_path_factory.mktemp("public-server")
    database_folder = folder / "database"
    disk_full_skip = mount_tiny_filesystem(database_folder, "4m")
    try:
        url = f"sqlite:///{database_folder / 'captioner.db'}"
        store = open_history(url)
        keys = KeyStore(store.session_factory)
        names = ["alice", "admin", *(f"client{n}" for n in range(CLIENTS))]
        made = {name: keys.create(name, admin=name == "admin")[1] for name in names}
        store.close()
        (folder / "tmp").mkdir()
        recorder = write_recorder(folder / "recorder")
        with FakeAzureTranslator() as translator:
            env = {
                "CAPTIONER_REQUIRE_KEYS": "true", "DATABASE_URL": url, "SECRET_KEY": "public-test-secret",
                "CAPTIONER_RATE_LIMIT": "1000 per minute", "CAPTIONER_HISTORY_MAX_ENTRIES": "0",
                "CAPTIONER_HISTORY_MAX_MB": "0", "CAPTIONER_CLIENT_TIMEOUT_S": str(CLIENT_TIMEOUT_S),
                "CAPTIONER_TRY_PRETRAINED": "0", "KEY": TRANSLATOR_KEY, "ENDPOINT": translator.endpoint,
                "LOCATION": REGION, "TMPDIR": str(folder / "tmp"),
                "CAPTIONER_TEST_WRITES_LOG": str(folder / "writes.log"),
                "PYTHONPATH": str(recorder),  # its sitecustomize records the files the server writes
            }
            server = start_server(demo_models_dir, "--threads", "4", env=env, timeout=240,
                                  log_path=folder / "server.log")
            try:
                yield PublicServer(server, made, folder, database_folder, disk_full_skip)
            finally:
                server.stop()
    finally:
        if disk_full_skip is None:
            unmount(database_folder)


def png(data_seed: int = 0, size=(96, 96), noise: bool = False) -> bytes:
    if noise:
        image = Image.frombytes("RGB", size, random.Random(data_seed).randbytes(size[0] * size[1] * 3))
    else:
        image = Image.new("RGB", size, (200, 30 + data_seed % 200, 30))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_soak_2000_requests_from_16_clients(public, shapes_dataset):
    import psutil
    import requests

    images = [shapes_image_bytes(shapes_dataset, i, "JPEG") for i in range(12)]
    process = psutil.Process(public.server.process.pid)

    def client_run(number: int, requests_to_make: int, offset: int) -> list[int]:
        statuses = []
        with requests.Session() as session:
            session.headers.update(public.headers(f"client{number}"))
            for step in range(offset, offset + requests_to_make):
                if step % 25 == 0:
                    response = session.post(public.url + "/api/v1/history", timeout=60, files={
                        "image": ("s.jpg", images[step % 12], "image/jpeg")},
                        data={"caption": f"soak {number}-{step}", "model": "shapes-demo"})
                elif step % 10 == 9:
                    response = session.get(public.url + "/api/v1/history?per_page=5", timeout=60)
                else:
                    response = session.post(public.url + "/api/v1/captions", timeout=60,
                                            files={"image": ("s.jpg", images[(number + step) % 12], "image/jpeg")})
                statuses.append(response.status_code)
        return statuses

    def run_all(per_client: int, offset: int) -> list[int]:
        with ThreadPoolExecutor(CLIENTS) as pool:
            runs = list(pool.map(lambda n: client_run(n, per_client, offset), range(CLIENTS)))
        return [status for run in runs for status in run]

    warm = run_all(WARM_UP_PER_CLIENT, 0)
    rss_after_warm_up = process.memory_info().rss
    rest = run_all(SOAK_REQUESTS // CLIENTS - WARM_UP_PER_CLIENT, WARM_UP_PER_CLIENT)
    rss_at_end = process.memory_info().rss
    statuses = warm + rest
    assert len(statuses) == SOAK_REQUESTS
    assert [s for s in statuses if s >= 500] == []
    assert set(statuses) <= {200, 201}, sorted(set(statuses))
    growth = rss_at_end - rss_after_warm_up
    print(f"soak: RSS {rss_after_warm_up / 2**20:.0f} MiB after warm-up, {rss_at_end / 2**20:.0f} MiB at the end "
          f"(growth {growth / 2**20:+.1f} MiB; bound {RSS_GROWTH_BOUND / 2**20:.0f} MiB)")
    assert growth < RSS_GROWTH_BOUND


def trickle(sockets: list[socket.socket], stop: threading.Event) -> None:
    """Send one byte on every socket each half second until told to stop."""
    while not stop.wait(0.5):
        for sock in sockets:
            try:
                sock.send(b"a")
            except OSError:
                pass


def test_slow_clients_cannot_use_up_the_threads(public, shapes_dataset):
    import requests

    host, port = public.url.removeprefix("http://").split(":")
    slow = []
    for number in range(16):  # 4 times the server's threads
        sock = socket.create_connection((host, int(port)), timeout=10)
        if number % 2:  # headers that never end
            sock.sendall(b"POST /api/v1/captions HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        else:  # an upload that never ends
            sock.sendall(b"POST /api/v1/captions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                         + public.keys["alice"].encode() + b"\r\nContent-Type: image/png\r\n"
                         b"Content-Length: 500000\r\n\r\n" + b"\x89PNG")
        slow.append(sock)
    stop = threading.Event()
    trickler = threading.Thread(target=trickle, args=(slow, stop), daemon=True)
    trickler.start()
    try:
        time.sleep(1.5)
        image = shapes_image_bytes(shapes_dataset, 3, "JPEG")

        def caption(_):
            return requests.post(public.url + "/api/v1/captions", headers=public.headers(), timeout=20,
                                 files={"image": ("s.jpg", image, "image/jpeg")}).status_code

        with ThreadPoolExecutor(8) as pool:
            assert list(pool.map(caption, range(8))) == [200] * 8  # while 16 slow clients hold connections
        # a client that goes silent is let go
        silent = socket.create_connection((host, int(port)), timeout=CLIENT_TIMEOUT_S * 10)
        silent.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        assert silent.recv(1024) == b"", "the server kept a silent connection open"
        silent.close()
    finally:
        stop.set()
        trickler.join()
        for sock in slow:
            sock.close()


def test_uploads_are_never_written_to_disk(public):
    import requests

    before = public.writes_log.read_text().splitlines() if public.writes_log.exists() else []
    big = png(1, (1600, 1200), noise=True)  # several MB: larger than any in-memory spool threshold
    assert len(big) > 2_000_000
    captioned = requests.post(public.url + "/api/v1/captions", headers=public.headers(), timeout=60,
                              files={"image": ("big.png", big, "image/png")})
    assert captioned.status_code == 200, captioned.text
    raw = requests.post(public.url + "/api/v1/captions", headers={**public.headers(), "Content-Type": "image/png"},
                        data=big, timeout=60)
    assert raw.status_code == 200, raw.text
    saved = requests.post(public.url + "/api/v1/history", headers=public.headers(), timeout=60,
                          files={"image": ("big.png", big, "image/png")}, data={"caption": "noise", "model": "m"})
    assert saved.status_code == 201, saved.text
    written = public.writes_log.read_text().splitlines()[len(before):] if public.writes_log.exists() else []
    outside_database = [path for path in written if not path.startswith(str(public.database_folder))]
    assert outside_database == [], outside_database
    assert list(public.tmp.iterdir()) == []
    thumbnail = requests.get(public.url + f"/history/{saved.json()['id']}/thumbnail.jpg", headers=public.headers(),
                             timeout=10)
    assert thumbnail.status_code == 200 and len(thumbnail.content) < 200_000  # only the small thumbnail is kept


def test_disk_full_while_saving_history(public, shapes_dataset):
    import requests

    if public.disk_full_skip:
        pytest.skip(public.disk_full_skip)
    admin = public.headers("admin")
    total_before = requests.get(public.url + "/api/v1/history", headers=admin, timeout=10).json()["total"]
    saved, refused = [], None
    for number in range(400):  # noisy thumbnails of ~60 KB: a 4 MB filesystem fills within a few dozen
        answer = requests.post(public.url + "/api/v1/history", headers=admin, timeout=60,
                               files={"image": ("n.png", png(number, (320, 320), noise=True), "image/png")},
                               data={"caption": f"noise {number}", "model": "m"})
        if answer.status_code != 201:
            refused = answer
            break
        saved.append(answer.json()["id"])
    assert refused is not None, "the small filesystem never filled"
    assert refused.status_code == 507, refused.text
    error = refused.json()["error"]
    assert error["code"] == "storage_full" and "disk is full" in error["message"] and "nothing was saved" in error["message"]
    listing = requests.get(public.url + "/api/v1/history?per_page=100", headers=admin, timeout=10).json()
    assert listing["total"] == total_before + len(saved)  # no partial row
    assert f"noise {len(saved)}" not in {entry["caption"] for entry in listing["entries"]}
    for entry_id in saved[-3:]:
        assert requests.get(public.url + f"/history/{entry_id}/thumbnail.jpg", headers=admin,
                            timeout=10).status_code == 200
    caption = requests.post(public.url + "/api/v1/captions", headers=admin, timeout=30,
                            files={"image": ("s.jpg", shapes_image_bytes(shapes_dataset, 1, "JPEG"), "image/jpeg")})
    assert caption.status_code == 200  # nothing else broken
    assert public.server.readyz()["status"] == "ready"
    again = requests.post(public.url + "/api/v1/history", headers=admin, timeout=60,
                          files={"image": ("n.png", png(999, (320, 320), noise=True), "image/png")},
                          data={"caption": "still full", "model": "m"})
    assert again.status_code == 507


def test_no_key_cookie_or_translation_secret_in_the_log(public):
    import requests

    with requests.Session() as browser:  # a person signing in on the pages
        page = browser.get(public.url + "/sign-in", timeout=10).text
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        signed_in = browser.post(public.url + "/sign-in", timeout=10, allow_redirects=False,
                                 data={"csrf_token": token, "key": public.keys["alice"], "next": "/history"})
        assert signed_in.status_code == 302
        cookie = browser.cookies.get("session")
        assert cookie and browser.get(public.url + "/history", timeout=10).status_code == 200
        translated = browser.post(public.url + "/api/v1/translate", json={"text": "a red circle", "to": "de"},
                                  headers={"X-CSRFToken": token}, timeout=10)
        assert translated.status_code == 200 and translated.json()["text"] == "ein roter Kreis"
    wrong = requests.get(public.url + "/api/v1/history", timeout=10,
                         headers={"Authorization": "Bearer cap_thisisnotakeybutlookslikeone000000000000"})
    assert wrong.status_code == 401
    log = public.server.log_tail(10_000_000)
    assert "rate limit" in log or "models ready" in log  # the log is really there
    secrets_found = [name for name, secret in [*public.keys.items(), ("session cookie", cookie),
                                               ("translator key", TRANSLATOR_KEY),
                                               ("wrong key", "cap_thisisnotakeybutlookslikeone")]
                     if secret in log]
    assert secrets_found == []
    assert "Authorization" not in log and "Traceback" not in log
