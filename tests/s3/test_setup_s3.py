"""``gateway setup`` for recordings in a real S3 bucket: the layout is recognised by listing
it, and the credentials setup ran with go to the service's environment file only."""

from __future__ import annotations

import json
import shlex
import stat
from pathlib import Path

from tests.conftest import run_gateway
from tests.s3.conftest import BucketFactory, S3Env

CONFIG = Path("etc/recording-gateway/gateway.toml")
ENVIRONMENT = Path("etc/recording-gateway/environment")
CALL = "1773047410.1"
OBJECTS = {
    f"pbx1/2026/03/09/in-100-200-20260309-101010-{CALL}.wav": b"RIFF" + b"a" * 500,
    f"pbx1/2026/03/09/out-200-100-20260309-101010-{CALL}.wav": b"RIFF" + b"b" * 300,
    "pbx1/2026/03/08/in-100-200-20260308-090000-1772960400.3.wav": b"RIFF" + b"c" * 100,
}


def test_setup_on_a_bucket_writes_its_credentials_for_the_service(
    tmp_path: Path, s3env: S3Env, make_bucket: BucketFactory
) -> None:
    url = s3env.url(make_bucket(OBJECTS), "pbx1")
    env = s3env.environ()
    done = run_gateway(
        *("setup", "--root", str(tmp_path), "--public-url", "https://pbx.example.com"),
        *("--path", url, "--timezone", "UTC"),
        env=env,
        input=b"",
    )
    out = done.stdout.decode() + done.stderr.decode()
    assert done.returncode == 0, out
    assert "Proposed layout: freepbx" in out
    assert f"search for call {CALL}: 2 file(s)" in out
    secret_key = s3env.credentials.secret_key
    assert secret_key not in out
    assert secret_key not in (tmp_path / CONFIG).read_text()
    environment = tmp_path / ENVIRONMENT
    assert stat.S_IMODE(environment.stat().st_mode) == 0o600
    variables = dict(
        shlex.split(line)[0].split("=", 1) for line in environment.read_text().splitlines()
    )
    assert variables == {
        "AWS_ACCESS_KEY_ID": s3env.credentials.access_key,
        "AWS_SECRET_ACCESS_KEY": secret_key,
    }
    # the written configuration, with only the environment file's credentials, finds the call
    without = {k: v for k, v in env.items() if k not in variables}
    found = run_gateway(
        *("search", "--config", str(tmp_path / CONFIG), "--json"),
        *("--callid", CALL, "--timestamp", "2026-03-09T10:10:10Z"),
        env={**without, **variables},
    )
    assert found.returncode == 0, found.stderr
    assert len(json.loads(found.stdout)) == 2
