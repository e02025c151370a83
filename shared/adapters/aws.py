"""S3, SES and Step Functions behind the domain's ports. AWS error codes become
domain errors here, so that the state machine's Retry sees ``TransientError``."""

from __future__ import annotations

import json
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

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
