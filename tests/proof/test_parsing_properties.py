"""hypothesis properties of the parsers that see untrusted input first.

Each property feeds arbitrary input (text, bytes, headers) and allows exactly two outcomes: a
well-formed result that keeps the rule the parser exists for, or the project's own error
(``UsageError``, ``Forbidden``, ...), which the web layer turns into a 4xx. Anything else
(``ValueError``, ``OverflowError``, ``IndexError``...) would be a 500. Derandomized and bounded,
so CI is stable and quick.
"""

from __future__ import annotations

import json
import posixpath
import string
from datetime import UTC, datetime
from email.utils import format_datetime
from zoneinfo import ZoneInfo

import falcon.testing
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from gateway.errors import Forbidden, GatewayError, LinkExpired, LinkInvalid, UsageError
from gateway.query import Query, check_callid, check_segment, parse_timestamp
from gateway.signing import LinkSigner
from gateway.storage import check_key
from gateway.testing import TRAVERSAL_CORPUS
from gateway.web import jsonlistener
from gateway.web.credentials import credential_of
from gateway.web.ranges import ByteRange, Unsatisfiable, content_disposition, requested_range
from gateway_s3.settings import S3Settings
from gateway_s3.store import S3Store
from gateway_smb.config import smb_segments

settings.register_profile("proof", max_examples=400, derandomize=True, deadline=None, database=None)
PROOF = settings.get_profile("proof")
TZ = ZoneInfo("Europe/Rome")

# Text biased towards what matters here: path punctuation, dots, encodings, look-alikes.
LOOKALIKES = ["\u2215", "\uff0e", "\uff0f", "\u2024"]  # unicode slashes and dots
PATHY = st.lists(
    st.sampled_from(
        [*"./\\%:~ \x00\n\tac.wav0123", "..", "%2e", "%2f", "%c0%ae", "C:", "\u00e9", *LOOKALIKES]
    ),
    max_size=20,
).map("".join)
ANY_TEXT = st.one_of(st.text(max_size=60), PATHY, st.sampled_from(TRAVERSAL_CORPUS))


# -- keys ---------------------------------------------------------------------------------


def inside(parts: list[str]) -> bool:
    root = "/srv/root"
    joined = posixpath.normpath(posixpath.join(root, *parts))
    return joined.startswith(root + "/")


@PROOF
@given(ANY_TEXT)
@example("a/../../b")
@example("a\\..\\b")
def test_check_key_returns_safe_segments_or_forbidden(key: str) -> None:
    try:
        parts = check_key(key)
    except Forbidden:
        return
    assert "/".join(parts) == key
    assert all(p not in ("", ".", "..") for p in parts)
    assert not any(c in key for c in "\\\x00")
    assert all(ord(c) >= 0x20 and ord(c) != 0x7F for c in key)
    assert inside(parts)


@PROOF
@given(ANY_TEXT)
@example("a.wav::$DATA")
@example("CON.wav")
@example("x.wav.")
def test_smb_segments_are_plain_windows_names_or_forbidden(key: str) -> None:
    try:
        parts = smb_segments(key)
    except Forbidden:
        return
    assert parts == check_key(key)
    for part in parts:
        assert not set(part) & set('\\:<>"|?*')
        assert part[-1] not in ". "
    assert inside(parts)


S3 = S3Store(S3Settings(bucket="bucket", prefix="pbx1", endpoint="http://127.0.0.1:9"))


@PROOF
@given(ANY_TEXT)
def test_s3_object_keys_stay_below_the_prefix(key: str) -> None:
    try:
        object_key = S3._object_key(key)
    except Forbidden:
        return
    assert object_key == f"pbx1/{key}"
    assert inside(object_key.split("/")[1:])


@PROOF
@given(st.one_of(ANY_TEXT, ANY_TEXT.map(lambda k: "pbx1/" + k)))
@example("pbx10/x.wav")
@example("pbx1/../x.wav")
def test_s3_listed_objects_map_back_only_when_safe(object_key: str) -> None:
    """A listed object key becomes a store key only when it is below the prefix and safe."""
    relative = S3._relative(object_key)
    if relative is None:
        return
    assert object_key == f"pbx1/{relative}"
    check_key(relative)  # never raises for what is offered to clients


