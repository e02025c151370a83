"""Large attachments held out of memory: a dashcam video of 30 MB is 40 MB of base64 on
the wire, near SES's receiving limit.

The raw mail stays where SES put it. Intake reads it in chunks; a run of base64 lines
longer than ``HOLD_OUT_FROM`` in a part that is not text is not copied: the parser sees
one placeholder line instead (the base64 of a marker naming the run), and the
attachment is later decoded from the run's byte range of the raw mail, chunk by chunk,
into its own object. Memory then holds the mail's text, at most ``HOLD_OUT_FROM`` of a
run being examined, and one chunk, whatever the size of the mail.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from .ports import BlobStore, StreamingBlobStore

HOLD_OUT_FROM = 256 * 1024  # bytes of base64: smaller parts are parsed in memory as usual
CHUNK = 1 << 20

_MARKER = re.compile(rb"\x00complaints-held-out:(\d+)\x00")
_BASE64_LINES = re.compile(rb"(?:[A-Za-z0-9+/]{4,}=*\r?\n)+")
_WHITESPACE = b" \t\r\n"

Reader = Callable[[int, int | None], Iterator[bytes]]  # (start, end) -> the raw mail's bytes in chunks


@dataclass(frozen=True)
class Span:
    """A held-out run of base64 lines: its byte range in the raw mail, its decoded size."""

    start: int
    end: int
    size: int


@dataclass(frozen=True)
class SlimMail:
    """The raw mail with each held-out run replaced by a placeholder line, and how to
    read a run's decoded bytes back."""

    raw: bytes
    spans: tuple[Span, ...] = ()
    read: Reader | None = None

    def held_out(self, payload: bytes) -> Span | None:
        """The run a decoded part payload stands for, if it is a placeholder."""
        match = _MARKER.fullmatch(payload) if len(payload) < 64 else None
        index = int(match.group(1)) if match else -1
        return self.spans[index] if 0 <= index < len(self.spans) else None

    def decoded(self, span: Span) -> Iterator[bytes]:
        assert self.read is not None, "a mail with held-out runs knows how to read them"
        return decode_base64(self.read(span.start, span.end))


def read_slim(blobs: BlobStore, key: str, hold_out_from: int = HOLD_OUT_FROM) -> SlimMail:
    """The raw mail at ``key``, large binary parts held out. A blob store that reads ranges
    never holds the mail whole; any other holds it once, and runs are sliced, not copied."""
    if isinstance(blobs, StreamingBlobStore):
        def read(start: int, end: int | None) -> Iterator[bytes]:
            return blobs.read(key, start, end)
    else:
        view = memoryview(blobs.get(key))

        def read(start: int, end: int | None) -> Iterator[bytes]:
            stop = len(view) if end is None else end
            return (bytes(view[at : min(at + CHUNK, stop)]) for at in range(start, stop, CHUNK))
    return slim(read(0, None), hold_out_from, read)


def store_chunks(blobs: BlobStore, key: str, chunks: Iterable[bytes], content_type: str) -> tuple[int, str]:
    """Write an object from chunks; returns its size and SHA-256. Written in parts where the
    store can, else joined once."""
    digest = hashlib.sha256()
    size = 0

    def counted() -> Iterator[bytes]:
        nonlocal size
        for chunk in chunks:
            digest.update(chunk)
            size += len(chunk)
            yield chunk
    if isinstance(blobs, StreamingBlobStore):
        blobs.put_chunks(key, counted(), content_type)
    else:
        blobs.put(key, b"".join(counted()), content_type)
    return size, digest.hexdigest()


def slim(chunks: Iterable[bytes], hold_out_from: int = HOLD_OUT_FROM, read: Reader | None = None) -> SlimMail:
    """Copy a raw mail line by line, holding out long base64 runs of non-text parts."""
    scanner = _Scanner(hold_out_from)
    tail = b""
    for chunk in chunks:
        data = tail + chunk
        cut = data.rfind(b"\n") + 1  # whole lines only: a CRLF is never split
        tail = data[cut:]
        pos = 0
        while pos < cut:
            lines = _BASE64_LINES.match(data, pos, cut) if scanner.in_binary_body else None
            end = lines.end() if lines else data.index(b"\n", pos) + 1  # a block of base64 lines at once
            scanner.lines(data[pos:end], base64_only=lines is not None)
            pos = end
    if tail:
        scanner.lines(tail, base64_only=False)
    return SlimMail(scanner.finish(), tuple(scanner.spans), read)


