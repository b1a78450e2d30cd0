"""The hypervisor's inventory CSV to a scenario: columns, encodings, separators, names kept and quoted, sizes,
placeholder churn and bundled defaults, counters mapped to VMs, and each bad input refused with its line."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest
import yaml

from drsim.scenario import parse_scenario
from drsim.scenario.document import Link, Objectives, Replication
from drsim.scenario.inventory import InventoryError, read_inventory
from drsim.scenario.perfmon import read_counter_log
from drsim.scenario.scaffold import PLACEHOLDER_DAILY, scaffold_scenario, yaml_scalar

EXAMPLES = Path(__file__).resolve().parents[1] / "scenarios" / "examples"
GIB = 1024**3
COLUMNS = ["VMName", "VMId", "ComputerName", "HostOS", "State", "Generation", "GuestOS", "Path", "Size", "FileSize"]


def row(vm: str = "vm1", host: str = "HV01", path: str = r"D:\VMs\vm1.vhdx", size: object = 127 * GIB,
        file_size: object = 40 * GIB, vm_id: str = "", host_os: str = "Microsoft Windows Server 2019 Standard",
        state: str = "Running", generation: object = 2, guest: str = "Windows Server 2019 Standard") -> list[str]:
    return [vm, vm_id, host, host_os, state, str(generation), guest, path, str(size), str(file_size)]


def write_csv(path: Path, rows: list[list[str]], columns: list[str] = COLUMNS, sep: str = ",",
              encoding: str = "utf-8", bom: bytes = codecs.BOM_UTF8, first: str = "") -> Path:
    """As Export-Csv -NoTypeInformation writes it: every field quoted, CRLF."""
    lines = ([first] if first else []) + [sep.join(f'"{c}"' for c in columns)]
    lines += [sep.join('"' + c.replace('"', '""') + '"' for c in r) for r in rows]
    path.write_bytes(bom + ("\r\n".join(lines) + "\r\n").encode(encoding))
    return path


def scenario_of(text: str, out: Path):
    return parse_scenario(yaml.safe_load(text), base=out)


def test_the_bundled_inventory(tmp_path):
    inv = read_inventory(EXAMPLES / "site-inventory.csv")
    assert inv.encoding == "UTF-8 with BOM" and inv.delimiter == ","
    assert [h.name for h in inv.hosts] == ["HV01", "HV02"]
    assert [vm.name for vm in inv.vms()] == ["FS01", "SQL01", "DC01", "ERP app 01"]
    sql = inv.vms()[1]
    assert [d.size for d in sql.disks] == [127 * GIB, 300 * GIB, 100 * GIB]
    assert sql.disks[2].file_size == 42_949_672_960 and sql.generation == "2" and sql.state == "Running"
    made = scaffold_scenario(inv, tmp_path / "site.yaml")
    s = scenario_of(made.text, tmp_path / "site.yaml")
    assert [(h.name, h.os) for h in s.site.hosts] == [("HV01", "Windows Server 2019"), ("HV02", "Windows Server 2016")]
    dc = s.vm("DC01")
    assert dc.disks[0].size == 60 * GIB and dc.disks[0].copy_bytes == 60 * GIB  # fixed: file above size, clamped
    fs = s.vm("FS01")
    assert fs.disks[1].size == 1024 * GIB
    assert 0 <= fs.disks[1].copy_bytes - 412_316_860_416 < 0.01 * GIB  # used: the file size, rounded up


def test_placeholder_churn_and_bundled_defaults(tmp_path):
    """Without counters every VM gets 2 % of its data in use a day, flat; link, replication and objectives are
    drsim's defaults (upload and download placeholders aside)."""
    path = write_csv(tmp_path / "inv.csv", [row(file_size=50 * GIB), row(path=r"D:\VMs\vm1-data.vhdx", size=GIB * 200,
                                                                          file_size=25 * GIB)])
    made = scaffold_scenario(read_inventory(path), tmp_path / "s.yaml")
    s = scenario_of(made.text, tmp_path / "s.yaml")
    vm = s.vm("vm1")
    assert vm.churn.rate == pytest.approx(PLACEHOLDER_DAILY * 75 * GIB / 86400, rel=0.01)
    assert vm.churn.profile is None and made.placeholder == ["vm1"] and made.traced == []
    assert s.link.upload == 20e6 / 8 and s.link.download == 100e6 / 8
    for name in ("efficiency", "compression"):
        assert getattr(s.link, name) == Link.model_fields[name].default
    assert s.replication.model_dump() == Replication().model_dump()
    assert s.objectives.model_dump() == Objectives().model_dump()
    assert s.duration == 30 * 86400 and s.start is None and s.name == "inv"
    assert "EDIT" in made.text


