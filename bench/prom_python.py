#!/usr/bin/env python3
"""Times prometheus_client's text parser on one file, the same input as prom_bench.

Usage: prom_python.py FILE [MIN_SECONDS]. Prints one key=value line like prom_bench.
Rates are per CPU second of this process, of the best pass and on average, as in
prom_bench.
"""
import sys
import time

from prometheus_client.parser import text_string_to_metric_families


def main():
    path = sys.argv[1]
    min_s = float(sys.argv[2]) if len(sys.argv) > 2 else 2.0
    with open(path, encoding="utf-8") as f:
        text = f.read()
    nbytes = len(text.encode("utf-8"))
    iters = samples = 0
    best = float("inf")
    t0 = time.process_time()
    while True:
        t1 = time.process_time()
        n = 0
        for fam in text_string_to_metric_families(text):
            for s in fam.samples:
                n += 1 if s.value is not None else 0
        best = min(best, time.process_time() - t1)
        samples += n
        iters += 1
        el = time.process_time() - t0
        if el >= min_s and iters >= 3:
            break
    print(f"what=python_prometheus_client bytes={nbytes} samples={n} iterations={iters} "
          f"seconds={el:.3f} MBps={nbytes / best / 1e6:.2f} samples_per_s={n / best:.0f} "
          f"mean_MBps={nbytes * iters / el / 1e6:.2f} mean_samples_per_s={samples / el:.0f}")

if __name__ == "__main__":
    main()
