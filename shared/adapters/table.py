"""The one DynamoDB table, through pynamodb: its model, its indexes and the keys that both the case
store (``dynamodb.py``) and the KPI tables (``kpi_dynamodb.py``) write.

This module is the schema's single source of truth: moto's table (local runtime and
tests) and the CDK table are both built from ``Item`` and its indexes, and
``tests/infra`` checks that they agree. Which table, in which region, is not known here:
``shared/runtime/wiring.py`` binds it from the settings (``bind``) before any store is used.

Key layout (pk / sk):
    CASE#<no>            #CASE                     the case (phase, version, JSON document)
    CASE#<no>            EVT#<at>#<id>             a timeline event
    CASE#<no>            MSG#<at>#<id>             a mail in or out
    CASE#<no>            TASK#<key>                a pending human task (the task token)
    LINK#<hash>          #LINK                     a link (stored under a hash of its id)
    MSGID#<message-id>   #MSGID                    a Message-ID we sent -> its case (threading)
    RFCMSG#<brand>#<h>   #RFCMSG                   a Message-ID received (duplicate detection)
    INBOUND#<ses-id>     #INBOUND                  what became of one received mail
    COUNTER#<b>#<d>#<m>  #COUNTER                  case-number sequence per dealer and month
    TENANT#<brand>       #CONFIG                   the tenant's configuration and policy
    ADDRESS#<address>    #ADDRESS                  which brand a recipient address belongs to
    DOMAIN#<domain>      #DOMAIN                   which brand receives mail at a domain (an unknown local part)
    VIN#<brand>#<vin>    #VEHICLE                  a known vehicle; PLATE#<brand>#<plate> -> its VIN
    CUSTOMER#<b>#<h>     CASE#<at>#<no>            cases of one customer / vehicle (repeat detection);
                                                   PHONE#<b>#<h> the same by phone number
    RATE#<key>           #<minute>                 requests in one minute (link pages); expires by TTL
    HELD#<brand>         <held-id>                 a mail intake ignored or quarantined (held | released)
    CASE#<no>            ATT#<object key>          an attachment of a mail on the case, stored in S3
    CORRECTIONS#<b>#<m>  <field>                   classification corrections by staff in a month (and reviews)
    CORRECTED#<b>        <yyyymm>#<no>             a case whose classification staff corrected or confirmed (the export)
    CASE#<no>            #REVIEW                   the case's entry in the review queue (review.py), with the case
                                                   version that wrote it; listed in index by_brand under
                                                   REVIEW#<b> while the case waits (sparse: keys removed after)
    ACCOUNTABILITY#<b>   open#<due>#<no>           an open accountability task after closure; done#<due>#<no> once
                                                   done (the overdue list reads open ones only); listed per
                                                   dealer and region in the indexes (ACCT#<b>#D#<d>, ACCT#<b>#R#<r>)
    CASE#<no>            #ACCOUNTABILITY           -> the sort key of the case's accountability entry
    LIBRARY#<brand>      <cat>#<root>#<closed>#<no>  a closed case, anonymised, in the case library
    CASE#<no>            #LIBRARY                  -> the sort key of the case's library entry
    INBOX#<yyyy-mm-dd>   <ses-id>                  a received mail listed under its day (the reconciler's list)
    OUTBOX#pending       <at>#<hash>               an outgoing mail the mail service refused: re-sent by the reconciler
    AGG#<b>#<yyyy-mm>    S#<scope>                 KPI counts of a month for the brand, a region or a dealer
                                                   (a dealer's summary; D#<scope> its detail); O#<r>#<d>#<no>
                                                   its opinions, M#<scope> its mailed reports
    MEMBERS#<b>#<yyyy-mm> <no>                     the cases that contribute to a month's KPIs (its rebuild)
    OPEN#<brand>         <next due>#<no>           an open case's next deadline (reports: at risk of breach)
                                                   (kpi_dynamodb.py has the details)
Index ``by_dealer``: (BRAND#<b>#DEALER#<d>, <phase>#<received>#<no>) lists cases by dealer and phase;
    (OPEN#<b>#D#<d>, <due>#<no>) a dealer's open cases, (ACCT#<b>#D#<d>, <state>#<due>#<no>) its
    accountability measures.
Index ``by_brand``: (BRAND#<b>, <received>#<no>) lists a brand's cases newest first; (OPEN#<b>#R#<r>, …)
    and (ACCT#<b>#R#<r>, …) the same per region; (REVIEW#<b>, <received>#<no>) the review queue, oldest first.
"""

from __future__ import annotations

import hashlib

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from shared.complaints import kpis
from shared.complaints.models import Case


class ByDealerIndex(GlobalSecondaryIndex["Item"]):
    class Meta:
        index_name = "by_dealer"
        projection = AllProjection()

    gsi1pk = UnicodeAttribute(hash_key=True)
    gsi1sk = UnicodeAttribute(range_key=True)


