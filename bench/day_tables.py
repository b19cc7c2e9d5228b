#!/usr/bin/env python3
"""Condensed tables of bench/day.sh runs for bench/day.md: one row per run at the end of the
day (errors against the truth), and RSS / state.json / retained topics over the day.

    python3 bench/day_tables.py target/day/<run dir> [more run dirs...]

Each argument is an $OUT of bench/day.sh (holding <stamping>-<mode>/ directories)."""
import json
import re
import sys
from pathlib import Path

ORDER = ["end-track", "end-group", "end-ignore", "start-track", "start-group", "start-ignore"]
runs = {}
for out in sys.argv[1:]:
    for d in Path(out).iterdir():
        if (d / "summary.md").exists() and (d / "hours.jsonl").exists():
            runs[d.name] = d


def rows(summary):
    table = {}
    for line in summary.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 8 and cells[4].endswith("%"):
            table[cells[0]] = cells
    return table


print("| run | control: real s, ×, live polls / expected | ASUS exact clients, worst error | ahead / backwards (every state) | churn MACs: published, exact, > 0.1 %, removed | Deco uplink | Deco sum reconciled (raw) | Deco clients reconciled, range | group total | today, ASUS exact worst |")
print("|---|---|---:|---:|---|---:|---:|---|---:|---:|")
for name in [n for n in ORDER if n in runs]:
    d = runs[name]
    s = (d / "summary.md").read_text()
    t = rows(s)
    ctl = re.search(r"(\d+) simulated s in (\d+) real s \(×([\d.]+)\); the bridge read the live counters (\d+) times \(every 30 simulated s: (\d+) expected", s)
    churn = re.search(r"Churn: (\d+) private MACs over the day, (\d+) published as devices; of those (\d+) exact to the byte, (\d+) off by more than 0.1 %, (\d+) ahead of the truth, worst ([-+\d.]+) %; (\d+) removed", s)
    viol = re.search(r"(\d+) ahead of the truth, (\d+) totals going backwards", s)
    exact = [v for k, v in t.items() if v[1] == "ASUS live"]
    worst = max(exact, key=lambda v: abs(float(v[4].split()[0])))
    worst_today = max(exact, key=lambda v: abs(float(v[7].split()[0])) if v[7] != "—" else 0)
    deco = [v for k, v in t.items() if v[1] == "Deco, reconciled" and not k.startswith("all")]
    errs = sorted(float(v[4].split()[0]) for v in deco)
    up = next((v for k, v in t.items() if "Uplink" in k), None)
    total = t.get("all Deco clients (sum)")
    group = t.get("Private-address devices (group)")
    print(
        f"| {name} | {ctl.group(2)} s, ×{ctl.group(3)}, {ctl.group(4)} / {ctl.group(5)} | {worst[4]} ({worst[0]}) | {viol.group(1)} / {viol.group(2)} "
        f"| {churn.group(2)} of {churn.group(1)}, {churn.group(3)}, {churn.group(4)}, {churn.group(7)} | {up[4] if up else '—'} "
        f"| {total[4] if total else '—'} ({total[5] if total else '—'}) | {errs[0]:+.1f} … {errs[-1]:+.1f} % | {group[4] if group else '—'} | {worst_today[7]} |"
    )

print()
print("| run | hour | RSS MB | peak MB | bridge CPU s | state.json kB | retained topics | HA configs | group members | live polls that hour | failed requests (total) |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for name in [n for n in ORDER if n in runs]:
    lines = [json.loads(l) for l in (runs[name] / "hours.jsonl").read_text().splitlines() if l.strip()]
    for j in lines:
        if j["hour"] in (1, 2, 4, 8, 12, 16, 20, 24):
            print(
                f"| {name} | {j['hour']} | {j['rss_kb'] / 1024:.1f} | {j['hwm_kb'] / 1024:.1f} | {j['cpu_s']:.0f} | {j['state_json'] / 1000:.0f} "
                f"| {j['retained']} | {j['configs']} | {j['group_members'] if j['group_members'] is not None else '—'} | {j['live_polls']} | {j.get('failures', '—')} |"
            )

print()
names = [n for n in ORDER if n in runs]
print("| Deco client: reconciled (raw estimate) | " + " | ".join(names) + " |")
print("|---|" + "---:|" * len(names))
tables = {n: rows((runs[n] / "summary.md").read_text()) for n in names}
clients = [k for k, v in tables[names[0]].items() if v[1] == "Deco, reconciled"] if names else []
for c in clients:
    cells = []
    for n in names:
        v = tables[n].get(c)
        cells.append(f"{v[4]} ({v[5]})" if v else "—")
    print(f"| {c} ({tables[names[0]][c][2]} MB true) | " + " | ".join(cells) + " |")
