"""Legal but suspicious input: warned with the file's line, never refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from drsim.scenario.checks import located_warnings, scenario_warnings
from drsim.scenario.loading import load_scenario, parse_scenario
from tests.conftest import base_scenario, make_scenario

# the tiny scenario of tests/conftest.py: one 10 GB VM writing 100 kB/s, 8 Mbit/s up, efficiency 1, a day
TEXT = """\
name: tiny
duration: {duration}
site:
  hosts:
    - name: H1
      vms:
        - name: vm1
          disks: [10GB]
          churn: {churn}
link: {{upload: 8Mbit/s, download: 80Mbit/s, efficiency: 1.0}}
replication: {{interval: 5m, setup: 0}}
failures:
  - {{kind: host, target: H1, every: {every}, repair: {repair}}}
"""


def load(tmp_path: Path, duration="1d", churn="{rate: 100kB/s}", every="{dist: exponential, mean: 1y}",
         repair="4h"):
    path = tmp_path / "s.yaml"
    path.write_text(TEXT.format(duration=duration, churn=churn, every=every, repair=repair), encoding="utf-8")
    return load_scenario(path), path


def test_a_sound_scenario_has_no_warning(tmp_path):
    s, _ = load(tmp_path)
    assert located_warnings(s) == []


def test_a_bare_number_where_durations_are_long_is_warned_with_its_line(tmp_path):
    s, path = load(tmp_path, duration=30)
    assert located_warnings(s)[0] == (f"{path}:2:11: duration: 30 is 30 s (a bare number is seconds); write 30d "
                                      "or 30h if you meant days or hours")
    # a mean under 1 min is refused outright: 2 min is legal, and warned
    s, path = load(tmp_path, every="{dist: exponential, mean: 120}", repair=8)
    assert located_warnings(s) == [
        f"{path}:13:63: failures[0].every.mean: 120 is 2 min (a bare number is seconds); write 120d or 120h if you "
        "meant days or hours",
        f"{path}:13:77: failures[0].repair: 8 is 8 s (a bare number is seconds); write 8d or 8h if you meant days or "
        "hours"]


@pytest.mark.parametrize("changes", [{"duration": 86400}, {"replication.app_consistent_every": 0},
                                     {"objectives.rpo": 900}, {"failures": [{"kind": "vm", "target": "vm1",
                                                                             "at": 600, "repair": "5m"}]}])
def test_bare_numbers_that_are_plausible_are_not_warned(changes):
    # a day in seconds; 0 = none; the RPO is minutes in practice; a time point is an offset (10 min in)
    assert scenario_warnings(make_scenario(changes)) == []


def test_the_bare_number_check_sees_every_long_duration_and_distribution_value():
    d = base_scenario()
    d.update(duration="1d", replication={**d["replication"], "retention": 24, "app_consistent_every": 4},
             objectives={"rto": 2},
             failures=[{"kind": "vm", "target": "vm1", "every": 90, "repair": {"dist": "empirical", "values": [5, 60]}},
                       {"kind": "corruption", "target": "vm1", "at": "10h",
                        "detected_after": {"dist": "weibull", "shape": 2, "scale": 30}}],
             maintenance=[{"host": "H1", "at": "2h", "window": 6}],
             drills=[{"vms": ["vm1"], "every": 7, "duration": {"dist": "uniform", "low": 1, "high": 2}}])
    places = [w.split(":")[0] for w in scenario_warnings(parse_scenario(d))]
    assert places == ["replication.retention", "replication.app_consistent_every", "objectives.rto",
                      "failures[0].every", "failures[0].repair.values[0]", "failures[0].repair.values[1]",
                      "failures[1].detected_after.scale", "maintenance[0].window", "drills[0].every",
                      "drills[0].duration.low", "drills[0].duration.high"]


def test_a_daily_churn_over_half_the_disk_is_warned(tmp_path):
    s, path = load(tmp_path, churn="{daily: 1}")
    assert (f"{path}:9:26: vm1: churn.daily 100% of the disk a day is more than 50%: a bare number is a fraction "
            "(1 is 100 %); write e.g. 1% for one per cent a day") in located_warnings(s)
    assert not any("churn.daily" in w for w in scenario_warnings(make_scenario(
        {"site.hosts[0].vms[0].churn": {"daily": "50%"}})))


def test_a_run_shorter_than_the_initial_replication_is_warned(tmp_path):
    # 10 GB at 1 MB/s of payload: the copy alone takes 10,000 s (2 h 46 min)
    s, path = load(tmp_path, duration="2h")
    assert located_warnings(s) == [
        f"{path}:2:11: duration: the run (2 h) is shorter than the initial replication needs at the least (2 h 46 "
        "min: 9.3 GiB at the link's best payload rate): VMs will end the run not protected"]
    assert scenario_warnings(make_scenario({"duration": "3h"})) == []
    # a later start of protection counts; so does a throttle that never gives the full uplink
    late = make_scenario({"duration": "4h", "replication.initial": {"start": "2h"}})
    assert scenario_warnings(late)[0].startswith("duration: the run (4 h) is shorter than the initial replication "
                                                 "needs at the least (4 h 46 min")
    throttled = make_scenario({"duration": "4h", "link.throttle": {"work_limit": "4Mbit/s", "off_limit": "4Mbit/s"}})
    assert "(5 h 33 min" in scenario_warnings(throttled)[0]


def test_churn_above_the_link_is_warned_with_the_upload_line(tmp_path):
    # 8 Mbit/s = 1 MB/s of payload; a throttle to half the link on weekdays 08:00-18:00 leaves 851 kB/s on average
    s, path = load(tmp_path, churn="{rate: 1.1MB/s}")
    assert (f"{path}:10:16: link: the protected VMs' churn (8.8 Mbit/s on the wire) exceeds the link's mean payload "
            "capacity (8 Mbit/s): replication cannot keep up; the RPO grows until a disk's change log reaches half "
            "the disk and the VM needs resynchronisation") in located_warnings(s)
    assert scenario_warnings(make_scenario({"site.hosts[0].vms[0].churn": {"rate": "0.9MB/s"}})) == []
    throttled = make_scenario({"site.hosts[0].vms[0].churn": {"rate": "0.9MB/s"},
                               "link.throttle": {"work_limit": "4Mbit/s"}})
    assert any("exceeds the link's mean payload capacity (6.81 Mbit/s)" in w for w in scenario_warnings(throttled))


def test_warnings_are_not_errors_and_the_run_goes_on(tmp_path):
    s, _ = load(tmp_path, duration=30, churn="{daily: 1}")
    assert len(scenario_warnings(s)) == 3  # 30 s, 100 % a day (115 kB/s: within the link), too short for the copy
    assert s.duration == 30.0 and s.vms()[0][1].churn.daily == 1.0


def test_the_services_limits_are_warned_at_their_lines(tmp_path):
    """A generation 2 VM whose OS disk is over 300 GB is refused at its disks; a host with less free space than its
    protectable VMs' disks (the refused VM's do not count) at its free_space; churn over the premium tier's 5 MB/s
    at the VM's churn (support matrix)."""
    path = tmp_path / "limits.yaml"
    path.write_text("""\
name: limits
duration: 30d
site:
  hosts:
    - name: H1
      free_space: 80GiB
      vms:
        - name: big
          generation: 2
          disks: [400GiB]
          churn: {rate: 1kB/s}
        - name: busy
          disks: [100GiB]
          churn: {rate: 6MB/s}
link: {upload: 1Gbit/s, download: 1Gbit/s}
replication: {target_storage: premium}
""", encoding="utf-8")
    lines = located_warnings(load_scenario(path))
    assert (f"{path}:6:19: host H1: 80.0 GiB free for the change logs; initial replication of its VMs may need "
            "up to 100 GiB (100 % of their disks) and delta replication up to 50.0 GiB (50 %): when the log space "
            "runs out, replication pauses and the VMs need resynchronisation") in lines
    assert (f"{path}:10:18: big cannot be protected: its OS disk (the first) is 400 GiB; a generation 2 VM's OS disk "
            "may be at most 300 GB (support matrix)") in lines
    assert (f"{path}:14:18: busy: mean churn 6.00 MB/s exceeds the 5 MB/s the service supports per VM on premium "
            "storage (support matrix)") in lines
