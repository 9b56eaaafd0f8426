#!/usr/bin/env python3
"""Strict checks of mock-dcgm scrapes against the Prometheus text format 0.0.4 and against real
dcgm-exporter output.

  check_exposition.py check --data DIR --host-label hostname|Hostname [--require-xid] [--live] [--k8s] FILE...
      every FILE must parse (prometheus_client and a line grammar), have HELP and TYPE once per
      family before its samples, use dcgm-exporter's names, types, help texts, label names in
      dcgm-exporter's order and number formats (compared with the CSVs and real scrapes in DIR).
      --live (real GPUs through NVML): MIG devices carry GPU_I_PROFILE and GPU_I_ID after
      modelName, as dcgm-exporter writes them, and a default field the GPUs do not have may be
      missing.
      --k8s (mock-dcgm --k8s): every sample carries dcgm-exporter's pod mapping labels
      container, namespace and pod after the others (before XID's err_code and err_msg, as
      dcgm-exporter's template puts a GPU's labels before a field's attributes).
  check_exposition.py get FILE METRIC GPU
      prints the value of METRIC for gpu="GPU", or "absent".
  check_exposition.py labels FILE METRIC GPU
      prints the labels of that sample as JSON, or "absent".
Exit status 0 when everything holds, 1 otherwise (each failure printed).
"""
import glob
import json
import os
import re
import sys

from prometheus_client.parser import text_string_to_metric_families

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\\\|\\"|\\n)*"'
SAMPLE = re.compile(r"^(" + NAME + r")(\{(?:" + LABEL + r"(?:," + LABEL + r")*)?\})? (\S+)$")
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\\\|\\"|\\n)*)"')
HELP = re.compile(r"^# HELP (" + NAME + r")(?: (.*))?$")
TYPE = re.compile(r"^# TYPE (" + NAME + r") (counter|gauge|histogram|summary|untyped)$")
FLOAT = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$|^[+-]?Inf$|^NaN$")

failures = []


def fail(msg):
    failures.append(msg)


def read_csv_fields(path):
    """DCGM field -> (type, help), including the commented-out (opt-in) lines."""
    out = {}
    for line in open(path, encoding="utf-8"):
        line = line.strip()
        if line.startswith("#"):
            line = line.lstrip("#").strip()
        if not line.startswith("DCGM_"):
            continue
        parts = [p.strip() for p in line.split(",", 2)]
        if len(parts) == 3:
            out[parts[0]] = (parts[1], parts[2])
    return out


def default_fields(path):
    """The fields dcgm-exporter exports by default (uncommented, not labels)."""
    out = []
    for line in open(path, encoding="utf-8"):
        line = line.strip()
        if line.startswith("DCGM_"):
            name, typ = [p.strip() for p in line.split(",")[:2]]
            if typ != "label":
                out.append(name)
    return out


def parse_lines(text, where):
    """Line grammar and family order. Returns {family: {"type","help","samples":[(labels, value)]}}."""
    fams = {}
    order = []
    cur = None
    state = "help"
    if text and not text.endswith("\n"):
        fail(f"{where}: does not end with a newline")
    for n, line in enumerate(text.split("\n")[:-1], 1):
        m = HELP.match(line)
        if m:
            if m.group(1) in fams:
                fail(f"{where}:{n}: second HELP for {m.group(1)}")
            cur = m.group(1)
            fams[cur] = {"help": m.group(2) or "", "type": None, "samples": []}
            order.append(cur)
            state = "type"
            continue
        m = TYPE.match(line)
        if m:
            if state != "type" or m.group(1) != cur:
                fail(f"{where}:{n}: TYPE of {m.group(1)} not right after its HELP")
            elif fams[cur]["type"] is not None:
                fail(f"{where}:{n}: second TYPE for {cur}")
            else:
                fams[cur]["type"] = m.group(2)
            state = "samples"
            continue
        m = SAMPLE.match(line)
        if not m:
            fail(f"{where}:{n}: not a valid exposition line: {line[:120]!r}")
            continue
        name, labels, value = m.group(1), m.group(2) or "", m.group(3)
        if state != "samples" or name != cur:
            fail(f"{where}:{n}: sample of {name} outside its family ({cur})")
            continue
        if not FLOAT.match(value):
            fail(f"{where}:{n}: value {value!r} is not a number")
        pairs = LABEL_RE.findall(labels)
        names = [k for k, _ in pairs]
        if len(set(names)) != len(names):
            fail(f"{where}:{n}: a label repeats: {names}")
        fams[cur]["samples"].append((pairs, value))
    for f in order:
        if not fams[f]["samples"]:
            fail(f"{where}: family {f} has no samples (dcgm-exporter leaves such families out)")
    return fams


