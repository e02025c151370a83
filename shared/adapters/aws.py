"""S3, SES and Step Functions behind the domain's ports. AWS error codes become
domain errors here, so that the state machine's Retry sees ``TransientError``."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from shared.complaints.clock import iso, parse_iso
from shared.complaints.errors import MailDeliveryError, TransientError
from shared.complaints.ports import OutgoingMail

_THROTTLES = {"Throttling", "ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded",
              "ServiceUnavailable", "InternalError", "SlowDown"}
_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3})


def _transient(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") in _THROTTLES


class S3BlobStore:
    def __init__(self, bucket: str, region: str) -> None:
        self._bucket = bucket
        self._s3 = boto3.client("s3", region_name=region, config=_CONFIG)

    def get(self, key: str) -> bytes:
        try:
            body: bytes = self._s3.get_object(Bucket=self._bucket, Key=key)["Body"].read()
            return body
        except ClientError as exc:
            if _transient(exc):
                raise TransientError(f"S3 get {key}") from exc
            raise

    def put(self, key: str, body: bytes, content_type: str = "application/octet-stream") -> None:
        self._s3.put_object(Bucket=self._bucket, Key=key, Body=body, ContentType=content_type)

    # ``StreamingBlobStore``: a large mail is read by ranges and its parts written in parts.
    PART_SIZE = 8 << 20  # S3's multipart minimum is 5 MiB for every part but the last

    def read(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        if end is not None and end <= start:
            return
        byte_range = f"bytes={start}-{'' if end is None else end - 1}"
        try:
            body = self._s3.get_object(Bucket=self._bucket, Key=key, Range=byte_range)["Body"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "InvalidRange":
                return  # start at or past the end: nothing to read
            if _transient(exc):
                raise TransientError(f"S3 get {key}") from exc
            raise
        yield from body.iter_chunks(chunk_size=1 << 20)

    def put_chunks(self, key: str, chunks: Iterable[bytes], content_type: str = "application/octet-stream") -> None:
        buffer, upload_id = bytearray(), None
        parts: list[dict[str, Any]] = []
        try:
            for chunk in chunks:
                buffer += chunk
                if len(buffer) >= self.PART_SIZE:
                    if upload_id is None:
                        upload_id = self._s3.create_multipart_upload(
                            Bucket=self._bucket, Key=key, ContentType=content_type)["UploadId"]
                    parts.append(self._part(key, upload_id, len(parts) + 1, bytes(buffer)))
                    buffer.clear()
            if upload_id is None:  # small: one plain put
                self._s3.put_object(Bucket=self._bucket, Key=key, Body=bytes(buffer), ContentType=content_type)
                return
            if buffer:
                parts.append(self._part(key, upload_id, len(parts) + 1, bytes(buffer)))
            self._s3.complete_multipart_upload(Bucket=self._bucket, Key=key, UploadId=upload_id,
                                               MultipartUpload={"Parts": parts})
        except BaseException:
            if upload_id is not None:  # no orphaned parts (the bucket's lifecycle rule is the backstop)
                self._s3.abort_multipart_upload(Bucket=self._bucket, Key=key, UploadId=upload_id)
            raise

    def _part(self, key: str, upload_id: str, number: int, data: bytes) -> dict[str, Any]:
        etag = self._s3.upload_part(Bucket=self._bucket, Key=key, UploadId=upload_id, PartNumber=number,
                                    Body=data)["ETag"]
        return {"ETag": etag, "PartNumber": number}


def build_mime(mail: OutgoingMail) -> bytes:
    msg = EmailMessage()
    msg["From"] = Address(display_name=mail.sender_name, addr_spec=mail.sender)
    msg["To"] = ", ".join(mail.to)
    msg["Subject"] = mail.subject
    msg["Message-ID"] = mail.message_id
    if mail.sent_at is not None:
        msg["Date"] = format_datetime(mail.sent_at)
    for name, value in mail.headers.items():
        msg[name] = value
    msg.set_content(mail.text)
    msg.add_alternative(mail.html, subtype="html")
    return msg.as_bytes()


class SesMailer:
    """Sends raw MIME so that our Message-ID and headers survive (SES keeps a supplied Message-ID
    only in the raw form)."""

    def __init__(self, region: str, configuration_set: str | None = None) -> None:
        self._ses = boto3.client("ses", region_name=region, config=_CONFIG)
        self._configuration_set = configuration_set

    def send(self, mail: OutgoingMail) -> None:
        kwargs: dict[str, Any] = {"RawMessage": {"Data": build_mime(mail)}, "Source": mail.sender,
                                  "Destinations": mail.to}
        if self._configuration_set:
            kwargs["ConfigurationSetName"] = self._configuration_set
        try:
            self._ses.send_raw_email(**kwargs)
        except ClientError as exc:
            raise MailDeliveryError(exc.response.get("Error", {}).get("Code", "SES error")) from exc
        except BotoCoreError as exc:  # no answer from SES (connection, timeout): the mail may be retried too
            raise MailDeliveryError(type(exc).__name__) from exc


class StepFunctionsWorkflow:
    def __init__(self, state_machine_arn: str, region: str) -> None:
        self._arn = state_machine_arn
        self._sfn = boto3.client("stepfunctions", region_name=region, config=_CONFIG)

    def start(self, name: str, payload: dict[str, Any]) -> None:
        try:
            self._sfn.start_execution(stateMachineArn=self._arn, name=name, input=json.dumps(payload))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ExecutionAlreadyExists":
                return  # started by an earlier attempt: one execution per case
            if _transient(exc):
                raise TransientError("StartExecution throttled") from exc
            raise

    def succeed(self, token: str, output: dict[str, Any]) -> bool:
        try:
            self._sfn.send_task_success(taskToken=token, output=json.dumps(output))
            return True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("TaskTimedOut", "InvalidToken", "TaskDoesNotExist"):
                return False
            if _transient(exc):
                raise TransientError("SendTaskSuccess throttled") from exc
            raise


def outgoing_mail_doc(mail: OutgoingMail) -> dict[str, Any]:
    """An outgoing mail as JSON data (a pending send in DynamoDB; the local outbox's file)."""
    doc = asdict(mail)
    doc["sent_at"] = iso(mail.sent_at) if mail.sent_at else None
    return doc


def outgoing_mail(doc: dict[str, Any]) -> OutgoingMail:
    return OutgoingMail(**{**doc, "sent_at": parse_iso(doc["sent_at"]) if doc.get("sent_at") else None})