# -- call ids, tenants, timestamps -----------------------------------------------------------


@PROOF
@given(ANY_TEXT)
def test_callid_check(callid: str) -> None:
    try:
        check_callid(callid)
    except UsageError:
        return
    assert callid.strip()
    assert len(callid) <= 200
    assert not set(callid) & {"/", "\\"}
    assert all(ord(c) >= 0x20 and ord(c) != 0x7F for c in callid)


@PROOF
@given(ANY_TEXT)
def test_tenant_is_one_plain_folder_name_or_refused(tenant: str) -> None:
    try:
        check_segment("tenant", tenant)
        Query("1773047700.109", tenant=tenant)
    except UsageError:
        return
    parts = check_key(tenant)  # a valid key of exactly one segment
    assert parts == [tenant]
    assert not set(tenant) & set("*?%")


TIMESTAMPS = st.one_of(
    st.text(max_size=40),
    st.text(alphabet="0123456789-:.T+Z ", max_size=32),
    st.integers(min_value=-(10**20), max_value=10**20).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.datetimes(timezones=st.none() | st.just(UTC)).map(lambda d: d.isoformat()),
)


@PROOF
@given(TIMESTAMPS)
@example("99999999999")
@example("2026-03-09.25:00:00")
@example("0000-00-00")
@example("2026-03-09T09:15:00 01:00")
def test_parse_timestamp_gives_an_aware_datetime_or_usage_error(text: str) -> None:
    try:
        moment = parse_timestamp(text, TZ)
    except UsageError:
        return
    assert isinstance(moment, datetime)
    assert moment.tzinfo is not None
    assert moment.utcoffset() is not None


@PROOF
@given(st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1)))
def test_parse_timestamp_reads_its_documented_formats(local: datetime) -> None:
    local = local.replace(microsecond=0)
    aware = local.replace(tzinfo=TZ)
    qm = local.strftime("%Y-%m-%d.%H:%M:%S")
    assert parse_timestamp(qm, TZ) == aware
    assert parse_timestamp(local.isoformat(), TZ) == aware
    utc = aware.astimezone(UTC)
    if 10**8 <= utc.timestamp() < 10**11:
        assert parse_timestamp(str(int(utc.timestamp())), TZ) == utc


# -- the QueueMetrics fields -----------------------------------------------------------------

CONTENT_TYPES = st.sampled_from(
    [None, "", "application/json", "application/x-www-form-urlencoded", "text/plain",
     "APPLICATION/JSON; charset=utf-8", "multipart/form-data; boundary=x"]
)  # fmt: skip
JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=8,
)
BODIES = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=100).map(str.encode),
    JSONISH.map(lambda v: json.dumps(v).encode()),
    st.dictionaries(st.sampled_from(["callid", "ts", "token", "tenant", "x"]), ANY_TEXT).map(
        lambda d: "&".join(f"{k}={v}" for k, v in d.items()).encode("utf-8", "surrogatepass")
    ),
)


@PROOF
@given(st.text(max_size=80), BODIES, CONTENT_TYPES, st.none() | st.text(max_size=30))
@example("", b"\xff\xfe", "application/json", None)
@example("", b'{"callid": 1e400}', None, "Bearer ")
@example("", b"[1]", "application/json", None)
@example("callid=%ff&ts=%00", b"", None, "bearer  x ")
def test_parse_fields_gives_text_fields_or_usage_error(
    query: str, body: bytes, content_type: str | None, authorization: str | None
) -> None:
    try:
        fields = jsonlistener.parse_fields(query, body, content_type)
    except UsageError:
        return
    assert isinstance(fields, dict)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in fields.items())
    token = credential_of(authorization, fields)
    assert token is None or (isinstance(token, str) and token == token.strip() and token)
    try:
        query_ = jsonlistener.to_query(fields, TZ)
    except UsageError:
        return
    assert isinstance(query_, Query)
    check_callid(query_.callid)


# -- ranges and validators ---------------------------------------------------------------