def real_families(data):
    out = {}
    for path in sorted(glob.glob(os.path.join(data, "*.prom")) +
                       glob.glob(os.path.join(data, "*.txt"))):
        text = open(path, encoding="utf-8").read()
        # The README samples quote the shell command above the output: keep only exposition
        # lines (comments, samples, blanks) of the reference files.
        def exposition(l):
            if not l.strip() or l.startswith("#"):
                return True
            m = SAMPLE.match(l)
            try:
                return bool(m) and float(m.group(m.lastindex)) is not None
            except ValueError:
                return False
        text = "\n".join(l for l in text.split("\n") if exposition(l))
        cur_help = {}
        for line in text.split("\n"):
            m = HELP.match(line)
            if m:
                cur_help[m.group(1)] = m.group(2) or ""
        for fam in text_string_to_metric_families(text):
            entry = out.setdefault(fam.name, {"type": fam.type, "files": set(), "labels": None,
                                              "help": None, "int": None})
            entry["files"].add(os.path.basename(path))
            if "kops" in path:  # the real, current, full scrape
                entry["help"] = cur_help.get(fam.name)
            if fam.type != entry["type"]:
                entry["type"] = fam.type
        for line in text.split("\n"):
            m = SAMPLE.match(line)
            if m and m.group(1) in out and m.group(2) and "kops" in path:
                out[m.group(1)]["labels"] = [k for k, _ in LABEL_RE.findall(m.group(2))]
                out[m.group(1)]["int"] = "." not in m.group(3)
    return out


