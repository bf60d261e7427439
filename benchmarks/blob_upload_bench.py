"""Blob upload memory benchmark: the server's resident memory while a 200 MiB file is uploaded in blocks.

The real server (``batchpoint serve --http``, SQLite, a fresh temporary home) receives the file through its
blob API from azure-storage-blob, as ``azure-ai-ml`` uploads code and data: 4 MiB blocks, two at a time, then
the block list. A thread samples the server process's RSS every 20 ms during the upload; the peak must stay
under the target, whatever the file size, because the server streams blocks to disk. The file is downloaded
again afterwards and must hash the same.

Usage: python benchmarks/blob_upload_bench.py [--no-fail] [--size-mib N]
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from azure.storage.blob import BlobClient, BlobServiceClient

from targets import arguments, check, exit_status

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.server: the real server on a free port
from tests.server import API, WORKSPACE_ID, Server

MIB = 1024 * 1024
BLOCK_SIZE = 4 * MIB
CONCURRENCY = 2
TARGET_PEAK_MIB = 150
SAMPLE_INTERVAL = 0.02
IDLE_SECONDS = 1.0
BLOB_NAME = "bench/upload.bin"


def rss_reader(pid: int) -> Callable[[], int]:
    """Reads the resident set size of ``pid`` in bytes: through psutil where installed, else /proc."""
    try:
        import psutil
    except ImportError:
        status = Path(f"/proc/{pid}/status")
        return lambda: _vm_rss(status.read_text())
    process = psutil.Process(pid)
    return lambda: process.memory_info().rss


def _vm_rss(status: str) -> int:
    line = next(line for line in status.splitlines() if line.startswith("VmRSS:"))
    return int(line.split()[1]) * 1024


class PeakSampler:
    """Samples a reading in a background thread while the ``with`` block runs; ``peak`` is the highest."""

    def __init__(self, read: Callable[[], int]) -> None:
        self.read, self.peak = read, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while True:
            self.peak = max(self.peak, self.read())
            if self._stop.wait(SAMPLE_INTERVAL):
                return

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()


def write_random_file(path: Path, size: int) -> str:
    """A file of ``size`` random bytes, written 1 MiB at a time; returns its SHA-256."""
    digest = hashlib.sha256()
    with path.open("wb") as file:
        for offset in range(0, size, MIB):
            chunk = os.urandom(min(MIB, size - offset))
            digest.update(chunk)
            file.write(chunk)
    return digest.hexdigest()


def default_blob(server: Server) -> BlobClient:
    """The benchmark blob in the default datastore, reached as the SDKs reach it: account name and key."""
    versioned = {"api-version": API}
    datastore_id = f"{WORKSPACE_ID}/datastores/workspaceblobstore"
    with server.client() as client:
        properties = client.get(datastore_id, params=versioned).raise_for_status().json()["properties"]
        key = client.post(f"{datastore_id}/listSecrets", params=versioned).raise_for_status().json()["key"]
    account = properties["accountName"].split("/blob/")[1].split("?")[0]
    service = BlobServiceClient(
        f"{server.base_url}/blob/{account}", credential=key, max_block_size=BLOCK_SIZE, max_single_put_size=BLOCK_SIZE
    )
    return service.get_blob_client(properties["containerName"], BLOB_NAME)


def downloaded_sha256(blob: BlobClient) -> str:
    digest = hashlib.sha256()
    for chunk in blob.download_blob(max_concurrency=CONCURRENCY).chunks():
        digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class Results:
    size: int
    idle_rss: int
    peak_rss: int
    seconds: float
    identical: bool


def benchmark(size: int, workdir: Path) -> Results:
    source = workdir / "upload.bin"
    expected = write_random_file(source, size)
    server = Server(home=workdir / "home")
    (workdir / "home").mkdir()
    server.start()
    try:
        assert server.process is not None
        blob = default_blob(server)
        read_rss = rss_reader(server.process.pid)
        with PeakSampler(read_rss) as idle:
            time.sleep(IDLE_SECONDS)
        started = time.monotonic()
        with PeakSampler(read_rss) as upload, source.open("rb") as data:
            blob.upload_blob(data, length=size, max_concurrency=CONCURRENCY, overwrite=True)
        seconds = time.monotonic() - started
        identical = downloaded_sha256(blob) == expected
    finally:
        server.stop()
    return Results(size=size, idle_rss=idle.peak, peak_rss=upload.peak, seconds=seconds, identical=identical)


def report(results: Results) -> bool:
    mib = results.size / MIB
    print(
        f"uploaded {mib:.0f} MiB in {BLOCK_SIZE // MIB} MiB blocks, {CONCURRENCY} at a time: "
        f"{results.seconds:.1f} s ({mib / results.seconds:.0f} MiB/s)"
    )
    print(
        f"server RSS: idle {results.idle_rss / MIB:.1f} MiB, peak during upload {results.peak_rss / MIB:.1f} MiB "
        f"(+{(results.peak_rss - results.idle_rss) / MIB:.1f} MiB)"
    )
    memory_ok = check(results.peak_rss < TARGET_PEAK_MIB * MIB, f"peak RSS < {TARGET_PEAK_MIB} MiB")
    identical = check(results.identical, "downloaded blob is byte-identical (SHA-256)")
    return memory_ok and identical


def main(argv: list[str] | None = None) -> int:
    parser = arguments(__doc__)
    parser.add_argument("--size-mib", type=int, default=200, help="size of the uploaded file (default 200)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="blob-upload-bench-") as workdir:
        results = benchmark(args.size_mib * MIB, Path(workdir))
    passed = report(results)
    return exit_status(passed, args.no_fail)


if __name__ == "__main__":
    sys.exit(main())
