"""Write the bundled site example: a hypervisor inventory and a week of performance counters, both synthetic.

    python scenarios/examples/make_site_example.py [--out DIR]

writes into DIR (default: this folder), byte for byte as the Windows tools write them:

- ``site-inventory.csv``: what the README's PowerShell line (``Get-VM | ... | Export-Csv -NoTypeInformation
  -Encoding UTF8``, Windows PowerShell 5.1) writes: UTF-8 with a byte-order mark, every field quoted, CRLF line
  ends, one row per virtual disk. Two hosts, four VMs; one VM is off, has a name with spaces and a generation 1
  disk layout.
- ``site-counters.csv``: what ``typeperf -cf counters.txt -si 300 -sc 2017 -f CSV -o site-counters.csv`` writes:
  the ``(PDH-CSV 4.0)`` header, one quoted column per counter path, timestamps in local time
  (``MM/DD/YYYY HH:MM:SS.mmm``), ``" "`` for a missing sample, CRLF line ends. One week from Monday 2 March 2026,
  a sample every 5 minutes, the ``Hyper-V Virtual Storage Device(*)\\Write Bytes/sec`` counter of every disk of the
  running VMs and the hosts' ``PhysicalDisk(_Total)\\Disk Write Bytes/sec``. Three samples are missing.

The numbers are invented (an office file server with a nightly backup, a SQL server with a morning batch and
index maintenance at 02:00, a domain controller), drawn from a fixed seed: the same files every time.
"""

from __future__ import annotations

import argparse
import codecs
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

GIB = 1024**3
HERE = Path(__file__).resolve().parent

# host, host OS caption, VM, state, generation, guest OS, [(disk path, provisioned bytes, file bytes)]
SITE = [
    ("HV01", "Microsoft Windows Server 2019 Standard", [
        ("FS01", "Running", 2, "Windows Server 2019 Standard", [
            (r"D:\Hyper-V\FS01\Virtual Hard Disks\FS01_OS.vhdx", 127 * GIB, 24_617_418_752),
            (r"D:\Hyper-V\FS01\Virtual Hard Disks\FS01_Data.vhdx", 1024 * GIB, 412_316_860_416),
        ]),
        ("SQL01", "Running", 2, "Windows Server 2019 Standard", [
            (r"D:\Hyper-V\SQL01\Virtual Hard Disks\SQL01_OS.vhdx", 127 * GIB, 31_138_512_896),
            (r"E:\Hyper-V\SQL01\SQL01_Data.vhdx", 300 * GIB, 161_061_273_600),
            (r"E:\Hyper-V\SQL01\SQL01_Log.vhdx", 100 * GIB, 42_949_672_960),
        ]),
    ]),
    ("HV02", "Microsoft Windows Server 2016 Datacenter", [
        ("DC01", "Running", 2, "Windows Server 2016 Datacenter", [
            (r"C:\ClusterStorage\Volume1\DC01\DC01.vhdx", 60 * GIB, 60 * GIB + 4 * 1024**2),   # fixed size
        ]),
        ("ERP app 01", "Off", 1, "", [
            (r"C:\ClusterStorage\Volume1\ERP app 01\erp-system.vhdx", 127 * GIB, 52_613_349_376),
        ]),
    ]),
]

START = datetime(2026, 3, 2, 0, 0, 0, 117000)   # a Monday; typeperf's first sample
STEP = 300                                        # seconds between samples (typeperf -si 300)
SAMPLES = 7 * 24 * 12 + 1                         # one week (typeperf -sc 2017)
MISSING = {(400, 1), (401, 1), (1500, 4)}         # (row, column) samples written as " "


