"""The pure receipt rules (``receipts.rules``): no database."""

from __future__ import annotations

import pytest

from receipts import rules

BUCKET = 60
NOW = 1_800_000_000.0  # a bucket boundary: 30,000,000 * 60
WEEK = 7 * 86400


def test_piece_length_is_the_torrent_piece_length_except_for_the_last_piece():
    args = {"v1_size": 100_000, "piece_length": 16_384, "piece_count": 7}
    assert rules.expected_piece_length(**args, index=0) == 16_384
    assert rules.expected_piece_length(**args, index=5) == 16_384
    assert rules.expected_piece_length(**args, index=6) == 100_000 - 6 * 16_384


def test_piece_length_of_an_exact_multiple_keeps_a_full_last_piece():
    args = {"v1_size": 4 * 16_384, "piece_length": 16_384, "piece_count": 4}
    assert rules.expected_piece_length(**args, index=3) == 16_384


@pytest.mark.parametrize("index", [-1, 7, 2**32])
def test_piece_index_outside_the_torrent_is_refused(index):
    with pytest.raises(ValueError, match="piece index"):
        rules.expected_piece_length(
            v1_size=100_000, piece_length=16_384, piece_count=7, index=index
        )


def _window(bucket: int, *, future: int = 1) -> str | None:
    return rules.window_refusal(
        bucket=bucket, now=NOW, bucket_seconds=BUCKET, window_seconds=WEEK, future_buckets=future
    )


def test_window_accepts_now_the_allowed_skew_and_the_oldest_bucket_still_open():
    current = int(NOW // BUCKET)
    assert _window(current) is None
    assert _window(current + 1) is None
    # The bucket that ends just after now - window is still inside.
    oldest = int((NOW - WEEK) // BUCKET)
    assert _window(oldest) is None


def test_window_refuses_older_buckets_and_the_future_beyond_the_skew():
    current = int(NOW // BUCKET)
    oldest = int((NOW - WEEK) // BUCKET)
    assert _window(oldest - 1).startswith("time: older")
    assert _window(current + 2).startswith("time: more than 1 time bucket")
    assert _window(current + 60).startswith("time: more than")
    assert _window(current + 2, future=2) is None


def test_seen_around_widens_each_span_by_the_slack():
    bucket = int(NOW // BUCKET)
    span = [(NOW + 1000, NOW + 5000)]
    assert not rules.seen_around(bucket=bucket, bucket_seconds=BUCKET, spans=span, slack=900)
    assert rules.seen_around(bucket=bucket, bucket_seconds=BUCKET, spans=span, slack=1000)
    late = [(NOW - 9000, NOW - 5000)]
    assert not rules.seen_around(bucket=bucket, bucket_seconds=BUCKET, spans=late, slack=4999)
    assert rules.seen_around(bucket=bucket, bucket_seconds=BUCKET, spans=late, slack=5000)
    assert not rules.seen_around(bucket=bucket, bucket_seconds=BUCKET, spans=[], slack=10**9)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not base64!", "receipt: not valid base64"),
        ("QUJD\n", "receipt: not valid base64"),
        ("QUJ", "receipt: not valid base64"),
        ("é", "receipt: not valid base64"),
        ("QUJD", "receipt: must be 4 bytes, got 3"),
    ],
)
def test_base64_is_strict_and_checks_the_length(text, message):
    with pytest.raises(ValueError, match=message):
        rules.decode_b64(text, field="receipt", length=4)


def test_base64_decodes_standard_text():
    assert rules.decode_b64("QUJD", field="x", length=3) == b"ABC"


def test_private_key_fields_are_spotted_whatever_their_spelling():
    body = {"info_hash": "00", "Private-Key": "x", "sk": 1, "secretKey": "y", "pop": "z"}
    assert rules.private_key_fields(body) == ["Private-Key", "secretKey", "sk"]
    assert rules.private_key_fields({"public_key": "x", "pop": "y"}) == []
    assert rules.private_key_fields(["sk"]) == []
    nested = {"receipts": [{"receipt": "x"}, {"receipt": "y", "sk": "z"}]}
    assert rules.private_key_fields(nested) == ["receipts[1].sk"]
