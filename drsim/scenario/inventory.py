"""The site as the hypervisor lists it: an inventory CSV of VMs and their virtual disks, one row per disk.

The CSV is what this PowerShell line writes on a Hyper-V host (``Get-VM -ComputerName H1, H2`` for several hosts;
the full command is in the README, section "Start from your site"): one row per virtual disk with the columns

========================  ==========================================================================================
``VMName``                the VM's name (kept exactly as written)
``ComputerName``          the Hyper-V host it runs on (kept exactly as written)
``State``                 ``Running``, ``Off``, ``Saved``, ``Paused`` (``Get-VM``)
``Generation``            1 or 2 (``Get-VM``)
``GuestOS``               the guest's operating system as it reports it (Hyper-V data exchange ``OSName``); may be
                          blank (a VM that is off reports nothing)
``Path``                  the virtual disk file (``Get-VMHardDiskDrive``)
``Size``                  its provisioned size in bytes (``Get-VHD``)
``FileSize``              the size of its file in bytes (``Get-VHD``): for a dynamically expanding disk, about the
                          data written to it, which is what an initial replication copies
``HostOS`` (optional)     the host's Windows version (``Win32_OperatingSystem.Caption``)
``VMId`` (optional)       the VM's id, which tells apart two VMs of the same name
========================  ==========================================================================================

:func:`read_inventory` reads it (any encoding, separator and decimal mark :mod:`drsim.scenario.csvtext` reads;
header names in any letter case) into hosts, VMs and disks, and refuses a file with missing columns, naming them.
Imports only :mod:`drsim.scenario.csvtext`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from drsim.scenario.csvtext import CsvTextError, decimal_mark, parse_number, read_rows

__all__ = ["Inventory", "InventoryHost", "InventoryVM", "InventoryDisk", "InventoryError", "read_inventory",
           "REQUIRED", "OPTIONAL", "host_os"]

#: Required columns and the other header names accepted for each (letter case ignored).
REQUIRED: dict[str, tuple[str, ...]] = {
    "VMName": ("vmname", "vm", "name"),
    "ComputerName": ("computername", "host", "hostname"),
    "State": ("state",),
    "Generation": ("generation",),
    "GuestOS": ("guestos", "osname", "os"),
    "Path": ("path", "diskpath"),
    "Size": ("size", "provisionedsize"),
    "FileSize": ("filesize",),
}
OPTIONAL: dict[str, tuple[str, ...]] = {"HostOS": ("hostos",), "VMId": ("vmid", "id")}


class InventoryError(ValueError):
    """An inventory CSV that cannot be used; the message names the file, the line and what to do."""


@dataclass
class InventoryDisk:
    """A virtual disk: its file ``path``, provisioned ``size`` and ``file_size`` in bytes (None when not given),
    and the CSV ``line`` it came from."""

    path: str
    size: float
    file_size: float | None
    line: int

    @property
    def differencing(self) -> bool:
        """A checkpoint's differencing disk (``.avhdx``/``.avhd``): its file holds only the changes."""
        return self.path.lower().endswith((".avhdx", ".avhd"))


@dataclass
class InventoryVM:
    """A VM: ``name``, ``host``, ``state``, ``generation``, ``guest_os`` as written, its ``disks`` in CSV order,
    the ``line`` of its first row."""

    name: str
    host: str
    state: str
    generation: str
    guest_os: str
    line: int
    vm_id: str = ""
    disks: list[InventoryDisk] = field(default_factory=list)


@dataclass
class InventoryHost:
    """A Hyper-V host: ``name`` as written, its Windows version caption ``os`` ("" when not given), its VMs."""

    name: str
    os: str = ""
    vms: list[InventoryVM] = field(default_factory=list)


@dataclass
class Inventory:
    """The site read from an inventory CSV: hosts in order of first appearance; ``notes`` on what was read."""

    path: Path
    hosts: list[InventoryHost]
    encoding: str
    delimiter: str
    notes: list[str] = field(default_factory=list)

    def vms(self) -> list[InventoryVM]:
        return [vm for h in self.hosts for vm in h.vms]


def _columns(header: list[str], what: str, line: int) -> dict[str, int]:
    index = {re.sub(r"[\s_-]", "", h.strip().strip('"')).lower(): i for i, h in enumerate(header)}
    found: dict[str, int] = {}
    for name, aliases in (*REQUIRED.items(), *OPTIONAL.items()):
        for alias in aliases:
            if alias in index:
                found[name] = index[alias]
                break
    missing = [name for name in REQUIRED if name not in found]
    if missing:
        have = ", ".join(h.strip() for h in header if h.strip()) or "nothing"
        raise InventoryError(
            f"{what}, line {line}: missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)} (the header "
            f"has: {have}). Export the inventory with the PowerShell command in the README, section 'Start from "
            "your site', or add the columns")
    return found