@pytest.mark.parametrize("name", ["2019", "on", "yes", "null", "a: b", "O'Brien", "#1 SQL", "-x", " lead", "名前",
                                  "SQL (alt) [1]", "x, y", "tab\there", 'say "hi"', "@home", "%x", "*star", "&a"])
def test_names_are_kept_as_written(tmp_path, name):
    path = write_csv(tmp_path / "inv.csv", [row(vm=name, host=f"H-{name}")])
    made = scaffold_scenario(read_inventory(path), tmp_path / "s.yaml")
    s = scenario_of(made.text, tmp_path / "s.yaml")
    assert s.site.hosts[0].name == f"H-{name}" and s.site.hosts[0].vms[0].name == name
    assert yaml.safe_load(yaml_scalar(name)) == name


@pytest.mark.parametrize("encoding,bom,sep,first", [
    ("utf-16-le", codecs.BOM_UTF16_LE, ",", ""),                                 # Export-Csv -Encoding Unicode
    ("utf-8", b"", ";", ""),                                                     # Export-Csv -UseCulture (de-DE)
    ("utf-8", codecs.BOM_UTF8, ",", '#TYPE Selected.Microsoft.HyperV.PowerShell.VirtualMachine'),  # without -NoType
    ("cp1252", b"", "\t", ""),
])
def test_encodings_and_separators(tmp_path, encoding, bom, sep, first):
    path = write_csv(tmp_path / "inv.csv", [row(vm="Büro-01")], sep=sep, encoding=encoding, bom=bom, first=first)
    inv = read_inventory(path)
    assert inv.vms()[0].name == "Büro-01" and inv.vms()[0].disks[0].size == 127 * GIB


def test_decimal_comma_and_scientific_sizes(tmp_path):
    """A spreadsheet in a comma locale: '1,36365E+11' reads as 136,365,000,000 bytes, with a note that it lost
    digits."""
    path = write_csv(tmp_path / "inv.csv", [row(size="1,36365E+11", file_size="4,2E+10")], sep=";")
    inv = read_inventory(path)
    disk = inv.vms()[0].disks[0]
    assert disk.size == 136_365_000_000 and disk.file_size == 42_000_000_000
    assert any("scientific notation" in n for n in inv.notes)


def test_missing_columns_are_named(tmp_path):
    path = write_csv(tmp_path / "inv.csv", [row()[:2] + row()[5:7]],
                     columns=["VMName", "VMId", "Generation", "GuestOS"])
    with pytest.raises(InventoryError) as exc:
        read_inventory(path)
    text = str(exc.value)
    assert "line 1: missing columns ComputerName, State, Path, Size, FileSize" in text
    assert "the header has: VMName, VMId, Generation, GuestOS" in text and "PowerShell" in text


