"""The price sheet: what protection costs (licence, cloud storage, compute, egress, the uplink's tiers) and what
the business loses (downtime, lost work), as a validated :class:`PriceSheet`.

The bundled default (``prices.yaml`` beside this module) gives its date and the source of every figure; a file
given with ``--prices`` and a scenario's ``prices:`` section are merged over it, section by section
(:func:`load_price_sheet`). Money is in the sheet's ``currency``, a label: nothing is converted. A GB is
2^30 bytes, as the vendor bills storage and bandwidth (assumption).

Imports only :mod:`drsim.scenario` (field types, units, problems).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError

from drsim.scenario.fields import Rate, StrictModel
from drsim.scenario.problems import Problem, ScenarioError

__all__ = ["PriceSheet", "load_price_sheet", "DEFAULT_PRICES", "GB", "merge_prices", "prices_with_file"]

DEFAULT_PRICES = Path(__file__).with_name("prices.yaml")  #: the bundled default sheet
GB = float(2**30)  #: bytes in a billed GB (assumption: the vendor bills binary gigabytes)

Money = float


class Licence(StrictModel):
    per_vm_month: Money = Field(ge=0, description="per protected VM per month")
    free_days: int = Field(31, ge=0, description="days free at the start of each VM's protection")
    source: str


class Storage(StrictModel):
    replica_gb_month: Money = Field(ge=0, description="per GB-month of the replica disks' used size")
    recovery_points_gb_month: Money = Field(ge=0, description="per GB-month of changes kept over the retention")
    source: str


class Compute(StrictModel):
    per_hour: Money = Field(ge=0, description="per hour a VM runs in the cloud")
    vms: dict[str, Money] = Field(default_factory=dict, description="per hour, by VM name")
    source: str

    def rate(self, vm: str) -> float:
        return float(self.vms.get(vm, self.per_hour))


class Egress(StrictModel):
    per_gb: Money = Field(ge=0, description="per GB downloaded from the cloud")
    source: str


class UplinkTier(StrictModel):
    upload: Rate
    per_month: Money = Field(ge=0)


class Uplink(StrictModel):
    tiers: list[UplinkTier] = Field(default_factory=list)
    source: str

    def price(self, upload: float) -> float:
        """Monthly price of the cheapest tier of at least ``upload`` bytes/s (NaN when none is)."""
        fits = [t.per_month for t in self.tiers if t.upload >= upload * (1 - 1e-9)]
        return min(fits) if fits else float("nan")


class Drills(StrictModel):
    per_year: int = Field(ge=0)
    days: float = Field(ge=0)
    source: str


class Business(StrictModel):
    downtime_per_hour: Money = Field(0.0, ge=0, description="per VM per hour of downtime")
    vms: dict[str, Money] = Field(default_factory=dict, description="downtime per hour, by VM name")
    lost_data_per_hour: Money = Field(0.0, ge=0, description="per hour of lost work, per VM")
    source: str

    def downtime_rate(self, vm: str) -> float:
        return float(self.vms.get(vm, self.downtime_per_hour))


class PriceSheet(StrictModel):
    date: date
    currency: str = Field(min_length=1)
    licence: Licence
    storage: Storage
    compute: Compute
    egress: Egress
    uplink: Uplink
    drills: Drills
    business: Business


def merge_prices(base: Mapping[str, Any], overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """``base`` with ``overrides`` merged in, mapping by mapping (a list or value replaces)."""
    out = copy.deepcopy(dict(base))
    for key, value in (overrides or {}).items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge_prices(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _read(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ScenarioError([Problem(loc=(), message=f"cannot read the price sheet: {exc.strerror or exc}")],
                            str(path)) from None
    except yaml.YAMLError as exc:
        raise ScenarioError([Problem(loc=(), message=f"not YAML: {exc}")], str(path)) from None
    if not isinstance(data, dict):
        raise ScenarioError([Problem(loc=(), message="a price sheet is a mapping (date, currency, licence, ...)")],
                            str(path))
    return data


def load_price_sheet(path: str | Path | None = None, overrides: Mapping[str, Any] | None = None,
                     source: str = "prices") -> PriceSheet:
    """The bundled sheet, with the file ``path`` (whole or partial) and then ``overrides`` (a scenario's
    ``prices:`` section) merged over it. Raises :class:`ScenarioError` naming the place of a bad value."""
    data = _read(DEFAULT_PRICES)
    where = source
    if path is not None:
        data = merge_prices(data, _read(Path(path)))
        where = str(path)
    data = merge_prices(data, overrides)
    try:
        return PriceSheet.model_validate(data)
    except ValidationError as exc:
        problems = [Problem(loc=tuple(e["loc"]), message=e["msg"]) for e in exc.errors()]
        raise ScenarioError(problems, where) from None


def prices_with_file(path: str | Path, section: Mapping[str, Any] | None) -> dict[str, Any]:
    """A scenario's ``prices:`` section with the price file ``path`` merged under it (the file first, the section
    over it, as :func:`load_price_sheet` merges them): what ``drsim sweep --prices FILE`` records in the
    scenario, so that every point and a resume price alike. Raises :class:`ScenarioError` located in the file
    when the merged sheet is not valid."""
    load_price_sheet(path, section)  # validates, naming the file
    return merge_prices(_read(Path(path)), section)
