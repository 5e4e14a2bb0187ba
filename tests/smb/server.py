"""A real Samba ``smbd`` on a free loopback port, with its own config, user and share.

Used by the SMB tests (``tests/smb/conftest.py``) and by the benchmark (``bench/smb.py``).
Recipe: ``../shared/test-servers.md``. The server runs in the foreground as a child of this
process and is stopped by its process id, never by name.
"""

from __future__ import annotations

import getpass
import os
import secrets
import shutil
import signal
import socket
import subprocess
from pathlib import Path
from urllib.parse import quote

from tests.conftest import wait_until

SHARE = "recordings"

_CONF = """\
[global]
  server role = standalone server
  smb ports = {port}
  interfaces = 127.0.0.1
  bind interfaces only = yes
  disable netbios = yes
  server min protocol = SMB2_10
  private dir = {d}/private
  lock directory = {d}/lock
  state directory = {d}/state
  cache directory = {d}/cache
  pid directory = {d}/pid
  ncalrpc dir = {d}/ncalrpc
  usershare path =
  passdb backend = tdbsam:{d}/private/passdb.tdb
  log file = {d}/log/log.%m
  load printers = no
  printing = bsd
  printcap name = /dev/null
  disable spoolss = yes
  kernel oplocks = no
[{share}]
  path = {d}/share
  read only = yes
"""


def smbd_missing() -> str | None:
    """Why a real smbd cannot run here, or ``None`` when it can."""
    for tool in ("smbd", "pdbedit"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            return f"{tool} is not installed (apt-get install samba; scripts/install-deps.sh)"
    return None


def _tool(name: str) -> str:
    return shutil.which(name) or f"/usr/sbin/{name}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class SambaServer:
    """One smbd with one read-only share (``recordings``) backed by ``self.share_dir``."""

    def __init__(self, base: Path, *, port: int | None = None) -> None:
        self.base = base
        self.port = port or free_port()
        self.user = getpass.getuser()
        self.password = "pw-" + secrets.token_hex(8)
        self.share_dir = base / "share"
        self.conf = base / "smb.conf"
        self.process: subprocess.Popen[bytes] | None = None
        for sub in ("private", "lock", "state", "cache", "pid", "ncalrpc", "log", "share"):
            (base / sub).mkdir(parents=True, exist_ok=True)
        (base / "private").chmod(0o700)
        self.conf.write_text(_CONF.format(port=self.port, d=base, share=SHARE))
        pw = f"{self.password}\n{self.password}\n"
        subprocess.run(
            [_tool("pdbedit"), "-s", str(self.conf), "-t", "-a", "-u", self.user],
            input=pw.encode(),
            check=True,
            capture_output=True,
        )

    def url(self, path: str = "", *, password: str | None = None, query: str = "") -> str:
        """``smb://user[:password]@127.0.0.1:port/recordings/path[?query]``."""
        auth = quote(self.user, safe="")
        if password is not None:
            auth += ":" + quote(password, safe="")
        url = f"smb://{auth}@127.0.0.1:{self.port}/{SHARE}"
        if path:
            url += "/" + path.strip("/")
        return url + (f"?{query}" if query else "")

    def start(self, timeout: float = 15.0) -> None:
        """Start smbd and wait until it accepts TCP connections on its port."""
        log = (self.base / "log" / "smbd.out").open("ab")
        self.process = subprocess.Popen(
            [_tool("smbd"), "--foreground", "--debug-stdout", "-s", str(self.conf)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        process = self.process

        def listening() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"smbd exited with {process.returncode}; see {self.base}/log")
            return self._accepts()

        try:
            wait_until(listening, timeout, what=f"smbd to listen on port {self.port}")
        except AssertionError:
            self.stop()
            raise

    def _accepts(self) -> bool:
        """Whether smbd's port accepts a TCP connection now."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        """Stop smbd (by its pid) and wait until its port refuses connections."""
        process, self.process = self.process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        wait_until(
            lambda: not self._accepts(), 10, what=f"smbd's port {self.port} to refuse connections"
        )

    def _tree(self) -> list[int]:
        """smbd's pid and those of its descendants (the per-connection children)."""
        assert self.process is not None
        parents: dict[int, int] = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(stat.parent.name)] = int(fields[1])
        tree = [self.process.pid]
        for pid in tree:
            tree.extend(child for child, parent in parents.items() if parent == pid)
        return tree

    def pause(self) -> None:
        """Freeze smbd and its children (SIGSTOP): connections stay open, nothing answers."""
        for pid in self._tree():
            os.kill(pid, signal.SIGSTOP)

    def resume(self) -> None:
        for pid in self._tree():
            os.kill(pid, signal.SIGCONT)

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self) -> SambaServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
