"""Time the first (uncached) load of the bundled NAS-Bench-201 tables and a lookup.

    PYTHONPATH=src python benchmarks/nb201_table_load.py

Prints wall times; not a test (times depend on the machine and its load).
"""

from __future__ import annotations

import time


def main() -> None:
    t0 = time.perf_counter()
    from mimdarts import nasbench201 as nb  # imports torch through mimdarts.spaces
    t1 = time.perf_counter()
    table = nb.load_table()
    t2 = time.perf_counter()
    proxy = nb.load_table(proxy=True)
    t3 = time.perf_counter()
    cell = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    n = 10_000
    for _ in range(n):
        nb.lookup(cell)
    t4 = time.perf_counter()
    nb.top(10, "cifar100_test")
    t5 = time.perf_counter()
    print(f"import mimdarts.nasbench201:      {t1 - t0:.3f} s")
    print(f"load 200-epoch table ({len(table.rows)} rows): {t2 - t1:.3f} s")
    print(f"load 12-epoch proxy table ({len(proxy.rows)} rows): {t3 - t2:.3f} s")
    print(f"lookup (parse + dict), cached:     {(t4 - t3) / n * 1e6:.1f} us")
    print(f"top(10, cifar100_test):            {t5 - t4:.3f} s")


if __name__ == "__main__":
    main()
