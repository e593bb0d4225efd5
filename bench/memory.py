"""bench/memory: proportional memory (PSS) of the lab and everything it started while scenario
t1-01 runs under load: `sdlab start` and its service, PostgreSQL (all backends), and the
`sdlab load` process. PSS splits PostgreSQL's shared buffers among its processes instead of
counting them once per backend (which RSS would). Sampled every 0.5 s; the peak is reported."""

import subprocess
import time

import labbench as lb

TARGET_MB = 300


def main():
    home = lb.fresh_home("memory")
    proc, _, _, _ = lb.start(home)
    load = subprocess.Popen([lb.SDLAB, "load", "t1-01", "--duration", "20s"], env=lb.env_for(home),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak, peak_parts = 0, {}
    while load.poll() is None:
        parts = {
            "sdlab start + service": sum(lb.pss_kib(p) for p in lb.descendants(proc.pid)),
            "PostgreSQL": sum(lb.pss_kib(p) for p in lb.postmaster_tree(home)),
            "sdlab load": sum(lb.pss_kib(p) for p in lb.descendants(load.pid)),
        }
        total = sum(parts.values())
        if total > peak:
            peak, peak_parts = total, parts
        time.sleep(0.5)
    lb.stop(proc)
    rows = ["| process | peak PSS MB |", "|---|---:|"]
    for name, kib in peak_parts.items():
        rows.append(f"| {name} | {kib / 1024:.0f} |")
    rows.append(f"| **total** | **{peak / 1024:.0f}** |")
    rows.append(f"| total ÷ target ({TARGET_MB} MB) | {peak / 1024 / TARGET_MB:.2f} |")
    body = "\n".join(rows)
    print(body)
    lb.append_results("memory (scenario t1-01 under its explore load)", body)
    subprocess.run(["rm", "-rf", home])


if __name__ == "__main__":
    main()