class ByBrandIndex(GlobalSecondaryIndex["Item"]):
    class Meta:
        index_name = "by_brand"
        projection = AllProjection()

    gsi2pk = UnicodeAttribute(hash_key=True)
    gsi2sk = UnicodeAttribute(range_key=True)


class Item(Model):
    class Meta:
        # Set by ``bind``: a store made before the wiring bound the table fails, it does not guess one.
        table_name = ""
        region: str | None = None
        host: str | None = None
        billing_mode = "PAY_PER_REQUEST"
        # Throttles and 5xx are retried by botocore (standard mode: exponential backoff with
        # full jitter) this many times before they surface as ``TransientError``.
        max_retry_attempts = 3

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    doc = UnicodeAttribute(null=True)  # the entity as JSON (the domain model's own dump)
    version = NumberAttribute(null=True)
    status = UnicodeAttribute(null=True)
    token = UnicodeAttribute(null=True)
    ref = UnicodeAttribute(null=True)  # a case number or other pointer
    counter = NumberAttribute(null=True)
    used_at = UnicodeAttribute(null=True)
    expires_at = NumberAttribute(null=True)  # epoch seconds; the table's TTL attribute
    kpi_version = NumberAttribute(null=True)  # a case item: its KPI facts are in the aggregates (kpi_dynamodb.py)
    gsi1pk = UnicodeAttribute(null=True)
    gsi1sk = UnicodeAttribute(null=True)
    gsi2pk = UnicodeAttribute(null=True)
    gsi2sk = UnicodeAttribute(null=True)

    by_dealer = ByDealerIndex()
    by_brand = ByBrandIndex()


def bind(table_name: str, region: str, host: str | None = None) -> None:
    """Point the model at a deployment's table (``host``: an endpoint other than AWS's). pynamodb keeps
    one connection per model class: it is dropped so that the next call opens one to this table."""
    if (Item.Meta.table_name, Item.Meta.region, Item.Meta.host) == (table_name, region, host):
        return  # bound already (every store the wiring makes binds): the connection stays
    Item.Meta.table_name = table_name
    Item.Meta.region = region
    Item.Meta.host = host
    Item._connection = None


def bound() -> bool:
    return bool(Item.Meta.table_name)


def digest(text: str) -> str:
    """A key part for an identifier that must not be stored in clear (an address, a phone, a Message-ID)."""
    return hashlib.sha256(text.strip().lower().encode("utf-8")).hexdigest()[:32]


def place_keys(kind: str, brand: str, region: str | None, dealer: str | None, sk: str) -> dict[str, str]:
    """The index keys that list a brand-wide entry (open case, accountability task) per dealer (index
    ``by_dealer``) and per region (``by_brand``), sorted as in the brand's partition: a dealer's or a
    region's report reads its own entries, not the brand's."""
    keys: dict[str, str] = {}
    if dealer:
        keys |= {"gsi1pk": f"{kind}#{brand}#D#{dealer}", "gsi1sk": sk}
    if region:
        keys |= {"gsi2pk": f"{kind}#{brand}#R#{region}", "gsi2sk": sk}
    return keys


def place_query(kind: str, brand: str, scope: str) -> tuple[str | None, str, str]:
    """(index, partition key, sort key attribute) that list the entries of ``kind`` of a scope."""
    region, dealer = kpis.scope_place(scope)
    if dealer:
        return "by_dealer", f"{kind}#{brand}#D#{dealer}", "gsi1sk"
    if region:
        return "by_brand", f"{kind}#{brand}#R#{region}", "gsi2sk"
    return None, "", "sk"


def placed(item: Item, kind: str, brand: str, region: str | None, dealer: str | None) -> Item:
    """``item`` with the index keys of ``place_keys`` (sorted by its own sort key)."""
    for name, value in place_keys(kind, brand, region, dealer, item.sk).items():
        setattr(item, name, value)
    return item


def repeat_lookup_keys_for(brand_id: str, customer_email: str | None, vin: str | None,
                           phone: str | None = None) -> list[str]:
    """The partitions that list a customer's (by address, by phone) and a vehicle's cases: repeat detection."""
    keys = []
    if customer_email:
        keys.append(f"CUSTOMER#{brand_id}#{digest(customer_email)}")
    if vin:
        keys.append(f"VEHICLECASES#{brand_id}#{vin.upper()}")
    if phone:
        keys.append(f"PHONE#{brand_id}#{digest(phone)}")
    return keys


def repeat_lookup_keys(case: Case) -> list[str]:
    return repeat_lookup_keys_for(case.brand, case.customer.email, case.vehicle.vin if case.vehicle else None,
                                  case.customer.phone)
