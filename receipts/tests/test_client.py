"""receipts.client: the CLI offline (keys, sign, aggregate) and against a tiny HTTP server on
127.0.0.1 started and stopped by the tests. No database, no Django."""

from __future__ import annotations

import base64
import http.server
import json
import os
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from receipts import bls
from receipts.client import ClientError, cli, create_key_file, load_key_file
from receipts.format import Receipt, realm_id, time_bucket

REPO = Path(__file__).resolve().parents[2]
REALM = realm_id("PBTS test", "https://tracker.example.org")
INFO_HASH = "c9e15763f722f23e98a29decdfae341b98d53056"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any]:
    """Run the CLI in-process; (exit status, decoded JSON printed on stdout)."""
    code = cli.main(list(argv))
    return code, json.loads(capsys.readouterr().out)


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, Path]:
    """Key files of one uploader and two downloaders (fixed IKMs, so signatures are fixed)."""
    paths = {}
    for i, name in enumerate(("uploader", "downloader", "downloader2")):
        paths[name] = tmp_path / f"{name}.key"
        create_key_file(paths[name], bytes([i]) * 32)
    return paths


def _pk_b64(path: Path) -> str:
    return load_key_file(path).pk_b64


def _sign(capsys: pytest.CaptureFixture[str], key: Path, uploader: Path, index: int) -> Any:
    code, out = run(
        capsys,
        "sign", "--key", str(key), "--realm", REALM.hex(), "--info-hash", INFO_HASH,
        "--piece-index", str(index), "--piece-length", "16384",
        "--uploader-pk", _pk_b64(uploader), "--time", "1700000000",
    )  # fmt: skip
    assert code == 0, out
    return out


# --- keys ------------------------------------------------------------------------------------


def test_keygen_writes_a_0600_file_and_never_prints_the_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "me.key"
    old_umask = os.umask(0)  # even with a permissive umask
    try:
        code, out = run(capsys, "keygen", "--out", str(path))
    finally:
        os.umask(old_umask)
    assert code == 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    document = json.loads(path.read_text())
    assert document["public_key"] == out["public_key"]
    assert document["secret_key"] not in json.dumps(out)
    assert bls.sk_to_pk(int(document["secret_key"], 16)) == base64.b64decode(out["public_key"])
    before = path.read_text()
    code, out = run(capsys, "keygen", "--out", str(path))
    assert (code, out["error"]) == (1, "key_file_exists")
    assert path.read_text() == before


def test_key_file_refused_when_exposed_or_inconsistent(tmp_path: Path) -> None:
    path = tmp_path / "k.key"
    create_key_file(path, b"\x05" * 32)
    secret = json.loads(path.read_text())["secret_key"]
    path.chmod(0o644)
    with pytest.raises(ClientError, match="accessible by others"):
        load_key_file(path)
    path.chmod(0o600)
    document = json.loads(path.read_text())
    document["public_key"] = load_key_file(_other_key(tmp_path)).pk_b64
    path.write_text(json.dumps(document))
    with pytest.raises(ClientError, match="not the secret key's") as caught:
        load_key_file(path)
    assert secret not in json.dumps(caught.value.to_json())


def _other_key(tmp_path: Path) -> Path:
    path = tmp_path / "other.key"
    create_key_file(path, b"\x06" * 32)
    return path


# --- sign and aggregate (offline) -------------------------------------------------------------


