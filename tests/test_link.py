"""The fluid fair-share link against closed forms."""

from __future__ import annotations

import math
from datetime import datetime

import pytest
import simpy
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from drsim.model.environment import FluidEnvironment
from drsim.model.link import FluidLink
from drsim.model.recorder import CODE, FLOAT, INT, Recorder
from drsim.model.schedule import CapacitySchedule
from drsim.scenario.units import DAY, HOUR

REL = 1e-9  # round-off only


# Every closed form must hold both ways the link can complete a transfer: with a timer at each finish
# (a plain SimPy environment) and, for passive transfers, inside FluidLink.settle (FluidEnvironment).
MODES = pytest.mark.parametrize("passive", [False, True], ids=["timers", "passive"])


def _link(capacity: float = 1000.0, schedule: CapacitySchedule | None = None, passive: bool = False):
    env = FluidEnvironment() if passive else simpy.Environment()
    rec = Recorder()
    table = rec.table("link", {"time": FLOAT, "direction": CODE, "capacity": FLOAT, "active": INT, "backlog": FLOAT})
    link = FluidLink(env, schedule or CapacitySchedule.constant(capacity), table=table, defer=passive)
    link.passive = passive  # what _start asks for (test helper attribute)
    return env, link, table


def _start(link, i, size, weight=1.0, on_done=None):
    """Start a transfer; ``on_done(tr)`` gets the transfer. With timers it runs at the finish instant."""
    def done(tr):
        if not tr.passive:
            assert link.env.now == tr.finished_at
        if on_done is not None:
            on_done(tr)

    return link.start(i, 0, size, weight, on_done=done, passive=link.passive)


def _finishes(env, link, sizes, weights=None, starts=None, until=None):
    done = {}
    weights = weights or [1.0] * len(sizes)
    starts = starts or [0.0] * len(sizes)

    def starter(i):
        yield env.timeout(starts[i])
        _start(link, i, sizes[i], weights[i], on_done=lambda tr: done.setdefault(tr.vm, tr.finished_at))

    for i in range(len(sizes)):
        env.process(starter(i))
    env.run(until=until)  # a throttled link wakes at every schedule boundary: give it an end
    return done


@MODES
def test_lone_transfer_takes_size_over_bandwidth(passive):
    env, link, _ = _link(1000.0, passive=passive)
    done = _finishes(env, link, [12345.0])
    assert done[0] == pytest.approx(12.345, rel=REL)


@MODES
def test_n_equal_transfers_started_together_all_finish_at_n_d_over_b(passive):
    n, d, b = 7, 5000.0, 250.0
    env, link, _ = _link(b, passive=passive)
    done = _finishes(env, link, [d] * n)
    assert len(done) == n
    for t in done.values():
        assert t == pytest.approx(n * d / b, rel=REL)


@MODES
def test_unequal_transfers_finish_at_processor_sharing_times(passive):
    # sizes 1, 2, 3 (x1000) at C = 1000: finishes at 3, 5, 6 s
    env, link, _ = _link(1000.0, passive=passive)
    done = _finishes(env, link, [1000.0, 2000.0, 3000.0])
    assert [done[i] for i in range(3)] == pytest.approx([3.0, 5.0, 6.0], rel=REL)


@MODES
def test_weights_share_in_proportion(passive):
    # weights 1 and 3, both D: the heavy one gets 3/4 C until it ends at 4D/3C; the other ends at 2D/C
    env, link, _ = _link(100.0, passive=passive)
    done = _finishes(env, link, [300.0, 300.0], weights=[1.0, 3.0])
    assert done[1] == pytest.approx(4.0, rel=REL)
    assert done[0] == pytest.approx(6.0, rel=REL)


@MODES
def test_late_arrival_slows_the_first(passive):
    # A (1000 B) alone from 0 at 100 B/s; B (200 B) arrives at 5 s: both at 50 B/s; B ends at 9 s, A at 12 s
    env, link, _ = _link(100.0, passive=passive)
    done = _finishes(env, link, [1000.0, 200.0], starts=[0.0, 5.0])
    assert done[1] == pytest.approx(9.0, rel=REL)
    assert done[0] == pytest.approx(12.0, rel=REL)


@MODES
def test_zero_byte_transfer_finishes_at_once(passive):
    env, link, _ = _link(100.0, passive=passive)
    done = _finishes(env, link, [0.0, 100.0])
    assert done[0] == 0.0
    assert done[1] == pytest.approx(1.0, rel=REL)