def _shape(hours: np.ndarray, weekday: np.ndarray, kind: str) -> np.ndarray:
    """Mean write rate in bytes/s by hour of the day and weekday (0 = Monday)."""
    office = np.where((hours >= 8) & (hours < 18), 1.0, 0.12) * np.where(weekday >= 5, 0.15, 1.0)
    if kind == "fs-os":
        return 20e3 + 60e3 * office
    if kind == "fs-data":
        backup = np.where((hours >= 1) & (hours < 3), 1.2e6, 0.0)     # nightly backup staging
        return 30e3 + 300e3 * office + backup
    if kind == "sql-os":
        return 20e3 + 50e3 * office
    if kind == "sql-data":
        batch = np.where((hours >= 9) & (hours < 11) & (weekday < 5), 1.5e6, 0.0)   # morning batch
        maintenance = np.where((hours >= 2) & (hours < 3), 2.5e6, 0.0)             # index maintenance
        return 40e3 + 250e3 * office + batch + maintenance
    if kind == "sql-log":
        return 30e3 + 150e3 * office
    return 10e3 + 25e3 * office                                                   # domain controller


KINDS = {"FS01_OS": "fs-os", "FS01_Data": "fs-data", "SQL01_OS": "sql-os", "SQL01_Data": "sql-data",
         "SQL01_Log": "sql-log", "DC01": "dc"}


def write_inventory(path: Path) -> None:
    """The inventory as Windows PowerShell 5.1's Export-Csv -NoTypeInformation -Encoding UTF8 writes it."""
    header = ["VMName", "VMId", "ComputerName", "HostOS", "State", "Generation", "GuestOS", "Path", "Size",
              "FileSize"]
    lines = [",".join(f'"{h}"' for h in header)]
    for host, host_os, vms in SITE:
        for name, state, generation, guest, disks in vms:
            vm_id = uuid.uuid5(uuid.NAMESPACE_URL, f"drsim-example/{host}/{name}")
            for disk, size, file_size in disks:
                row = [name, str(vm_id), host, host_os, state, str(generation), guest, disk, str(size), str(file_size)]
                lines.append(",".join(f'"{v}"' for v in row))
    path.write_bytes(codecs.BOM_UTF8 + ("\r\n".join(lines) + "\r\n").encode("utf-8"))


def _instance(disk: str) -> str:
    """A Hyper-V Virtual Storage Device counter instance: the disk's path with dashes for backslashes."""
    return disk.replace("\\", "-")


def write_counters(path: Path) -> None:
    """A week of typeperf samples (PDH-CSV 4.0), values drawn from a fixed seed."""
    rng = np.random.default_rng(20260302)
    times = [START + timedelta(seconds=STEP * i) for i in range(SAMPLES)]
    hours = np.array([t.hour for t in times])
    weekday = np.array([t.weekday() for t in times])
    columns, series = [], []
    per_host: dict[str, np.ndarray] = {}
    for host, _, vms in SITE:
        for name, state, _, _, disks in vms:
            if state != "Running":
                continue  # a VM that is off has no virtual storage device instances
            for disk, _, _ in disks:
                stem = disk.rsplit("\\", 1)[-1].removesuffix(".vhdx")
                mean = _shape(hours, weekday, KINDS[stem])
                values = mean * rng.lognormal(-0.125, 0.5, size=SAMPLES)   # mean-one noise, CV about 0.53
                columns.append(f"\\\\{host}\\Hyper-V Virtual Storage Device({_instance(disk)})\\Write Bytes/sec")
                series.append(values)
                per_host[host] = per_host.get(host, 0) + values
    for host, total in per_host.items():
        columns.append(f"\\\\{host}\\PhysicalDisk(_Total)\\Disk Write Bytes/sec")
        series.append(total * 1.08)   # the host's own writes on top
    lines = [",".join(f'"{c}"' for c in ["(PDH-CSV 4.0) (W. Europe Standard Time)(-60)", *columns])]
    for i, t in enumerate(times):
        cells = [f"{t:%m/%d/%Y %H:%M:%S}.{t.microsecond // 1000:03d}"]
        cells += [" " if (i, j) in MISSING else f"{series[j][i]:.3f}" for j in range(len(columns))]
        lines.append(",".join(f'"{c}"' for c in cells))
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("ascii"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=HERE, help="folder to write into [this folder]")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    write_inventory(args.out / "site-inventory.csv")
    write_counters(args.out / "site-counters.csv")
    print(f"wrote {args.out / 'site-inventory.csv'} and {args.out / 'site-counters.csv'}")


if __name__ == "__main__":
    main()
