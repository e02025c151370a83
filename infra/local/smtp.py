"""The local SMTP server: accepts mail for the tenant's addresses and hands it to the
intake exactly as SES would (raw to S3, then an SES-shaped event)."""

from __future__ import annotations

import asyncio
import functools
import uuid
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from .runtime import LocalRuntime

MAX_MESSAGE = 40 * 1024 * 1024  # SES's receiving limit
ASYNC_ATTEMPTS = 3  # SES invokes intake asynchronously: Lambda tries a failed event twice more


class IntakeHandler:
    def __init__(self, runtime: LocalRuntime) -> None:
        self.runtime = runtime

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook names
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        from shared.runtime.wiring import services

        if services().store.tenant_for_address(address) is None:
            return "550 5.1.1 No such mailbox here"
        envelope.rcpt_tos.append(address.lower())
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        raw: Any = envelope.original_content or envelope.content
        data = raw if isinstance(raw, bytes) else str(raw).encode("utf-8")
        loop = asyncio.get_running_loop()
        # One SES message id for every attempt, as Lambda retries the same event: a retry
        # resumes the mail instead of receiving it again.
        deliver = functools.partial(self.runtime.deliver, data, list(envelope.rcpt_tos), envelope.mail_from,
                                    ses_message_id=uuid.uuid4().hex)
        for attempt in range(1, ASYNC_ATTEMPTS + 1):
            try:
                result = await loop.run_in_executor(None, deliver)
                break
            except Exception:  # noqa: BLE001 - the sender retries a 451; the reconciler re-drives the stored mail
                if attempt == ASYNC_ATTEMPTS:
                    return "451 4.3.0 Temporary failure, please retry"
        return f"250 OK {result.get('disposition')} {result.get('case_no') or ''}".strip()


class _Controller(Controller):
    """aiosmtpd's controller, able to listen on port 0: the port the system gave is read from the
    bound socket before the controller's first connection to itself (no pick-then-bind race)."""

    def _trigger_server(self) -> None:
        if self.port == 0 and isinstance(self.server, asyncio.Server):
            self.port = int(self.server.sockets[0].getsockname()[1])
        super()._trigger_server()


def start_smtp(runtime: LocalRuntime, host: str, port: int) -> Controller:
    """The SMTP server on ``port`` (0: one the system chooses; ``.port`` tells which)."""
    controller = _Controller(IntakeHandler(runtime), hostname=host, port=port, data_size_limit=MAX_MESSAGE)
    controller.start()
    return controller