def host_os(caption: str) -> str | None:
    """The scenario's ``os`` for a host's Windows caption (``Microsoft Windows Server 2019 Standard`` ->
    ``Windows Server 2019``), or None when it names no Windows Server version."""
    m = re.search(r"Windows Server\s+(\d{4})(\s*R2)?", caption, re.IGNORECASE)
    return f"Windows Server {m.group(1)}{' R2' if m.group(2) else ''}" if m else None


def read_inventory(path: str | Path) -> Inventory:
    """Read an inventory CSV (one row per virtual disk) into hosts, VMs and disks. Raises :class:`InventoryError`
    with the file and line of the first problem."""
    what = f"inventory {path}"
    try:
        table = read_rows(path, what, skip_type_line=True)
    except CsvTextError as exc:
        raise InventoryError(str(exc)) from None
    col = _columns(table.header, what, table.header_line)
    if not table.rows:
        raise InventoryError(f"{what}: no rows after the header: the export found no VM disks")
    sizes = [r[col[k]] for r in table.rows for k in ("Size", "FileSize") if col[k] < len(r) and r[col[k]].strip()]
    decimal, bad = decimal_mark(sizes)
    if bad is not None:
        raise InventoryError(f"{what}: sizes such as {sizes[bad].strip()!r} have a thousands separator or mix ',' and "
                             "'.': write sizes as whole numbers of bytes (Export-Csv writes them so)")
    hosts: dict[str, InventoryHost] = {}
    vms: dict[tuple[str, str], InventoryVM] = {}
    by_name: dict[str, InventoryVM] = {}
    notes: list[str] = []
    for cells, line in zip(table.rows, table.lines, strict=True):
        if len(cells) < len(table.header):
            raise InventoryError(f"{what}, line {line}: {len(cells)} cells where the header has {len(table.header)}")

        def cell(name: str, cells: list[str] = cells) -> str:
            return cells[col[name]].strip() if name in col else ""

        name, host_name = cells[col["VMName"]], cells[col["ComputerName"]]
        if not name.strip():
            raise InventoryError(f"{what}, line {line}: the VMName is empty")
        if not host_name.strip():
            raise InventoryError(f"{what}, line {line}: VM {name!r}: the ComputerName (its host) is empty")
        host = hosts.setdefault(host_name, InventoryHost(host_name, cell("HostOS")))
        key = (cell("VMId"), "") if cell("VMId") else (host_name, name)
        vm = vms.get(key)
        if vm is None:
            other = by_name.get(name)
            if other is not None:
                raise InventoryError(
                    f"{what}, line {line}: a second VM named {name!r} (on host {host_name!r}; the first, on "
                    f"{other.host!r}, is on line {other.line}): drsim needs unique VM names; rename one of them in "
                    "the CSV")
            vm = InventoryVM(name, host_name, cell("State"), cell("Generation"), cell("GuestOS"), line, cell("VMId"))
            vms[key] = by_name[name] = vm
            host.vms.append(vm)
        vm.disks.append(_disk(cells, col, decimal, line, what, name, notes))
    return Inventory(Path(path), list(hosts.values()), table.encoding, table.delimiter, notes)


def _disk(cells: list[str], col: dict[str, int], decimal: str, line: int, what: str, vm: str,
          notes: list[str]) -> InventoryDisk:
    path = cells[col["Path"]].strip()
    if not path:
        raise InventoryError(f"{what}, line {line}: VM {vm!r}: the disk Path is empty (a pass-through disk cannot be "
                             "replicated; remove the row)")
    values: dict[str, float | None] = {}
    for key in ("Size", "FileSize"):
        text = cells[col[key]].strip()
        if not text:
            values[key] = None
            continue
        try:
            values[key] = parse_number(text, decimal)
        except ValueError:
            raise InventoryError(f"{what}, line {line}: VM {vm!r}: {key} {text!r} is not a number of bytes") from None
        if "e" in text.lower():
            notes.append(f"line {line}: {key} {text} is in scientific notation: a spreadsheet rounded it; export "
                         "again for exact sizes")
    size, file_size = values["Size"], values["FileSize"]
    if size is None or size <= 0:
        raise InventoryError(f"{what}, line {line}: VM {vm!r}, disk {path}: the provisioned Size must be a number of "
                             "bytes above 0 (Get-VHD could not read the file? fill it in or remove the row)")
    if file_size is not None and file_size < 0:
        raise InventoryError(f"{what}, line {line}: VM {vm!r}, disk {path}: FileSize must not be negative")
    return InventoryDisk(path, float(round(size)), None if file_size is None else float(round(file_size)), line)