@MODES
def test_throttle_boundary_changes_finish_time_exactly(passive):
    # Monday 17:00 start, work hours to 18:00 at 1 MB/s, then 4 MB/s: 10 GB finish = 18:00 + (10e9 - 3.6e9)/4e6
    start = datetime(2026, 3, 2, 17, 0)  # a Monday
    offset = 17 * HOUR
    sched = CapacitySchedule.weekly(base=5e6, work_limit=1e6, off_limit=4e6, work_days=frozenset(range(5)),
                                    work_hours=(8 * HOUR, 18 * HOUR), offset=offset, efficiency=1.0)
    assert start.weekday() == 0
    env, link, table = _link(schedule=sched, passive=passive)
    done = _finishes(env, link, [10e9], until=DAY)
    assert done[0] == pytest.approx(HOUR + (10e9 - 3.6e9) / 4e6, rel=REL)
    caps = table.arrays()["capacity"]
    assert 1e6 in caps and 4e6 in caps


def test_weekly_schedule_capacity_and_changes():
    sched = CapacitySchedule.weekly(base=2e6, work_limit=1e6, off_limit=5e6, work_days=frozenset({0, 1, 2, 3, 4}),
                                    work_hours=(8 * HOUR, 18 * HOUR), offset=0.0, efficiency=0.5)
    assert sched.at(0.0) == 1e6  # Monday 00:00, off hours, capped by the 2 MB/s link, x0.5
    assert sched.at(9 * HOUR) == 0.5e6  # Monday 09:00, work limit
    assert sched.at(5 * DAY + 9 * HOUR) == 1e6  # Saturday: off hours all day
    assert sched.next_change(0.0) == 8 * HOUR
    assert sched.next_change(8 * HOUR) == 18 * HOUR
    assert sched.next_change(4 * DAY + 18 * HOUR) == 7 * DAY + 8 * HOUR  # Friday evening -> next Monday


@MODES
def test_link_outage_stalls_and_resumes_where_it_stopped(passive):
    env, link, _ = _link(100.0, passive=passive)
    done = {}
    _start(link, 0, 1000.0, on_done=lambda tr: done.setdefault(0, tr.finished_at))

    def outage():
        yield env.timeout(4.0)
        link.set_up(False)
        yield env.timeout(10.0)
        link.set_up(True)

    env.process(outage())
    env.run()
    assert done[0] == pytest.approx(20.0, rel=REL)  # 4 s sent 400 B, 10 s stalled, 6 s for the rest


@MODES
def test_pause_and_resume_keeps_progress(passive):
    env, link, _ = _link(100.0, passive=passive)
    done = {}
    tr = _start(link, 0, 1000.0, on_done=lambda t: done.setdefault(0, t.finished_at))

    def mover():
        yield env.timeout(3.0)
        assert link.pause(tr) == pytest.approx(700.0, rel=REL)
        yield env.timeout(5.0)
        link.resume(tr)

    env.process(mover())
    env.run()
    assert done[0] == pytest.approx(15.0, rel=REL)


@MODES
def test_backlog_is_recorded_at_each_change(passive):
    env, link, table = _link(100.0, passive=passive)
    _finishes(env, link, [1000.0, 200.0], starts=[0.0, 5.0])
    a = table.arrays()
    rows = dict(zip(a["time"].tolist(), zip(a["active"].tolist(), a["backlog"].tolist(), strict=True),
                    strict=True))
    assert rows[0.0] == (1, pytest.approx(1000.0))
    assert rows[5.0] == (2, pytest.approx(700.0))
    assert rows[9.0][0] == 1 and rows[9.0][1] == pytest.approx(300.0)
    assert a["active"][-1] == 0 and a["backlog"][-1] == 0.0


@MODES
@settings(max_examples=60, deadline=None)
@given(
    jobs=st.lists(
        st.tuples(st.floats(0, 100), st.floats(0, 1e6), st.integers(1, 32)), min_size=1, max_size=40
    ),
    capacity=st.floats(1.0, 1e7),
)
def test_every_transfer_finishes_exactly_once_and_work_is_conserved(jobs, capacity, passive):
    env, link, table = _link(capacity, passive=passive)
    finished: list[tuple[int, float]] = []

    def starter(i, at, size, w):
        yield env.timeout(at)
        _start(link, i, size, float(w), on_done=lambda tr: finished.append((tr.vm, tr.finished_at)))

    for i, (at, size, w) in enumerate(jobs):
        env.process(starter(i, at, size, w))
    env.run()
    ids = [i for i, _ in finished]
    assert sorted(ids) == list(range(len(jobs)))  # each exactly once
    times = table.arrays()["time"]
    assert (times[1:] >= times[:-1]).all()  # the clock never runs backwards
    # work conservation: the link is never idle while something is queued, so the last finish is
    # at least total/C after the first start and no transfer beats its solo time
    last = max(t for _, t in finished)
    first = min(at for at, _, _ in jobs)
    total = sum(size for _, size, _ in jobs)
    assert last >= first + total / capacity * (1 - 1e-9) - 1e-9
    for i, t in finished:
        at, size, _ = jobs[i]
        assert t >= at + size / capacity * (1 - 1e-9) - 1e-9
    if all(at == jobs[0][0] for at, _, _ in jobs):
        assert last == pytest.approx(first + total / capacity, rel=1e-9, abs=1e-9)
    assert not math.isnan(last)


