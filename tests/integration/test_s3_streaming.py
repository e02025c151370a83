"""The raw-mail bucket read by ranges and written in parts (S3 on moto): a large mail is
never whole in memory, and what comes back is byte for byte what went in."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from shared.adapters.aws import S3BlobStore
from shared.complaints.ports import StreamingBlobStore


@pytest.fixture
def blobs() -> Iterator[S3BlobStore]:
    with mock_aws():
        boto3.client("s3", region_name="ap-northeast-1").create_bucket(
            Bucket="raw", CreateBucketConfiguration={"LocationConstraint": "ap-northeast-1"})
        yield S3BlobStore("raw", "ap-northeast-1")


def test_it_is_a_streaming_store(blobs: S3BlobStore) -> None:
    assert isinstance(blobs, StreamingBlobStore)


def test_parts_and_ranges_round_trip_a_large_object(blobs: S3BlobStore) -> None:
    data = os.urandom(S3BlobStore.PART_SIZE * 2 + 12345)  # two full parts and a short last one
    chunks = (data[i:i + 1_000_003] for i in range(0, len(data), 1_000_003))  # sizes unlike the parts'
    blobs.put_chunks("att/big.mp4", chunks, "video/mp4")
    assert hashlib.sha256(blobs.get("att/big.mp4")).digest() == hashlib.sha256(data).digest()
    assert b"".join(blobs.read("att/big.mp4", 5, 70_000)) == data[5:70_000]
    assert b"".join(blobs.read("att/big.mp4", len(data) - 10)) == data[-10:]
    assert b"".join(blobs.read("att/big.mp4", len(data))) == b""  # past the end: nothing, no error
    assert b"".join(blobs.read("att/big.mp4", 100, 100)) == b""
    uploads = boto3.client("s3", region_name="ap-northeast-1").list_multipart_uploads(Bucket="raw")
    assert not uploads.get("Uploads")


def test_a_small_object_is_one_plain_put(blobs: S3BlobStore) -> None:
    blobs.put_chunks("att/small.txt", iter([b"hello ", b"world"]), "text/plain")
    assert blobs.get("att/small.txt") == b"hello world"


def test_a_failed_upload_leaves_no_parts_behind(blobs: S3BlobStore) -> None:
    def chunks() -> Iterator[bytes]:
        yield os.urandom(S3BlobStore.PART_SIZE)
        raise OSError("the source broke off")

    with pytest.raises(OSError):
        blobs.put_chunks("att/broken.bin", chunks())
    s3 = boto3.client("s3", region_name="ap-northeast-1")
    assert not s3.list_multipart_uploads(Bucket="raw").get("Uploads")
    assert "Contents" not in s3.list_objects_v2(Bucket="raw", Prefix="att/broken")
