#!/usr/bin/env python3
"""The baseline of bench/exporter.sh: a Python prometheus_client exporter serving the metric
families of a saved mock-dcgm scrape, re-rendered on every request as a Python exporter does.

  python_baseline.py SCRAPE_FILE PORT
"""
import sys
import time

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.parser import text_string_to_metric_families


class Replay:
    def __init__(self, text):
        self.families = list(text_string_to_metric_families(text))

    def collect(self):
        return iter(self.families)


def main():
    text = open(sys.argv[1], encoding="utf-8").read()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(Replay(text))
    start_http_server(int(sys.argv[2]), addr="127.0.0.1", registry=registry)
    print("ready", flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