def test_sign_prints_a_verifiable_receipt(
    keys: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    out = _sign(capsys, keys["downloader"], keys["uploader"], 3)
    data = base64.b64decode(out["receipt"])
    receipt = Receipt.from_bytes(data)
    downloader = load_key_file(keys["downloader"])
    assert receipt.downloader_pk == downloader.pk
    assert receipt.uploader_pk == load_key_file(keys["uploader"]).pk
    assert (receipt.realm, receipt.info_hash.hex()) == (REALM, INFO_HASH)
    assert (receipt.piece_index, receipt.piece_length) == (3, 16384)
    assert receipt.time_bucket == time_bucket(1_700_000_000)
    assert out["receipt_id"] == receipt.receipt_id.hex()
    sig = base64.b64decode(out["signature"])
    for name in ("blst", "py_ecc"):
        assert bls.get_backend(name).verify(downloader.pk, data, sig)


def test_sign_refuses_bad_fields(keys: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(
        capsys,
        "sign", "--key", str(keys["downloader"]), "--realm", "abcd", "--info-hash", INFO_HASH,
        "--piece-index", "1", "--piece-length", "0", "--uploader-pk", _pk_b64(keys["uploader"]),
    )  # fmt: skip
    assert (code, out["error"]) == (1, "bad_input")
    assert "realm must be 32 bytes" in out["message"]


def test_aggregate_verifies_with_both_backends(
    keys: dict[str, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    signed = [
        _sign(capsys, keys["downloader"], keys["uploader"], 0),
        _sign(capsys, keys["downloader"], keys["uploader"], 1),
        _sign(capsys, keys["downloader2"], keys["uploader"], 0),
    ]
    source = tmp_path / "signed.json"
    source.write_text(json.dumps(signed))
    code, out = run(capsys, "aggregate", str(source))
    assert code == 0
    msgs = [base64.b64decode(r) for r in out["receipts"]]
    assert msgs == [base64.b64decode(s["receipt"]) for s in signed]
    pks = [Receipt.from_bytes(m).downloader_pk for m in msgs]
    aggregate = base64.b64decode(out["aggregate_signature"])
    for name in ("blst", "py_ecc"):
        assert bls.get_backend(name).aggregate_verify(pks, msgs, aggregate)


def test_aggregate_refuses_bad_duplicate_and_mixed_input(
    keys: dict[str, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    good = _sign(capsys, keys["downloader"], keys["uploader"], 0)
    other = _sign(capsys, keys["downloader"], keys["uploader"], 1)
    forged = dict(other, signature=good["signature"])
    mixed = _sign(capsys, keys["uploader"], keys["downloader2"], 0)
    source = tmp_path / "in.json"
    for entries, error in (
        ([good, forged], "invalid_signature"),
        ([good, good], "duplicate_receipt"),
        ([good, mixed], "bad_input"),
        ([], "bad_input"),
        ([{"receipt": "!!", "signature": "AA=="}], "bad_input"),
    ):
        source.write_text(json.dumps(entries))
        code, out = run(capsys, "aggregate", str(source))
        assert (code, out["error"]) == (1, error)
    source.write_text(json.dumps([good, forged]))
    code, out = run(capsys, "aggregate", str(source))
    assert out["indexes"] == [1]


# --- HTTP ------------------------------------------------------------------------------------


@dataclass
class FakeSite:
    """A tiny JSON site: records requests, answers by path."""

    url: str
    requests: list[dict[str, Any]] = field(default_factory=list)


class _Handler(http.server.BaseHTTPRequestHandler):
    site: FakeSite
    routes = {
        ("POST", "/api/register"): (201, {"public_key": "ok"}),
        ("POST", "/api/report"): (202, {"id": "r-1", "status": "pending"}),
        ("GET", "/api/report/r-1"): (200, {"id": "r-1", "status": "verified"}),
        ("GET", "/api/report/r%2F2"): (200, {"id": "r/2", "status": "pending"}),
    }

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.site.requests.append(
            {"method": self.command, "path": self.path, "headers": dict(self.headers),
             "body": json.loads(body) if body else None}
        )  # fmt: skip
        if self.path.startswith("/slow"):
            time.sleep(1.5)
        if self.path.startswith("/moved"):
            self.send_response(302)
            self.send_header("Location", self.site.url + "/api/register")
            self.end_headers()
            return
        status, reply = self.routes.get((self.command, self.path), (404, {"detail": "Not found."}))
        payload = json.dumps(reply).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def site() -> Iterator[FakeSite]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    fake = FakeSite(url=f"http://127.0.0.1:{server.server_address[1]}")
    _Handler.site = fake
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        assert not thread.is_alive()


def test_register_posts_key_and_pop_with_token(
    site: FakeSite, keys: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run(
        capsys, "register", "--site", site.url + "/api/", "--token", "T0K", "--key",
        str(keys["downloader"]), "--timeout", "5",
    )  # fmt: skip
    assert code == 0
    assert out == {"status": 201, "response": {"public_key": "ok"},
                   "public_key": _pk_b64(keys["downloader"])}  # fmt: skip
    (request,) = site.requests
    assert (request["method"], request["path"]) == ("POST", "/api/register")
    assert request["headers"]["Authorization"] == "Token T0K"
    assert request["headers"]["Content-Type"] == "application/json"
    body = request["body"]
    assert set(body) == {"public_key", "pop"}
    pk, pop = base64.b64decode(body["public_key"]), base64.b64decode(body["pop"])
    assert pk == load_key_file(keys["downloader"]).pk
    assert bls.get_backend("blst").pop_verify(pk, pop)
    secret = json.loads(keys["downloader"].read_text())["secret_key"]
    assert secret not in json.dumps(site.requests) + json.dumps(out)


def test_report_single_and_aggregate_then_status(
    site: FakeSite,
    keys: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PBTS_TOKEN", "from-env")
    signed = [_sign(capsys, keys[k], keys["uploader"], 9) for k in ("downloader", "downloader2")]
    singles = tmp_path / "signed.json"
    singles.write_text(json.dumps(signed))
    code, out = run(capsys, "report", "--site", site.url + "/api", str(singles))
    assert (code, out["status"], out["response"]["id"]) == (0, 202, "r-1")
    expected = [{"receipt": s["receipt"], "signature": s["signature"]} for s in signed]
    assert site.requests[-1]["body"] == {"receipts": expected}
    assert site.requests[-1]["headers"]["Authorization"] == "Token from-env"

    aggregated = tmp_path / "aggregate.json"
    code, agg = run(capsys, "aggregate", str(singles))
    aggregated.write_text(json.dumps(agg))
    code, out = run(capsys, "report", "--site", site.url + "/api", str(aggregated))
    assert code == 0
    assert site.requests[-1]["body"] == {
        "receipts": [{"receipt": s["receipt"]} for s in signed],
        "aggregate_signature": agg["aggregate_signature"],
    }
    code, out = run(capsys, "status", "--site", site.url + "/api", "r-1")
    assert (code, out) == (0, {"status": 200, "response": {"id": "r-1", "status": "verified"}})
    assert site.requests[-1]["method"] == "GET"
    code, out = run(capsys, "status", "--site", site.url + "/api", "r/2")
    assert (code, site.requests[-1]["path"]) == (0, "/api/report/r%2F2")


def test_http_errors_print_json_and_exit_1(
    site: FakeSite, keys: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run(capsys, "status", "--site", site.url + "/api", "--token", "T", "nope")
    assert code == 1
    assert out["error"] == "http" and out["status"] == 404
    assert out["response"] == {"detail": "Not found."}
    code, out = run(capsys, "status", "--site", site.url + "/slow", "--token", "T",
                    "--timeout", "0.3", "x")  # fmt: skip
    assert (code, out["error"]) == (1, "network")
    code, out = run(capsys, "register", "--site", site.url + "/moved", "--token", "T",
                    "--key", str(keys["downloader"]))  # fmt: skip
    assert (code, out["error"], out["status"]) == (1, "http", 302)
    assert not any(r["path"] == "/api/register" for r in site.requests)  # redirect not followed


def test_unreachable_site_and_missing_token(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{closed_port}"
    code, out = run(capsys, "status", "--site", url, "--token", "T", "--timeout", "2", "1")
    assert (code, out["error"]) == (1, "network")
    monkeypatch.delenv("PBTS_TOKEN", raising=False)
    code, out = run(capsys, "status", "--site", url, "1")
    assert (code, out["error"]) == (1, "bad_input")
    code, out = run(capsys, "status", "--site", "file:///etc/passwd", "--token", "T", "1")
    assert (code, out["error"]) == (1, "bad_site")


# --- no Django ------------------------------------------------------------------------------


def test_client_imports_and_runs_without_django(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env["PYTHONPATH"] = str(REPO)
    check = (
        "import sys, receipts.client, receipts.bls, receipts.format;"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('django', 'rest_framework')];"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", check], env=env, cwd=tmp_path, check=True, timeout=60)
    key = tmp_path / "cli.key"
    result = subprocess.run(
        [sys.executable, "-m", "receipts.client", "keygen", "--out", str(key)],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert json.loads(result.stdout)["public_key"] == load_key_file(key).pk_b64
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
