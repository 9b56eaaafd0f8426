#!/usr/bin/env python3
"""Writes sample events (event-v1 JSON) for the sink tests as kcat -K'|' input: KEY|JSON.

gen_events.py --gpus G --samples N [--start EPOCH] [--step S] [--host H] [--bad]
Each (GPU, time) is unique: GPU-test-<g>, times start + i*step. --bad writes one event of every
kind the sink must reject instead, with a key naming the kind.
"""
import argparse, json, sys, time

def iso(t):
    ms = int(round((t - int(t)) * 1000))
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(int(t))) + ".%03dZ" % ms

def event(uuid, idx, t, host, seq):
    return {
        "schema_version": 1, "time": iso(t), "hostname": host,
        "cluster": "test", "datacenter": "dc1", "rack": None,
        "gpu": {"index": idx, "uuid": uuid, "model": "NVIDIA A100-SXM4-80GB",
                "pci_bus_id": "00000000:%02X:00.0" % idx, "device": "nvidia%d" % idx,
                "driver_version": "535.129.03", "mig_profile": None, "mig_instance": None},
        "metrics": {"gpu_temp": 50 + (seq % 40), "power_usage": 100.25 + seq % 300,
                    "gpu_util": seq % 101, "sm_clock": 1410, "memory_temp": None,
                    "total_energy": 9223372036854000000 + seq, "xid": 0,
                    "ecc_dbe_volatile": 0, "clocks_event_reasons": 0},
        "extra": {"DCGM_FI_DEV_VGPU_LICENSE_STATUS": 0},
    }

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gpus", type=int, default=4)
    ap.add_argument("--samples", type=int, default=10)
    ap.add_argument("--start", type=float, default=None)
    ap.add_argument("--step", type=float, default=10.0)
    ap.add_argument("--host", default="node-test")
    ap.add_argument("--prefix", default="GPU-test")
    ap.add_argument("--bad", action="store_true")
    a = ap.parse_args()
    start = a.start if a.start is not None else time.time() - a.samples * a.step
    out = sys.stdout
    if a.bad:
        good = event("GPU-bad", 0, start, a.host, 1)
        def variant(**kw):
            e = json.loads(json.dumps(good))
            for k, v in kw.items():
                path = k.split("__")
                o = e
                for p in path[:-1]:
                    o = o[p]
                if v is KeyError:
                    del o[path[-1]]
                else:
                    o[path[-1]] = v
            return json.dumps(e)
        cases = {
            "invalid-json": '{"schema_version": 1, "time": ',
            "schema-version": variant(schema_version=2),
            "missing-uuid": variant(gpu__uuid=KeyError),
            "missing-time": variant(time=KeyError),
            "negative-power": variant(metrics__power_usage=-5.0),
            "temperature": variant(metrics__gpu_temp=300),
            "utilization": variant(metrics__gpu_util=150),
            "not-a-number": variant(metrics__gpu_temp="hot"),
        }
        for k, v in cases.items():
            out.write("%s|%s\n" % (k, v))
        return
    for i in range(a.samples):
        for g in range(a.gpus):
            uuid = "%s-%04d" % (a.prefix, g)
            out.write("%s|%s\n" % (uuid, json.dumps(event(uuid, g, start + i * a.step, a.host, i))))

main()