def check(args):
    data = None
    host = "hostname"
    require_xid = False
    live = False
    k8s = False
    files = []
    it = iter(args)
    for a in it:
        if a == "--data":
            data = next(it)
        elif a == "--host-label":
            host = next(it)
        elif a == "--require-xid":
            require_xid = True
        elif a == "--live":
            live = True
        elif a == "--k8s":
            k8s = True
        else:
            files.append(a)
    if not data or not files:
        sys.exit("usage: check_exposition.py check --data DIR [--host-label L] FILE...")
    csv = read_csv_fields(os.path.join(data, "default-counters.csv"))
    csv.update({k: v for k, v in read_csv_fields(os.path.join(data, "dcp-metrics-included.csv")).items()
                if k not in csv})
    defaults = default_fields(os.path.join(data, "default-counters.csv"))
    real = real_families(data)
    kops_labels = real["DCGM_FI_DEV_SM_CLOCK"]["labels"]
    want_labels = [host if k == "Hostname" else k for k in kops_labels]
    if k8s:
        want_labels += ["container", "namespace", "pod"]
    # fields outside both CSVs: the opt-in health fields dcgm-exporter knows (types from DCGM's
    # field list; the Datadog fixture confirms the clock-event and slowdown ones)
    extra = {"DCGM_FI_DEV_ROW_REMAP_PENDING": "gauge", "DCGM_FI_DEV_CLOCKS_EVENT_REASONS": "gauge",
             "DCGM_FI_DEV_SLOWDOWN_TEMP": "gauge", "DCGM_FI_DEV_SHUTDOWN_TEMP": "gauge",
             "DCGM_FI_DEV_GPU_MAX_OP_TEMP": "gauge", "DCGM_FI_DEV_POWER_MGMT_LIMIT": "gauge",
             "DCGM_FI_DEV_ENFORCED_POWER_LIMIT": "gauge"}
    for path in files:
        where = os.path.basename(path)
        text = open(path, encoding="utf-8").read()
        try:
            parsed = {f.name: f for f in text_string_to_metric_families(text)}
        except Exception as e:  # the strict parser refused it
            fail(f"{where}: prometheus_client cannot parse it: {e}")
            continue
        fams = parse_lines(text, where)
        if set(parsed) != set(fams):
            fail(f"{where}: prometheus_client sees families {sorted(set(parsed) ^ set(fams))} differently")
        for name, fam in fams.items():
            if not name.startswith("DCGM_FI_"):
                fail(f"{where}: {name} is not a DCGM field")
            if name in csv:
                if fam["type"] != csv[name][0]:
                    fail(f"{where}: {name} is a {fam['type']}, dcgm-exporter's CSV says {csv[name][0]}")
            elif name in extra:
                if fam["type"] != extra[name]:
                    fail(f"{where}: {name} is a {fam['type']}, expected {extra[name]}")
            else:
                fail(f"{where}: {name} is in neither dcgm-exporter CSV nor the opt-in list")
            if name in real:
                r = real[name]
                if r["type"] != fam["type"]:
                    fail(f"{where}: {name} is a {fam['type']}; real scrapes ({', '.join(sorted(r['files']))}) say {r['type']}")
                if r["help"] is not None and r["help"] != fam["help"]:
                    fail(f"{where}: HELP of {name} is {fam['help']!r}, real: {r['help']!r}")
            if parsed.get(name) is not None and parsed[name].type != fam["type"]:
                fail(f"{where}: prometheus_client reads {name} as {parsed[name].type}")
            for pairs, value in fam["samples"]:
                names = [k for k, _ in pairs]
                want = want_labels + (["err_code", "err_msg"] if name == "DCGM_FI_DEV_XID_ERRORS" else [])
                if live and "GPU_I_ID" in names:
                    at = want.index("modelName") + 1
                    want = want[:at] + ["GPU_I_PROFILE", "GPU_I_ID"] + want[at:]
                if names != want:
                    fail(f"{where}: {name} labels {names}, dcgm-exporter writes {want}")
                    break
                if name in real and real[name]["int"] is not None and ("." not in value) != real[name]["int"]:
                    fail(f"{where}: {name} value {value} is formatted unlike dcgm-exporter's")
                    break
                if name == "DCGM_FI_DEV_XID_ERRORS" and dict(pairs).get("err_code") != value:
                    fail(f"{where}: XID {value} with err_code {dict(pairs).get('err_code')}")
            gpus = [(dict(p).get("gpu"), dict(p).get("GPU_I_ID")) for p, _ in fam["samples"]]
            if len(set(gpus)) != len(gpus):
                fail(f"{where}: {name} repeats a GPU")
        for d in defaults:
            if d == "DCGM_FI_DEV_XID_ERRORS" and not require_xid:
                continue  # blank until a GPU reports an XID
            if d not in fams and fams and not live:
                fail(f"{where}: the default field {d} is missing")
    for f in failures[:40]:
        print("FAIL:", f)
    if len(failures) > 40:
        print(f"... and {len(failures) - 40} more")
    sys.stdout.flush()
    return 1 if failures else 0


def sample(path, metric, gpu):
    for fam in text_string_to_metric_families(open(path, encoding="utf-8").read()):
        if fam.name == metric:
            for s in fam.samples:
                if s.labels.get("gpu") == gpu:
                    return s
    return None


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    cmd = sys.argv[1]
    if cmd == "check":
        sys.exit(check(sys.argv[2:]))
    if cmd in ("get", "labels"):
        s = sample(sys.argv[2], sys.argv[3], sys.argv[4])
        if s is None:
            print("absent")
        elif cmd == "get":
            v = s.value
            print(int(v) if float(v).is_integer() else v)
        else:
            print(json.dumps(s.labels, sort_keys=True))
        return
    sys.exit(__doc__)


if __name__ == "__main__":
    main()