MTIME = datetime(2026, 3, 9, 9, 15, tzinfo=UTC)
ETAG = '"0123456789abcdef0123456789abcdef"'
RANGES = st.one_of(
    st.text(max_size=30),
    st.builds(
        lambda a, b, unit: f"{unit}={a}-{b}",
        st.one_of(st.none(), st.integers(-5, 2**70)).map(lambda v: "" if v is None else v),
        st.one_of(st.none(), st.integers(-5, 2**70)).map(lambda v: "" if v is None else v),
        st.sampled_from(["bytes", "BYTES", " bytes", "items", "bytes ", ""]),
    ),
    st.sampled_from(["bytes=0-1,5-6", "bytes=-0", "bytes=--1", "bytes=1-0", "bytes=0x1-2"]),
)
IF_RANGE = st.one_of(
    st.none(),
    st.just(ETAG),
    st.just("W/" + ETAG),
    st.just(format_datetime(MTIME, usegmt=True)),
    st.text(max_size=30),
)


def header_safe(value: str) -> bool:
    return value.isascii() and not any(c in value for c in "\r\n\x00")


@PROOF
@given(RANGES, IF_RANGE, st.integers(0, 2**40))
@example("bytes=0-", None, 0)
@example("bytes=-5", None, 3)
@example("bytes=18446744073709551616-", None, 10)
def test_requested_range_is_inside_the_file_or_none_or_unsatisfiable(
    range_header: str, if_range: str | None, size: int
) -> None:
    assume(header_safe(range_header) and (if_range is None or header_safe(if_range)))
    headers = {"Range": range_header}
    if if_range is not None:
        headers["If-Range"] = if_range
    req = falcon.testing.create_req(path="/files/x/y.wav", headers=headers)
    try:
        wanted = requested_range(req, size, ETAG, MTIME)
    except Unsatisfiable:
        return
    if wanted is None:
        return
    assert isinstance(wanted, ByteRange)
    assert 0 <= wanted.start <= wanted.end < size
    assert wanted.length >= 1


@PROOF
@given(st.integers(0, 2**40), st.integers(0, 2**40), st.integers(1, 2**40))
def test_requested_range_of_a_well_formed_header(first: int, last: int, size: int) -> None:
    assume(first <= last)
    req = falcon.testing.create_req(headers={"Range": f"bytes={first}-{last}"})
    if first >= size:
        with pytest.raises(Unsatisfiable):
            requested_range(req, size, ETAG, MTIME)
        return
    assert requested_range(req, size, ETAG, MTIME) == ByteRange(first, min(last, size - 1))


@PROOF
@given(st.text(max_size=60))
@example('a";\r\nX-Evil: 1.wav')
def test_content_disposition_is_a_safe_header_value(name: str) -> None:
    value = content_disposition(name)
    assert value.isascii()
    assert value.isprintable()
    filename = value.split('filename="', 1)[1].split('"; filename*=', 1)[0]
    assert not set(filename) & set('"\\;%')


# -- signed links ----------------------------------------------------------------------------

SIGNER = LinkSigner(["k" * 40])


@PROOF
@given(
    st.one_of(st.text(max_size=120), st.text(alphabet=string.ascii_letters + "-_.", max_size=120))
)
def test_verify_accepts_only_its_own_links(token: str) -> None:
    with pytest.raises((LinkInvalid, LinkExpired)):
        SIGNER.verify(token)


@PROOF
@given(st.text(max_size=80), st.text(min_size=1, max_size=80), st.integers(1, 7 * 24 * 3600))
def test_a_signed_link_verifies_to_what_was_signed(source: str, key: str, ttl: int) -> None:
    token, target = SIGNER.sign(source, key, ttl)
    assert token.isascii()
    assert "/" not in token
    got = SIGNER.verify(token)
    assert (got.source, got.key, got.expires) == (source, key, target.expires)
    for i in range(0, len(token), max(1, len(token) // 7)):  # any one changed character
        flipped = token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1 :]
        try:
            other = SIGNER.verify(flipped)
        except GatewayError:
            continue
        assert (other.source, other.key) == (source, key)  # base64 slack bits only
