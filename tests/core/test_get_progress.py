"""``gateway get`` shows its progress on stderr when stderr is a terminal (a pseudo-terminal
here) and the file is large; in a pipe, never, and the files written are the same."""

from __future__ import annotations

import os
import pty
import subprocess
from pathlib import Path

from gateway.cli.find import PROGRESS_FROM
from tests.conftest import GATEWAY, write

KEY = "2026/03/09/in-200-100-20260309-120000-1773057600.7.wav"
BODY = b"RIFF" + bytes(range(256)) * (3 * PROGRESS_FROM // 256)


def get(root: Path, out: Path, *, terminal: bool) -> tuple[int, str]:
    """Run ``gateway get`` with stderr on a pseudo-terminal or a pipe: (status, stderr)."""
    args = [*GATEWAY, "get", "--path", str(root), "--callid", "1773057600.7", "-o", str(out)]
    if not terminal:
        done = subprocess.run(args, capture_output=True, timeout=60, check=False)
        return done.returncode, done.stderr.decode()
    main, side = pty.openpty()
    try:
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=side)
        os.close(side)
        seen = b""
        while True:
            try:
                chunk = os.read(main, 65536)
            except OSError:  # EIO: the terminal's other side is closed, the command ended
                break
            if not chunk:
                break
            seen += chunk
        proc.communicate(timeout=60)
        return proc.returncode, seen.decode(errors="replace")
    finally:
        os.close(main)


def test_a_large_file_shows_progress_on_a_terminal_only(tmp_path: Path) -> None:
    write(tmp_path / "rec" / KEY, BODY)
    status, shown = get(tmp_path / "rec", tmp_path / "tty.wav", terminal=True)
    assert status == 0, shown
    assert "tty.wav" in shown  # the bar's label
    assert "100%" in shown
    assert (tmp_path / "tty.wav").read_bytes() == BODY

    status, piped = get(tmp_path / "rec", tmp_path / "pipe.wav", terminal=False)
    assert status == 0, piped
    assert piped == ""  # no bar, no label, nothing
    assert (tmp_path / "pipe.wav").read_bytes() == BODY


def test_a_small_file_shows_no_progress(tmp_path: Path) -> None:
    write(tmp_path / "rec" / KEY)
    status, shown = get(tmp_path / "rec", tmp_path / "small.wav", terminal=True)
    assert status == 0, shown
    assert shown == ""
