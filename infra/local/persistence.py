"""What the local stack keeps between runs, in one folder (``COMPLAINTS_DATA_DIR``).

moto holds everything in memory, and its Step Functions executions are threads that
cannot be saved. So the stores are written out as data and read back through boto3 —
the DynamoDB table as one item a line (DynamoDB JSON), the S3 objects as files — with the
sent mail, the clock and the secrets that sign links and staff sessions. Executions are
not kept: on start every open case gets a new one where it stood (``Lifecycle.restart``).

    table.jsonl        every item of the table
    s3/index.jsonl     bucket, key, ETag, content type and file of every object
    s3/objects/<h>     an object's bytes (h: SHA-256 of bucket and key)
    outbox.jsonl       every mail sent, appended as it goes (``Outbox``)
    clock.json         the clock's mode, time and offset
    secrets.json       the link form-token key and the staff token key (mode 0600)
    stack.pid          the process of the stack using the folder, while it runs
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

from shared.complaints.clock import iso, parse_iso

from .clock import VirtualClock

OWN_ENTRIES = ("table.jsonl", "s3", "outbox.jsonl", "clock.json", "secrets.json", "stack.pid")
BATCH = 25  # BatchWriteItem's limit


def _write_atomically(path: Path, lines: Iterator[str] | list[str]) -> None:
    """A reader (the next start) sees the old file or the new one, never half of one."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for line in lines:
            f.write(line + "\n")
    os.replace(tmp, path)


def _lines(path: Path) -> Iterator[dict[str, Any]]:
    if not path.exists():
        return
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


class DataDir:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.table_file = path / "table.jsonl"
        self.s3_dir = path / "s3"
        self.outbox_file = path / "outbox.jsonl"
        self.clock_file = path / "clock.json"
        self.secrets_file = path / "secrets.json"
        self.pid_file = path / "stack.pid"
        self.restored_cases = 0  # cases read back at start

    def create(self) -> DataDir:
        (self.s3_dir / "objects").mkdir(parents=True, exist_ok=True)
        return self

    # ----- who uses it ---------------------------------------------------------------------
    def running_stack(self) -> int | None:
        """The process id of a live stack on this folder, if any."""
        try:
            pid = int(self.pid_file.read_text().strip())
            os.kill(pid, 0)
        except (OSError, ValueError):
            return None
        return pid if pid != os.getpid() else None

    def claim(self) -> None:
        pid = self.running_stack()
        if pid is not None:
            raise DataDirInUseError(f"{self.path} is in use by the local stack running as process {pid}")
        self.pid_file.write_text(str(os.getpid()))

    def release(self) -> None:
        if self.pid_file.exists() and self.pid_file.read_text().strip() == str(os.getpid()):
            self.pid_file.unlink()

    def reset(self) -> list[Path]:
        """Delete what the stack keeps here (only that: the folder may hold other files).
        Returns what is left that is not ours."""
        import shutil

        pid = self.running_stack()
        if pid is not None:
            raise DataDirInUseError(f"the local stack (process {pid}) uses {self.path}: stop it first")
        for name in OWN_ENTRIES:
            entry = self.path / name
            if entry.is_dir():
                shutil.rmtree(entry)
            elif entry.exists():
                entry.unlink()
        for tmp in self.path.glob("*.tmp"):
            tmp.unlink()
        left = sorted(self.path.iterdir()) if self.path.exists() else []
        if self.path.exists() and not left:
            self.path.rmdir()
        return left

    # ----- secrets -------------------------------------------------------------------------
    def secret(self, name: str) -> str:
        """A key kept across runs, made on first use: pages rendered and sessions signed before
        a restart still verify after it."""
        known: dict[str, str] = json.loads(self.secrets_file.read_text()) if self.secrets_file.exists() else {}
        if name not in known:
            known[name] = secrets.token_hex(32)
            fd = os.open(self.secrets_file.with_suffix(".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump(known, f)
            os.replace(self.secrets_file.with_suffix(".tmp"), self.secrets_file)
        return known[name]

    # ----- the clock -----------------------------------------------------------------------
    def save_clock(self, clock: VirtualClock) -> None:
        _write_atomically(self.clock_file, [json.dumps(
            {"mode": clock.mode, "now": iso(clock.now()), "offset_s": clock.offset.total_seconds()})])

    def load_clock(self, clock: VirtualClock) -> bool:
        if not self.clock_file.exists():
            return False
        saved = json.loads(self.clock_file.read_text())
        clock.continue_from(parse_iso(saved["now"]), timedelta(seconds=float(saved.get("offset_s", 0))))
        return True

    # ----- DynamoDB ------------------------------------------------------------------------
    def save_table(self, dynamodb: Any, table: str) -> int:
        """Every item, as DynamoDB JSON (the table's items are strings and numbers only). A full
        read, as an export is: this is the backup, not an operational path (those never scan)."""
        count = 0

        def items() -> Iterator[str]:
            nonlocal count
            for page in dynamodb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
                for item in page["Items"]:
                    count += 1
                    yield json.dumps(item, ensure_ascii=False, sort_keys=True)
        _write_atomically(self.table_file, items())
        return count

    def load_table(self, dynamodb: Any, table: str) -> list[dict[str, Any]]:
        """Put the saved items back; returns them."""
        items = list(_lines(self.table_file))
        for start in range(0, len(items), BATCH):
            requests: dict[str, Any] = {table: [{"PutRequest": {"Item": i}} for i in items[start:start + BATCH]]}
            while requests:
                requests = dynamodb.batch_write_item(RequestItems=requests).get("UnprocessedItems") or {}
        return items

    # ----- S3 ------------------------------------------------------------------------------
    def save_objects(self, s3: Any) -> int:
        """Objects new or changed since the last save are written; gone ones removed."""
        index_file, objects = self.s3_dir / "index.jsonl", self.s3_dir / "objects"
        saved = {(o["bucket"], o["key"]): o for o in _lines(index_file)}
        index: list[dict[str, Any]] = []
        for bucket in (b["Name"] for b in s3.list_buckets()["Buckets"]):
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
                for obj in page.get("Contents", []):
                    key, etag = obj["Key"], obj["ETag"]
                    known = saved.get((bucket, key))
                    if known is not None and known["etag"] == etag and (objects / known["file"]).exists():
                        index.append(known)
                        continue
                    got = s3.get_object(Bucket=bucket, Key=key)
                    name = hashlib.sha256(f"{bucket}/{key}".encode()).hexdigest()
                    tmp = objects / (name + ".tmp")
                    tmp.write_bytes(got["Body"].read())
                    os.replace(tmp, objects / name)
                    index.append({"bucket": bucket, "key": key, "etag": etag, "file": name,
                                  "content_type": got.get("ContentType") or "binary/octet-stream"})
        _write_atomically(index_file, [json.dumps(o, ensure_ascii=False) for o in index])
        kept = {o["file"] for o in index}
        for stale in objects.iterdir():
            if stale.name not in kept:
                stale.unlink()
        return len(index)

    def load_objects(self, s3: Any, region: str) -> int:
        existing = {b["Name"] for b in s3.list_buckets()["Buckets"]}
        count = 0
        for o in _lines(self.s3_dir / "index.jsonl"):
            if o["bucket"] not in existing:
                s3.create_bucket(Bucket=o["bucket"], CreateBucketConfiguration={"LocationConstraint": region})
                existing.add(o["bucket"])
            body = (self.s3_dir / "objects" / o["file"]).read_bytes()
            s3.put_object(Bucket=o["bucket"], Key=o["key"], Body=body, ContentType=o["content_type"])
            count += 1
        return count


class DataDirInUseError(Exception):
    pass

