"""Whether a received mail verifiably comes from the domain in its From address.

SPF alone says nothing about From: it checks the envelope sender, whose domain anyone with
a mail domain of their own chooses. A sender is verified for its From domain only when
DMARC passed, or when DKIM passed for a signing domain (``d=``) aligned with the From domain.

The signing domain is not in SES's receipt event (it carries the DKIM verdict only); SES
writes it into the ``Authentication-Results: amazonses.com; ... dkim=pass header.i=@<d>``
header it puts on top of the stored mail. Only that topmost header is read, and only when
its authserv-id is SES's: a sender can write an Authentication-Results header of its own,
but it always sits below the one SES adds.

Alignment is relaxed (RFC 7489 §3.1.1): the organisational domains match. The organisational
domain here is the last two labels, or three when the last two are a known second-level
public suffix (``com.cn``, ``co.uk``, ...): a short list, not the Public Suffix List.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

TRUSTED_AUTHSERV_ID = "amazonses.com"

# Second-level public suffixes our customers' and staff's mail domains use; a registrable
# domain under one of them has three labels.
_SECOND_LEVEL_SUFFIXES = frozenset({
    "com.cn", "net.cn", "org.cn", "gov.cn", "edu.cn", "ac.cn",
    "com.hk", "org.hk", "net.hk", "edu.hk", "gov.hk", "com.tw", "org.tw", "net.tw", "edu.tw", "com.mo",
    "com.sg", "com.my", "co.jp", "ne.jp", "or.jp", "co.kr", "or.kr",
    "co.uk", "org.uk", "ac.uk", "gov.uk", "com.au", "net.au", "org.au", "co.nz", "com.br", "co.in",
})
_COMMENT = re.compile(r"\([^()]*\)")
_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')


@dataclass(frozen=True)
class AuthResults:
    """What SES's Authentication-Results header says: the domains whose DKIM signature
    passed, and the From domain DMARC was evaluated for."""

    dkim_pass_domains: frozenset[str] = frozenset()
    dmarc_from: str | None = None


def counter_key(kind: str, brand: str, address: str) -> str:
    """The key of a per-sender counter (``CaseStore.count_hit``): the address only as a hash."""
    return f"{kind}#{brand}#{hashlib.sha256(address.strip().lower().encode()).hexdigest()[:32]}"


def organisational_domain(domain: str) -> str:
    labels = [label for label in domain.strip().strip(".").lower().split(".") if label]
    keep = 3 if ".".join(labels[-2:]) in _SECOND_LEVEL_SUFFIXES else 2
    return ".".join(labels[-keep:])


def aligned(one: str, other: str) -> bool:
    """Relaxed alignment: the same organisational domain."""
    return bool(one and other) and organisational_domain(one) == organisational_domain(other)


def ses_results(header: str | None) -> AuthResults:
    """The SES header's DKIM and DMARC clauses; nothing when the header is not SES's."""
    if not header:
        return AuthResults()
    # Comments and quoted strings (an envelope sender's local part can hold ";dkim=pass ...")
    # are removed before the clauses are split.
    value = _QUOTED.sub('""', header)
    while _COMMENT.search(value):
        value = _COMMENT.sub(" ", value)
    clauses = [c.strip() for c in value.split(";")]
    authserv = clauses[0].split()[0].lower() if clauses and clauses[0].split() else ""
    if authserv != TRUSTED_AUTHSERV_ID:
        return AuthResults()
    passed: set[str] = set()
    dmarc_from = None
    for clause in clauses[1:]:
        words = clause.split()
        if not words:
            continue
        method, _, result = words[0].partition("=")
        props = dict(w.partition("=")[::2] for w in words[1:] if "=" in w)
        if method.lower() == "dkim" and result.lower() == "pass":
            signer = props.get("header.d") or props.get("header.i", "").rpartition("@")[2]
            if signer:
                passed.add(signer.lower())
        elif method.lower() == "dmarc":
            dmarc_from = (props.get("header.from") or "").lower() or None
    return AuthResults(frozenset(passed), dmarc_from)


def verified_sender(from_address: str | None, *, dmarc: str, dkim: str, auth_results: str | None) -> bool:
    """DMARC passed for the From domain, or DKIM passed with a signing domain aligned with it."""
    domain = (from_address or "").rpartition("@")[2].lower()
    if not domain:
        return False
    found = ses_results(auth_results)
    if dmarc.upper() == "PASS" and (found.dmarc_from is None or found.dmarc_from == domain):
        return True
    return dkim.upper() == "PASS" and any(aligned(signer, domain) for signer in found.dkim_pass_domains)