def test_all_day_work_hours_throttle_every_work_day():
    sched = CapacitySchedule.weekly(base=10.0, work_limit=5.0, off_limit=10.0, work_days=frozenset(range(5)),
                                    work_hours=(0.0, DAY), offset=0.0, efficiency=1.0)
    assert [sched.at(d * DAY + 3600) for d in range(7)] == [5.0] * 5 + [10.0] * 2
    assert sched.next_change(0.0) == 5 * DAY


# --- passive finishes (FluidEnvironment + FluidLink.settle) ----------------------------------------------


def _run_jobs(jobs, capacity, passive, outage=None):
    """Run ``jobs`` (start, size, weight); return finish times by index and the link table's rows."""
    env, link, table = _link(capacity, passive=passive)
    finished = {}

    def starter(i, at, size, w):
        yield env.timeout(at)
        _start(link, i, size, float(w), on_done=lambda tr: finished.setdefault(tr.vm, tr.finished_at))

    def cut(down_at, up_at):
        yield env.timeout(down_at)
        link.set_up(False)
        yield env.timeout(up_at - down_at)
        link.set_up(True)

    for i, (at, size, w) in enumerate(jobs):
        env.process(starter(i, at, size, w))
    if outage is not None:
        env.process(cut(*outage))
    env.run()
    a = table.arrays()
    return finished, list(zip(a["time"].tolist(), a["active"].tolist(), a["backlog"].tolist(), strict=True))


@settings(max_examples=60, deadline=None)
@given(
    jobs=st.lists(st.tuples(st.floats(0, 50), st.floats(0, 1e5), st.integers(1, 8)), min_size=1, max_size=30),
    capacity=st.floats(10.0, 1e5),
    outage=st.one_of(st.none(), st.tuples(st.floats(0, 30), st.floats(0, 30)).map(lambda p: (p[0], p[0] + p[1]))),
)
def test_passive_finishes_match_one_event_per_finish(jobs, capacity, outage):
    """Completing passive transfers inside settle() gives the finish times and link rows of a timer per finish.

    Except at exact ties, by design: a passive finish at the very instant of an event counts as before it, a
    timed one is ordered among that instant's events by SimPy (e.g. a 0-byte transfer started as an outage
    begins). Such cases are left out."""
    timed, timed_rows = _run_jobs(jobs, capacity, passive=False, outage=outage)
    settled, settled_rows = _run_jobs(jobs, capacity, passive=True, outage=outage)
    events = {at for at, _, _ in jobs} | set(outage or ())
    assume(not events & (set(timed.values()) | set(settled.values())))
    assert sorted(settled) == sorted(timed) == list(range(len(jobs)))
    for i, t in timed.items():
        assert settled[i] == pytest.approx(t, rel=1e-9, abs=1e-9)
    # the same changes at the same times (a finish at the instant of an arrival may share its row)
    timed_t = sorted({round(t, 6) for t, _, _ in timed_rows})
    settled_t = sorted({round(t, 6) for t, _, _ in settled_rows})
    assert settled_t == timed_t
    assert settled_rows[-1][1] == timed_rows[-1][1] == 0


def test_settle_completes_passive_finishes_in_order_and_stops_at_an_urgent_one():
    # A (passive, 1000 B), B (timed, 2000 B), C (passive, 3000 B) from 0 at 1000 B/s: fair share ends them
    # at 3, 5 and 6 s. Nothing else happens until 20 s, yet B's callback runs at 5 s exactly and A's and
    # C's finish times are exact.
    env = FluidEnvironment()
    link = FluidLink(env, CapacitySchedule.constant(1000.0), defer=True)
    seen = {}

    def note(tr):
        seen[tr.vm] = (tr.finished_at, env.now)

    link.start(0, 0, 1000.0, on_done=note, passive=True)
    link.start(1, 0, 2000.0, on_done=note)
    link.start(2, 0, 3000.0, on_done=note, passive=True)
    later = env.timeout(20.0)
    env.run(until=later)
    assert seen[0][0] == pytest.approx(3.0, rel=REL)
    assert seen[1] == (pytest.approx(5.0, rel=REL), pytest.approx(5.0, rel=REL))  # at its instant
    assert seen[2][0] == pytest.approx(6.0, rel=REL)
    assert seen[2][1] <= 20.0  # completed before the event at 20 s


