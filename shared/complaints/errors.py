"""Domain errors. Their class names are the error vocabulary of the ASL files.

A Lambda's exception class name becomes the ``Error`` that Step Functions' Retry
and Catch match on; ``tests/unit/test_asl_lint.py`` checks that every name used in
``ErrorEquals`` exists here (or is a ``States.*``/``Lambda.*`` name).
"""

from __future__ import annotations


class ComplaintsError(Exception):
    """Base of every domain error."""


class TransientError(ComplaintsError):
    """Worth retrying: throttling, a lost race, a dependency briefly unavailable."""


class ConflictError(TransientError):
    """A conditional write lost against a concurrent writer; re-read and retry."""


class MailDeliveryError(TransientError):
    """The mail service refused or failed to accept a message."""


class CaseNotFoundError(ComplaintsError):
    """No case with that number (in that tenant)."""


class InvalidTransitionError(ComplaintsError):
    """The case is not in a phase where this step can happen."""


class SupersededError(ComplaintsError):
    """The case was re-opened or resumed by a newer execution: this one ends quietly."""


class ConfigurationError(ComplaintsError):
    """Tenant or policy configuration is missing or inconsistent."""


class InvalidInputError(ComplaintsError):
    """A form, an API body or a mail did not carry what the step needs."""

    def __init__(self, message: str, fields: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.fields = fields or {}


class LinkNotFoundError(ComplaintsError):
    """Unknown or forged link id."""


class LinkForbiddenError(ComplaintsError):
    """The link exists but the request may not act on it (bad form token, wrong recipient)."""


class LinkGoneError(ComplaintsError):
    """The link was used or has expired; ``detail`` says by whom and when."""

    def __init__(self, message: str, *, reason: str, decided_by: str | None = None,
                 decided_at: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.decided_by = decided_by
        self.decided_at = decided_at


class RateLimitedError(ComplaintsError):
    """Too many requests for one link in a minute."""


class TaskNotOpenError(ComplaintsError):
    """The human step this token or link belongs to is no longer waiting."""


# What staff read when a case is parked (policy.md §5: a plain reason, not an error name);
# the raw error stays in the timeline's details for operators. Keys are error names as the
# state machine reports them; a prefix ending in "." covers a family (Lambda.*).
_PLAIN_REASONS: dict[str, tuple[str, str]] = {
    "States.Timeout": ("系统处理这一步用时过长，已被中止。", "The system took too long on this step and stopped it."),
    "Sandbox.Timedout": ("系统处理这一步用时过长，已被中止。", "The system took too long on this step and stopped it."),
    "States.": ("流程引擎无法继续这一步。", "The workflow engine could not go on with this step."),
    "Lambda.": ("处理这一步的系统服务暂时不可用，重试后仍未成功。",
                "The service that runs this step was unavailable, also after retries."),
    "TransientError": ("系统依赖的服务（数据库或邮件）多次重试后仍未响应。",
                       "A service the system relies on (the database or mail) did not answer, also after retries."),
    "ConflictError": ("多处同时修改了此案件，系统无法自动合并。",
                      "Several changes to this case collided and could not be merged automatically."),
    "MailDeliveryError": ("邮件多次发送失败。", "A mail could not be sent, also after retries."),
    "ConfigurationError": ("品牌或经销商的配置缺少此案件需要的内容（例如某个岗位没有人员）。",
                           "The brand's or dealer's configuration lacks something this case needs "
                           "(for example nobody holds a role)."),
    "InvalidTransitionError": ("案件当前状态与这一步不符（可能已被他人修改）。",
                               "The case was not in the state this step expects (someone may have changed it)."),
}
_UNKNOWN_REASON = ("系统遇到无法自动处理的错误。", "The system hit an error it cannot handle by itself.")


def plain_reason(error: str, zh: bool) -> str:
    """A sentence for staff instead of an error name (``States.Timeout``, ``Lambda.Unknown``…)."""
    found = _PLAIN_REASONS.get(error) or next(
        (text for key, text in _PLAIN_REASONS.items() if key.endswith(".") and error.startswith(key)), _UNKNOWN_REASON)
    return found[0] if zh else found[1]
