"""The fluid fair-share link against closed forms."""

from __future__ import annotations

import math
from datetime import datetime

import pytest
import simpy
from hypothesis import given, settings
from hypothesis import strategies as st

from drsim.link import FluidLink
from drsim.recorder import Recorder
from drsim.schedule import CapacitySchedule
from drsim.units import DAY, HOUR

REL = 1e-9  # round-off only


def _link(capacity: float = 1000.0, schedule: CapacitySchedule | None = None):
    env = simpy.Environment()
    rec = Recorder()
    table = rec.table("link", {"time": "d", "direction": "h", "capacity": "d", "active": "l", "backlog": "d"})
    link = FluidLink(env, schedule or CapacitySchedule.constant(capacity), table=table)
    return env, link, table


def _finishes(env, link, sizes, weights=None, starts=None, until=None):
    done = {}
    weights = weights or [1.0] * len(sizes)
    starts = starts or [0.0] * len(sizes)

    def starter(i):
        yield env.timeout(starts[i])
        link.start(i, 0, sizes[i], weights[i], on_done=lambda tr: done.setdefault(tr.vm, env.now))

    for i in range(len(sizes)):
        env.process(starter(i))
    env.run(until=until)  # a throttled link wakes at every schedule boundary: give it an end
    return done


def test_lone_transfer_takes_size_over_bandwidth():
    env, link, _ = _link(1000.0)
    done = _finishes(env, link, [12345.0])
    assert done[0] == pytest.approx(12.345, rel=REL)


def test_n_equal_transfers_started_together_all_finish_at_n_d_over_b():
    n, d, b = 7, 5000.0, 250.0
    env, link, _ = _link(b)
    done = _finishes(env, link, [d] * n)
    assert len(done) == n
    for t in done.values():
        assert t == pytest.approx(n * d / b, rel=REL)


def test_unequal_transfers_finish_at_processor_sharing_times():
    # sizes 1, 2, 3 (x1000) at C = 1000: finishes at 3, 5, 6 s
    env, link, _ = _link(1000.0)
    done = _finishes(env, link, [1000.0, 2000.0, 3000.0])
    assert [done[i] for i in range(3)] == pytest.approx([3.0, 5.0, 6.0], rel=REL)


def test_weights_share_in_proportion():
    # weights 1 and 3, both D: the heavy one gets 3/4 C until it ends at 4D/3C; the other ends at 2D/C
    env, link, _ = _link(100.0)
    done = _finishes(env, link, [300.0, 300.0], weights=[1.0, 3.0])
    assert done[1] == pytest.approx(4.0, rel=REL)
    assert done[0] == pytest.approx(6.0, rel=REL)


def test_late_arrival_slows_the_first():
    # A (1000 B) alone from 0 at 100 B/s; B (200 B) arrives at 5 s: both at 50 B/s; B ends at 9 s, A at 12 s
    env, link, _ = _link(100.0)
    done = _finishes(env, link, [1000.0, 200.0], starts=[0.0, 5.0])
    assert done[1] == pytest.approx(9.0, rel=REL)
    assert done[0] == pytest.approx(12.0, rel=REL)


def test_zero_byte_transfer_finishes_at_once():
    env, link, _ = _link(100.0)
    done = _finishes(env, link, [0.0, 100.0])
    assert done[0] == 0.0
    assert done[1] == pytest.approx(1.0, rel=REL)


def test_throttle_boundary_changes_finish_time_exactly():
    # Monday 17:00 start, work hours to 18:00 at 1 MB/s, then 4 MB/s: 10 GB finish = 18:00 + (10e9 - 3.6e9)/4e6
    start = datetime(2026, 3, 2, 17, 0)  # a Monday
    offset = 17 * HOUR
    sched = CapacitySchedule.weekly(base=5e6, work_limit=1e6, off_limit=4e6, work_days=frozenset(range(5)),
                                    work_hours=(8 * HOUR, 18 * HOUR), offset=offset, efficiency=1.0)
    assert start.weekday() == 0
    env, link, table = _link(schedule=sched)
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


def test_link_outage_stalls_and_resumes_where_it_stopped():
    env, link, _ = _link(100.0)
    done = {}
    link.start(0, 0, 1000.0, on_done=lambda tr: done.setdefault(0, env.now))

    def outage():
        yield env.timeout(4.0)
        link.set_up(False)
        yield env.timeout(10.0)
        link.set_up(True)

    env.process(outage())
    env.run()
    assert done[0] == pytest.approx(20.0, rel=REL)  # 4 s sent 400 B, 10 s stalled, 6 s for the rest


def test_pause_and_resume_keeps_progress():
    env, link, _ = _link(100.0)
    done = {}
    tr = link.start(0, 0, 1000.0, on_done=lambda t: done.setdefault(0, env.now))

    def mover():
        yield env.timeout(3.0)
        assert link.pause(tr) == pytest.approx(700.0, rel=REL)
        yield env.timeout(5.0)
        link.resume(tr)

    env.process(mover())
    env.run()
    assert done[0] == pytest.approx(15.0, rel=REL)


def test_backlog_is_recorded_at_each_change():
    env, link, table = _link(100.0)
    _finishes(env, link, [1000.0, 200.0], starts=[0.0, 5.0])
    a = table.arrays()
    rows = dict(zip(a["time"].tolist(), zip(a["active"].tolist(), a["backlog"].tolist(), strict=True),
                    strict=True))
    assert rows[0.0] == (1, pytest.approx(1000.0))
    assert rows[5.0] == (2, pytest.approx(700.0))
    assert rows[9.0][0] == 1 and rows[9.0][1] == pytest.approx(300.0)
    assert a["active"][-1] == 0 and a["backlog"][-1] == 0.0


@settings(max_examples=60, deadline=None)
@given(
    jobs=st.lists(
        st.tuples(st.floats(0, 100), st.floats(0, 1e6), st.integers(1, 32)), min_size=1, max_size=40
    ),
    capacity=st.floats(1.0, 1e7),
)
def test_every_transfer_finishes_exactly_once_and_work_is_conserved(jobs, capacity):
    env, link, table = _link(capacity)
    finished: list[tuple[int, float]] = []

    def starter(i, at, size, w):
        yield env.timeout(at)
        link.start(i, 0, size, float(w), on_done=lambda tr: finished.append((tr.vm, env.now)))

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