def test_a_passive_finish_is_complete_before_an_event_at_a_later_or_equal_time():
    env = FluidEnvironment()
    link = FluidLink(env, CapacitySchedule.constant(100.0), defer=True)
    tr = link.start(0, 0, 500.0, on_done=lambda t: None, passive=True)  # ends at 5 s
    seen = []

    def reader():
        yield env.timeout(5.0)  # the same instant as the finish
        seen.append((tr.active, tr.finished_at, link.active))

    env.process(reader())
    env.run()
    assert seen == [(False, 5.0, 0)]


def test_make_urgent_runs_the_callback_at_the_finish_instant():
    env = FluidEnvironment()
    link = FluidLink(env, CapacitySchedule.constant(100.0), defer=True)
    seen = []
    tr = link.start(0, 0, 500.0, on_done=lambda t: seen.append((t.finished_at, env.now)), passive=True)

    def waiter():
        yield env.timeout(1.0)
        link.make_urgent(tr)  # somebody now waits for it

    env.process(waiter())
    env.run(until=100.0)
    assert seen == [(pytest.approx(5.0, rel=REL), pytest.approx(5.0, rel=REL))]


def _ledger():
    """A transfers table with the columns the link writes."""
    return Recorder().table("transfers", {"vm": CODE, "kind": CODE, "direction": CODE, "bytes": FLOAT,
                                          "queued_at": FLOAT, "finished_at": FLOAT, "point": FLOAT,
                                          "consistency": CODE})


def test_each_transfer_is_recorded_once_whatever_its_end():
    env = FluidEnvironment()
    transfers = _ledger()
    link = FluidLink(env, CapacitySchedule.constant(100.0), direction=1, transfers=transfers, defer=True)
    link.start(0, 0, 100.0, passive=True)  # finishes
    cancelled = link.start(1, 0, 1e6)
    paused = link.start(2, 0, 1e6)
    link.start(3, 0, 1e6)  # still running at the end

    def later():
        yield env.timeout(10.0)
        link.cancel(cancelled)
        link.cancel(cancelled)  # twice: still one row
        link.pause(paused)

    env.process(later())
    env.run(until=50.0)
    link.close()
    a = transfers.arrays()
    assert sorted(a["vm"].tolist()) == [0, 1, 2, 3]
    assert (a["direction"] == 1).all()
    finished = dict(zip(a["vm"].tolist(), a["finished_at"].tolist(), strict=True))
    assert finished[0] == pytest.approx(4.0, rel=REL)  # 100 B at a quarter of 100 B/s
    assert all(math.isnan(finished[v]) for v in (1, 2, 3))


def test_one_link_per_environment_defers():
    env = FluidEnvironment()
    FluidLink(env, CapacitySchedule.constant(100.0), defer=True)
    with pytest.raises(ValueError, match="one resource"):
        FluidLink(env, CapacitySchedule.constant(100.0), defer=True)
    FluidLink(env, CapacitySchedule.constant(100.0))  # a second link that times every transfer is fine
    with pytest.raises(TypeError):
        FluidLink(simpy.Environment(), CapacitySchedule.constant(100.0), defer=True)


def test_without_an_end_time_the_clock_still_reaches_each_passive_finish():
    env = FluidEnvironment()
    link = FluidLink(env, CapacitySchedule.constant(100.0), defer=True)
    seen = []
    link.start(0, 0, 1000.0, on_done=lambda t: seen.append((t.finished_at, env.now)), passive=True)
    env.run()  # no other event: the finish must still move the clock to 10 s
    assert seen == [(pytest.approx(10.0, rel=REL), pytest.approx(10.0, rel=REL))]
    assert env.now == pytest.approx(10.0, rel=REL)
    tr = link.start(1, 0, 100.0, passive=True)  # the link is not ahead of the clock: it can go on
    env.run()
    assert tr.finished_at == pytest.approx(11.0, rel=REL)


def test_a_closed_link_records_nothing_more():
    env = FluidEnvironment()
    transfers = _ledger()
    link = FluidLink(env, CapacitySchedule.constant(100.0), transfers=transfers, defer=True)
    tr = link.start(0, 0, 1e6)
    env.run(until=5.0)
    link.close()
    link.cancel(tr)  # e.g. a process finalised after the run: no second row
    assert len(transfers) == 1
    with pytest.raises(ValueError):
        transfers.records()["bytes"][0] = 0.0  # the view is read-only
