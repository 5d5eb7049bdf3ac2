"""Rejection counts in memory: written at most once an interval, one sample per reason and minute."""

from devgem.logs.rejections import RejectionCounts


def test_counts_are_due_once_an_interval_and_sampled_once_a_minute() -> None:
    counts = RejectionCounts(interval=1.0)
    assert counts.due_in(0.0) is None  # nothing to write
    counts.count("bad-json", b"{", "202611261000")
    counts.count("bad-json", b"{{", "202611261000")
    counts.count("too-big", b"x" * 20_000, "202611261000")
    assert counts.due_in(5.0) == 0
    taken = counts.take(5.0, "202611261000")
    assert taken is not None
    written, samples = taken
    assert written == {"bad-json": 2, "too-big": 1}
    assert samples["bad-json"] == "{" and len(samples["too-big"]) == 10_000
    counts.count("bad-json", b"{{{", "202611261000")
    assert counts.take(5.5, "202611261000") is None  # within the interval
    taken = counts.take(6.0, "202611261000")
    assert taken == ({"bad-json": 1}, {})  # already sampled this minute
    counts.count("bad-json", b"[", "202611261001")
    assert counts.take(7.0, "202611261001") == ({"bad-json": 1}, {"bad-json": "["})


def test_counts_that_could_not_be_written_are_put_back() -> None:
    counts = RejectionCounts(interval=1.0)
    counts.count("bad-json", b"{", "202611261000")
    taken = counts.take(5.0, "202611261000")
    assert taken is not None
    counts.put_back(taken[0])
    counts.count("bad-json", b"{", "202611261000")
    assert counts.take(6.0, "202611261000") == ({"bad-json": 2}, {})
