"""Values as the reports and the console's export write them: every CSV cell safe to open in a
spreadsheet, every amount of money printable whatever its size.

A cell a customer or staff member wrote (a survey comment, a subject) may begin with ``=``:
a spreadsheet would run it as a formula (``=HYPERLINK(...)`` sends the sheet's data away), so
such a cell starts with ``'``, which spreadsheets read as "text". An amount comes from stored
``Decimal``s: a sum of ``1E+30`` has more digits than the default context's 28 (``quantize``
raises), ``1E+999999`` would print a million of them; beyond ``EXACT_DIGITS`` digits an amount
is written in scientific notation."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable
from decimal import Context, Decimal

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
EXACT_DIGITS = 18  # ¥ up to a quintillion, to the fen: far beyond any real total


def decimal_text(value: Decimal, places: int = 2) -> str:
    """``value`` to ``places`` decimals, or as ``1.00E+30`` when it is too large to write out."""
    if not value.is_finite():
        return str(value)
    if value.adjusted() >= EXACT_DIGITS:
        return f"{value:.{places}E}"
    return str(value.quantize(Decimal(1).scaleb(-places), context=Context(prec=EXACT_DIGITS + places + 1)))


def money(value: Decimal | float | int) -> str:
    """Whole yuan with thousands separators: ``¥12,500``."""
    amount = Decimal(value) if not isinstance(value, Decimal) else value
    if not amount.is_finite() or amount.adjusted() >= EXACT_DIGITS:
        return "¥" + decimal_text(amount, 0)
    return f"¥{amount:,.0f}"


def csv_cell(value: object) -> str:
    """One cell: booleans as ``true``/``false``, ``None`` empty, amounts as ``decimal_text``,
    floats to 4 decimals at most; text that a spreadsheet would run as a formula, quoted
    (numbers are not text: ``-3`` stays a number)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        return decimal_text(value)
    if isinstance(value, float):
        if not math.isfinite(value) or abs(value) >= 1e18:
            return f"{value:.6E}"
        return str(int(value)) if value.is_integer() else f"{value:.4f}".rstrip("0").rstrip(".")
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def write_csv(header: Iterable[str], rows: Iterable[Iterable[object]], *, bom: bool = False) -> str:
    """The one CSV writer of the product: every cell through ``csv_cell``."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(list(header))
    writer.writerows([csv_cell(v) for v in row] for row in rows)
    return ("\ufeff" if bom else "") + out.getvalue()