def decode_base64(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Base64 text in chunks (line breaks anywhere) -> decoded bytes in chunks."""
    rest = b""
    for chunk in chunks:
        data = rest + chunk.translate(None, _WHITESPACE)
        cut = len(data) - len(data) % 4
        rest = data[cut:]
        if cut:
            yield binascii.a2b_base64(data[:cut])
    if rest.rstrip(b"="):
        yield _lenient_tail(rest)


def _lenient_tail(rest: bytes) -> bytes:
    """The last quantum when the sender stripped its padding."""
    try:
        return base64.b64decode(rest.rstrip(b"=") + b"=" * (-len(rest.rstrip(b"=")) % 4))
    except binascii.Error:
        return b""  # a single stray character: nothing to decode


def placeholder(index: int) -> bytes:
    return base64.b64encode(b"\x00complaints-held-out:%d\x00" % index) + b"\r\n"


@dataclass
class _Scanner:
    """Follows part headers (Content-Type) well enough to know whether a body is text."""

    hold_out_from: int
    out: bytearray = field(default_factory=bytearray)
    spans: list[Span] = field(default_factory=list)
    offset: int = 0
    in_headers: bool = True
    content_type: bytes | None = None  # of the part whose headers are being read
    in_content_type: bool = False
    binary_body: bool = False
    run: bytearray = field(default_factory=bytearray)
    run_start: int = 0
    run_chars: int = 0
    run_padding: int = 0
    holding: bool = False

    @property
    def in_binary_body(self) -> bool:
        return self.binary_body and not self.in_headers

    def lines(self, data: bytes, *, base64_only: bool) -> None:
        """Base64 lines of a binary body, or one line of anything else."""
        if base64_only:
            self._extend_run(data)
        else:
            self._end_run()
            self._follow_headers(data)
            self.out += data
        self.offset += len(data)

    def finish(self) -> bytes:
        self._end_run()
        return bytes(self.out)

    def _extend_run(self, lines: bytes) -> None:
        if not self.run and not self.holding:
            self.run_start = self.offset
        self.run_chars += len(lines) - lines.count(b"\n") - lines.count(b"\r")
        last = lines.rstrip(b"\r\n").rpartition(b"\n")[2]
        self.run_padding = len(last) - len(last.rstrip(b"="))
        if self.holding:
            return
        self.run += lines
        if len(self.run) > self.hold_out_from:
            self.holding = True
            self.run = bytearray()

    def _end_run(self) -> None:
        if self.holding:
            size = (self.run_chars - self.run_padding) * 3 // 4
            self.spans.append(Span(self.run_start, self.offset, size))
            self.out += placeholder(len(self.spans) - 1)
        elif self.run:
            self.out += self.run
        self.run, self.run_chars, self.run_padding, self.holding = bytearray(), 0, 0, False

    def _follow_headers(self, line: bytes) -> None:
        if line.startswith(b"--"):  # a boundary: the next part's headers follow
            self.in_headers, self.content_type, self.in_content_type = True, None, False
            self.binary_body = False
        elif self.in_headers:
            if not line.strip():
                self.in_headers = False
                # No Content-Type is text/plain; message/* and multipart/* hold parts that are followed in turn.
                ctype = (self.content_type or b"text/plain").strip().lower()
                self.binary_body = not ctype.startswith((b"text/", b"message/", b"multipart/"))
            elif line[:1] in (b" ", b"\t"):
                if self.in_content_type:
                    self.content_type = (self.content_type or b"") + line.strip()
            else:
                self.in_content_type = line[:13].lower() == b"content-type:"
                if self.in_content_type:
                    self.content_type = line[13:].strip()
