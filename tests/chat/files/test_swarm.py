"""The swarm: who is asked for which chunk, and what happens when answers are late or bad."""

from __future__ import annotations

from chat.files.swarm import Swarm

A, B, C = b"a" * 32, b"b" * 32, b"c" * 32


def test_three_holders_share_the_lowest_chunks_one_each_per_round() -> None:
    swarm = Swarm(10, set(), window=2, timeout=5.0)
    for peer in (A, B, C):
        swarm.add_holder(peer, None)
    asks = dict(swarm.requests(now=0.0))
    assert asks == {A: [0, 3], B: [1, 4], C: [2, 5]}
    assert swarm.requests(now=1.0) == []  # windows full
    assert swarm.received(B, 1, 1.0)
    assert swarm.requests(now=1.0) == [(B, [6])]


def test_chunks_already_kept_are_not_asked_for() -> None:
    swarm = Swarm(4, {0, 2}, window=8)
    swarm.add_holder(A, None)
    assert swarm.requests(0.0) == [(A, [1, 3])]


def test_a_late_chunk_is_asked_of_anyone_again_and_its_late_copy_counts_as_duplicate() -> None:
    swarm = Swarm(2, set(), window=1, timeout=5.0)
    swarm.add_holder(A, None)
    assert swarm.requests(0.0) == [(A, [0])]
    assert swarm.next_deadline() == 5.0
    swarm.add_holder(B, None)
    assert swarm.requests(1.0) == [(B, [1])]
    assert swarm.requests(5.0) == [(A, [0])]  # A's request ran late: asked again
    assert swarm.timeouts == 1
    assert swarm.received(A, 0, 5.5) and not swarm.received(A, 0, 5.6)
    assert swarm.duplicates == 1


def test_a_bad_chunk_drops_its_holder_and_goes_to_another() -> None:
    swarm = Swarm(3, set(), window=3)
    swarm.add_holder(A, None)
    swarm.add_holder(B, None)
    assert dict(swarm.requests(0.0)) == {A: [0, 2], B: [1]}
    swarm.rejected(A, 0)
    assert A not in swarm.holders
    assert swarm.requests(0.0) == [(B, [0, 2])]


def test_a_busy_holder_rests_and_a_partial_holder_is_asked_only_what_it_has() -> None:
    swarm = Swarm(4, set(), window=4)
    swarm.add_holder(A, {3})
    swarm.add_holder(B, None)
    asks = dict(swarm.requests(0.0))
    assert asks[A] == [3] and asks[B] == [0, 1, 2]
    swarm.rest(B, now=0.0, seconds=1.0)
    assert swarm.requests(0.5) == []
    assert swarm.requests(1.0) == [(B, [0, 1, 2])]


def test_the_fetch_is_done_when_every_chunk_came_and_a_lost_one_reopens_it() -> None:
    swarm = Swarm(2, set(), window=2)
    swarm.add_holder(A, None)
    swarm.requests(0.0)
    swarm.received(A, 0, 0.1)
    swarm.received(A, 1, 0.1)
    assert swarm.done and swarm.next_deadline() is None
    swarm.lost(1)
    assert not swarm.done and swarm.requests(0.0) == [(A, [1])]


def test_the_wait_for_a_chunk_follows_how_fast_its_holder_answers() -> None:
    swarm = Swarm(100, set(), window=1, timeout=15.0)
    swarm.add_holder(A, None)
    assert swarm.requests(0.0) == [(A, [0])]
    assert swarm.next_deadline() == 15.0  # no answer yet: the whole timeout
    now = 0.0
    for index in range(20):  # answers within 0.2 s
        now += 0.2
        swarm.received(A, index, now)
        swarm.requests(now)
    assert swarm.next_deadline() == now + 1.0  # three times 0.2 s, but MIN_WAIT at least
    for index in range(20, 60):  # a slower holder: 2 s each
        now += 2.0
        swarm.received(A, index, now)
        swarm.requests(now)
    assert 5.0 < swarm.next_deadline() - now <= 6.0  # towards three times 2 s


def test_a_holder_without_a_path_is_asked_nothing_until_it_has_one() -> None:
    swarm = Swarm(4, set(), window=4)
    swarm.add_holder(A, None)
    assert swarm.requests(0.0, unreachable=frozenset({A})) == []
    assert swarm.requests(0.0) == [(A, [0, 1, 2, 3])]


def test_a_partial_holder_is_asked_only_for_what_it_holds_and_told_again_when_it_has_more() -> None:
    swarm = Swarm(200, set(), window=4, timeout=5.0)
    swarm.add_holder(A, None)
    swarm.add_holder(B, {150, 151, 199})  # far past the front of the queue
    asks = dict(swarm.requests(0.0))
    assert asks == {A: [0, 1, 2, 3], B: [150, 151, 199]}
    # B's next HAVE: it holds more, and no longer says it holds 199 (a stale bitfield)
    swarm.add_holder(B, {150, 151, 160, 161})
    assert swarm.received(B, 150, 0.5) and swarm.received(B, 151, 0.5)
    assert dict(swarm.requests(0.5)) == {B: [160, 161]}
    # 199, asked of B before, went back to the queue for a holder that has it
    assert swarm.received(A, 0, 0.6)
    assert 199 in swarm.queue and 199 not in swarm.holders[B].inflight


def test_a_holder_with_nothing_yet_is_asked_nothing() -> None:
    swarm = Swarm(4, set(), window=4)
    swarm.add_holder(A, set())
    assert swarm.requests(0.0) == []
    swarm.add_holder(A, {2})
    assert swarm.requests(0.0) == [(A, [2])]


def test_the_rarest_chunks_are_asked_first_and_the_lowest_while_every_holder_is_whole() -> None:
    swarm = Swarm(8, set(), window=2, timeout=5.0)
    swarm.add_holder(A, None)  # whole: holds all 8
    swarm.add_holder(B, {0, 1, 2, 3, 6})  # two fetchers halfway, with much the same chunks
    swarm.add_holder(C, {0, 1, 2, 3, 7})
    asks = dict(swarm.requests(0.0))
    # A, who alone holds 4 and 5, is asked those; each partial holder its one rare chunk first
    assert asks == {A: [4, 5], B: [6, 0], C: [7, 1]}
    assert swarm.copies == {0: 2, 1: 2, 2: 2, 3: 2, 6: 1, 7: 1}
    # C goes away: its chunks no longer count as copies
    swarm.remove_holder(C)
    assert swarm.copies == {0: 1, 1: 1, 2: 1, 3: 1, 6: 1}
    # B's copy turns whole: every holder is whole again, and the queue is taken in order
    swarm.add_holder(B, None)
    assert swarm.copies == {}
    for index in (4, 5):
        assert swarm.received(A, index, 0.5)
    # C's unanswered 7 and 1 went back to the front; 0 and 6 are still asked of B
    assert dict(swarm.requests(0.5)) == {A: [1, 7]}
