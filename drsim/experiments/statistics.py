"""Statistics over replications: :func:`aggregate` (n, mean, std, p50, p95, max and the 95 % confidence
half-width of the mean per group and metric) and the Student t quantile it uses, :func:`t_975`.

Imports nothing of drsim (numpy and pandas only).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["aggregate", "t_975", "KEY_COLUMNS", "STATS"]

KEY_COLUMNS = ("point", "replication", "seed")  #: the columns that name a run in the tidy table
STATS = ("n", "mean", "std", "p50", "p95", "max", "ci95")  #: the statistics of the aggregate table

# Two-sided 95 % Student t quantiles t(0.975, df) for df = 1..30 (to 7 decimals).
_T975 = (12.7062047, 4.3026527, 3.1824463, 2.7764451, 2.5705818, 2.4469119, 2.3646243, 2.3060041, 2.2621572,
         2.2281389, 2.2009852, 2.1788128, 2.1603687, 2.1447867, 2.1314495, 2.1199053, 2.1098156, 2.1009220,
         2.0930241, 2.0859634, 2.0796138, 2.0738731, 2.0686576, 2.0638986, 2.0595386, 2.0555294, 2.0518305,
         2.0484071, 2.0452296, 2.0422725)
_Z975 = 1.959963984540054


def t_975(df: float | np.ndarray) -> np.ndarray:
    """Student t quantile t(0.975, df): exact (table) for df <= 30; above, the Cornish-Fisher expansion of the
    t quantile in powers of 1/df around the normal quantile (four terms, error below 1e-6). NaN for df < 1."""
    d = np.asarray(df, dtype=float)
    z = _Z975
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
    g4 = (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160
    with np.errstate(divide="ignore", invalid="ignore"):
        series = z + g1 / d + g2 / d**2 + g3 / d**3 + g4 / d**4
    table = np.asarray(_T975)
    small = np.clip(np.nan_to_num(d, nan=1.0), 1, 30).astype(int) - 1
    out = np.where(d <= 30, table[small], series)
    return np.where(d >= 1, out, np.nan)


def aggregate(tidy: pd.DataFrame, by: Sequence[str] = ("point", "vm"), exclude: Sequence[str] = ()) -> pd.DataFrame:
    """Statistics over replications: one row per group of ``by`` and metric (every numeric or yes/no column
    not in ``by``, ``exclude``, ``replication`` or ``seed``), in the order groups first appear in ``tidy``.

    Columns: ``by``..., ``metric``, ``n`` (values that are not NaN), ``mean``, ``std`` (sample), ``p50``,
    ``p95`` (linear interpolation between replications), ``max``, ``ci95`` = t(0.975, n - 1) * std / sqrt(n),
    the half-width of the 95 % confidence interval of the mean (NaN when n < 2).
    """
    by = list(by)
    skip = set(by) | set(exclude) | set(KEY_COLUMNS)
    metrics = [c for c in tidy.columns if c not in skip
               and (pd.api.types.is_bool_dtype(tidy[c]) or pd.api.types.is_numeric_dtype(tidy[c]))]
    columns = [*by, "metric", *STATS]
    if tidy.empty or not metrics:
        return pd.DataFrame(columns=columns)
    values = tidy[metrics].astype(float)
    keys = [tidy[c] for c in by]
    grouped = values.groupby(keys, sort=False, observed=True)
    counts = grouped.count()
    frames = {
        "n": counts,
        "mean": grouped.mean(),
        "std": grouped.std(ddof=1),
        "p50": grouped.quantile(0.5),
        "p95": grouped.quantile(0.95),
        "max": grouped.max(),
    }
    n_groups = len(counts)
    long = {name: frame.to_numpy().reshape(-1) for name, frame in frames.items()}  # row-major: group, metric
    index = counts.index.to_frame(index=False)
    out = index.loc[index.index.repeat(len(metrics))].reset_index(drop=True)
    out["metric"] = np.tile(np.asarray(metrics, dtype=object), n_groups)
    n = long["n"].astype(np.int64)
    out["n"] = n
    for name in ("mean", "std", "p50", "p95", "max"):
        out[name] = long[name].astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        half = t_975(n - 1) * out["std"].to_numpy() / np.sqrt(n)
    out["ci95"] = np.where(n >= 2, half, np.nan)
    return out[columns]
