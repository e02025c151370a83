"""``benchmarks/reports.py`` at a small size, so that ``make test`` runs it: the report from the
aggregates is the report recomputed from the cases, and costs a fixed number of queries however
many cases there are. Counts only, never seconds (docs/benchmarks.md has the measured figures)."""

from __future__ import annotations

from benchmarks import reports


def test_the_report_from_aggregates_equals_the_recomputed_one_for_a_fraction_of_the_reads() -> None:
    # 200 cases keep it under half a minute; the ratio of reads grows with the cases (about 12 times
    # fewer at 300, docs/benchmarks.md has 1,000 and more), the 21 queries do not.
    result = reports.run_size(cases=200, dealers=10)
    assert result.cases == 200 and result.reports_identical
    # The month's counts of every scope (the dealers' summaries), the brand's of the 11 months before it
    # (the trend), the opinions of each of the five regions, the risk buckets, the earliest open cases
    # due, the longest overdue accountability measures, the corrections counter: 21 queries.
    assert result.from_aggregates.requests == {"Query": 21}
    assert result.from_aggregates.rru * 6 < result.recomputed.rru
    assert result.dealer_report.rru <= result.from_aggregates.rru
    # Every count item holding every metric, then every risk bucket every scope (the most this tenant's
    # report can read over this year): the same queries, more units.
    assert result.counts_full.requests == result.full.requests == {"Query": 21}
    assert result.from_aggregates.rru <= result.counts_full.rru <= result.full.rru