def test_other_header_spellings_are_accepted(tmp_path):
    columns = ["Name", "Host", "state", "generation", "OSName", "Path", "Size", "File Size"]
    path = write_csv(tmp_path / "inv.csv", [["vm1", "HV01", "Off", "1", "", r"C:\a.vhdx", str(GIB), str(GIB // 2)]],
                     columns=columns)
    vm = read_inventory(path).vms()[0]
    assert (vm.name, vm.host, vm.state, vm.generation, vm.disks[0].file_size) == ("vm1", "HV01", "Off", "1", GIB // 2)


@pytest.mark.parametrize("rows,message", [
    ([row(), row(host="HV02")], "line 3: a second VM named 'vm1' (on host 'HV02'; the first, on 'HV01', is on line 2)"),
    ([row(size="")], "line 2: VM 'vm1', disk D:\\VMs\\vm1.vhdx: the provisioned Size must be a number of bytes "
                     "above 0"),
    ([row(size="127 GB")], "line 2: VM 'vm1': Size '127 GB' is not a number of bytes"),
    ([row(file_size="-1")], "FileSize must not be negative"),
    ([row(path="")], "line 2: VM 'vm1': the disk Path is empty"),
    ([row(vm="")], "line 2: the VMName is empty"),
    ([row(host=" ")], "line 2: VM 'vm1': the ComputerName (its host) is empty"),
    ([row(size="1,234.5")], "have a thousands separator"),
    ([], "no rows after the header"),
])
def test_bad_rows_are_refused_with_their_line(tmp_path, rows, message):
    path = write_csv(tmp_path / "inv.csv", rows)
    with pytest.raises(InventoryError) as exc:
        read_inventory(path)
    assert message in str(exc.value)
    assert str(exc.value).startswith(f"inventory {path}")


def test_same_name_with_different_ids_on_one_host_is_refused_but_one_id_is_one_vm(tmp_path):
    two_disks = [row(vm_id="a"), row(vm_id="a", path=r"D:\VMs\vm1-2.vhdx")]
    assert len(read_inventory(write_csv(tmp_path / "a.csv", two_disks)).vms()[0].disks) == 2
    with pytest.raises(InventoryError, match="a second VM named 'vm1'"):
        read_inventory(write_csv(tmp_path / "b.csv", [row(vm_id="a"), row(vm_id="b")]))


def test_notes_on_checkpoints_and_vendor_limits(tmp_path):
    rows = [row(vm="big", path=r"D:\big\os.vhdx", size=400 * GIB),                       # generation 2 OS disk
            row(vm="snap", path=r"D:\snap\os_1A2B.avhdx", file_size=GIB),
            row(vm="huge", path=r"D:\huge\os.vhdx", generation=1),
            row(vm="huge", path=r"D:\huge\data.vhdx", size=4096 * GIB, generation=1)]
    made = scaffold_scenario(read_inventory(write_csv(tmp_path / "inv.csv", rows)), tmp_path / "s.yaml")
    notes = "\n".join(made.notes)
    assert "big: D:\\big\\os.vhdx is 400 GiB: above the 300 GiB the service supports for an OS disk" in notes
    assert "snap: D:\\snap\\os_1A2B.avhdx is a checkpoint's differencing disk" in notes
    assert "huge: D:\\huge\\data.vhdx is 4,096 GiB: above the 4,095 GiB the service supports for a data disk" in notes
    s = scenario_of(made.text, tmp_path / "s.yaml")
    assert s.vm("snap").disks[0].copy_bytes == 127 * GIB  # used = size: the chain's data is unknown
    # the scenario says each VM's generation, so the model refuses what the service would (support matrix)
    assert (s.vm("big").generation, s.vm("huge").generation) == (2, 1)
    assert not s.vm("big").supported and not s.vm("huge").supported and s.vm("snap").supported


def test_unknown_host_os_gets_the_default_with_an_edit_mark(tmp_path):
    path = write_csv(tmp_path / "inv.csv", [row(host_os="Microsoft Azure Stack HCI")])
    made = scaffold_scenario(read_inventory(path), tmp_path / "s.yaml")
    assert "os: Windows Server 2016    # EDIT: 'Microsoft Azure Stack HCI' names no Windows Server version" in made.text


def test_counters_map_to_the_vms_whose_disks_they_name(tmp_path):
    made = scaffold_scenario(read_inventory(EXAMPLES / "site-inventory.csv"), EXAMPLES / "x.yaml",
                             logs=[read_counter_log(EXAMPLES / "site-counters.csv")])
    assert made.traced == ["FS01", "SQL01", "DC01"] and made.placeholder == ["ERP app 01"]
    s = scenario_of(made.text, EXAMPLES / "x.yaml")
    trace = s.vm("SQL01").churn.trace
    assert trace.format == "perfmon" and str(trace.file) == "site-counters.csv"
    assert trace.columns == [
        r"\\HV01\Hyper-V Virtual Storage Device(D:-Hyper-V-SQL01-Virtual Hard Disks-SQL01_OS.vhdx)\Write Bytes/sec",
        r"\\HV01\Hyper-V Virtual Storage Device(E:-Hyper-V-SQL01-SQL01_Data.vhdx)\Write Bytes/sec",
        r"\\HV01\Hyper-V Virtual Storage Device(E:-Hyper-V-SQL01-SQL01_Log.vhdx)\Write Bytes/sec"]
    assert s.start.isoformat() == "2026-03-02T00:00:00"
    assert any("ERP app 01: no write counter" in n and "the VM is Off" in n for n in made.notes)


def test_a_counter_named_by_file_name_only_is_matched(tmp_path):
    from tests.test_perfmon import minutes, write_log

    column = r"\\HV01\Hyper-V Virtual Storage Device(vm1.vhdx)\Write Bytes/sec"
    log = write_log(tmp_path / "log.csv", minutes(10), {column: [100.0] * 10,
                                                         r"\\HV02\Hyper-V Virtual Storage Device(vm1.vhdx)\Write "
                                                         r"Bytes/sec": [5.0] * 10})
    made = scaffold_scenario(read_inventory(write_csv(tmp_path / "inv.csv", [row()])), tmp_path / "s.yaml",
                             logs=[read_counter_log(log)])
    assert scenario_of(made.text, tmp_path / "s.yaml").vm("vm1").churn.trace.columns == [column]


def test_one_counter_log_per_host(tmp_path):
    """Each VM replays the log that has its disks' counters; logs that start at different times are noted."""
    from datetime import datetime

    from tests.test_perfmon import minutes, write_log

    a = r"\\HV01\Hyper-V Virtual Storage Device(D:-VMs-vm1.vhdx)\Write Bytes/sec"
    b = r"\\HV02\Hyper-V Virtual Storage Device(D:-VMs-vm2.vhdx)\Write Bytes/sec"
    logs = [read_counter_log(write_log(tmp_path / "hv01.csv", minutes(10), {a: [1.0] * 10})),
            read_counter_log(write_log(tmp_path / "hv02.csv", minutes(10, start=datetime(2026, 3, 2, 9)),
                                       {b: [2.0] * 10}))]
    inv = read_inventory(write_csv(tmp_path / "inv.csv", [row(), row(vm="vm2", host="HV02", path=r"D:\VMs\vm2.vhdx")]))
    made = scaffold_scenario(inv, tmp_path / "s.yaml", logs=logs)
    s = scenario_of(made.text, tmp_path / "s.yaml")
    assert str(s.vm("vm1").churn.trace.file) == "hv01.csv" and str(s.vm("vm2").churn.trace.file) == "hv02.csv"
    assert s.start.isoformat() == "2026-03-02T08:00:00"
    assert any("the counter logs start at different times (2026-03-02 08:00, 2026-03-02 09:00)" in n
               for n in made.notes)


def test_a_vm_whose_counters_cannot_be_replayed_keeps_the_placeholder(tmp_path):
    """A two-hour hole in the VM's counter: drsim init still writes a valid scenario, with the placeholder and a
    warning that says why."""
    from tests.test_perfmon import minutes, write_log

    column = r"\\HV01\Hyper-V Virtual Storage Device(D:-VMs-vm1.vhdx)\Write Bytes/sec"
    values: list[object] = [1.0] * 200
    values[10:140] = [None] * 130
    log = write_log(tmp_path / "log.csv", minutes(200), {column: values})
    made = scaffold_scenario(read_inventory(write_csv(tmp_path / "inv.csv", [row()])), tmp_path / "s.yaml",
                             logs=[read_counter_log(log)])
    assert made.placeholder == ["vm1"] and scenario_of(made.text, tmp_path / "s.yaml").vm("vm1").churn.rate
    assert any(n.startswith("vm1: its counters cannot be replayed as they are (counter log ") and "max_gap" in n
               for n in made.notes)
