"""bench/startup: time to `ready` for scenario t1-01, cold and warm, and the edit loop.

- cold: a fresh lab home (new PostgreSQL cluster, initdb, seed 1M posts, fresh workspace),
  with the service's dependencies and the kit already compiled in the shared target dir (as
  after the first build of any scenario: a priming start in another home makes sure), and a
  service that was never compiled (its main.rs gets a unique comment), so the service itself
  is compiled: what a learner waits for when opening a scenario for the first time.
- warm: the same home again (cluster and seed cached, code up to date).
- first start after install: what a new user meets right after ./install.sh. A fresh lab home
  with its own, empty target dir; `sdlab prebuild` (install.sh's last step, every scenario,
  timed as its own row), then each scenario's first `sdlab start` to `ready` (its database
  initialised and seeded, nothing left to compile). Target: every one within 30 s.
- edit loop: through `sdlab serve`'s API: save a one-line edit of the service, restart
  (rebuild + start), until the new instance answers its first /metrics scrape.
"""

import json
import os
import re
import shutil
import subprocess
import time
import urllib.request

import labbench as lb

TARGETS = {"cold": 15.0, "warm": 3.0, "edit": 5.0, "first": 30.0}
# Every scenario of the sources (folders `t<track>-<nn>-<slug>`).
SCENARIOS = sorted("-".join(d.split("-")[:2]) for d in os.listdir(os.path.join(lb.REPO, "scenarios"))
                   if re.match(r"t\d+-\d+-", d))


def api(base, token, method, path, body=None, content_type="application/json"):
    req = urllib.request.Request(base + path, method=method, data=None if body is None else body.encode(),
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": content_type})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read() or b"null")


def wait_running(base, token, limit=600):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        s = api(base, token, "GET", "/api/scenarios/t1-01/status")
        if s["state"] == "running":
            return s
        if s["state"] == "failed":
            raise SystemExit(f"start failed: {s.get('error')}\n{s.get('diagnostics') or ''}")
        time.sleep(0.05)
    raise SystemExit("lab did not become ready")


def edit_loop(home):
    proc = subprocess.Popen([lb.SDLAB, "serve"], env=lb.env_for(home), stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, text=True)
    try:
        line = proc.stdout.readline()
        m = re.search(r"(http://127\.0\.0\.1:\d+)/#token=(\S+)", line)
        if not m:
            raise SystemExit(f"unexpected serve output: {line!r}")
        base, token = m.group(1), m.group(2)
        api(base, token, "POST", "/api/scenarios/t1-01/start", "{}")
        wait_running(base, token)
        path = "/api/scenarios/t1-01/files/src/main.rs"
        text = api(base, token, "GET", path)["content"]
        edited = text + f"\n// edit loop benchmark {time.time()}\n"
        began = time.monotonic()
        api(base, token, "PUT", path, edited, "text/plain")
        api(base, token, "POST", "/api/scenarios/t1-01/restart", "{}")
        status = wait_running(base, token)
        url = status["url"]
        while True:
            try:
                with urllib.request.urlopen(url + "/metrics", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.02)
        took = time.monotonic() - began
        # Leave the service as it was.
        api(base, token, "PUT", path, text, "text/plain")
        api(base, token, "POST", "/api/scenarios/t1-01/stop", "{}")
        return took
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def never_compiled_service(home):
    """The learner's copy of t1-01's service, with a comment no earlier build has seen."""
    src = os.path.join(lb.REPO, "scenarios", "t1-01-diagnosing-failures", "service")
    dst = os.path.join(home, "work", "t1-01-diagnosing-failures", "service")
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("target"))
    with open(os.path.join(dst, "src", "main.rs"), "a") as f:
        f.write(f"\n// bench/startup.py cold start {time.time()}\n")


def after_install():
    """(seconds of `sdlab prebuild`, [(scenario, seconds of its first start)]) in a fresh home
    whose target dir starts empty, as after ./install.sh on a new machine."""
    home = lb.fresh_home("install")
    env = lb.env_for(home)
    env["SDLAB_TARGET_DIR"] = os.path.join(home, "target")
    began = time.monotonic()
    subprocess.run([lb.SDLAB, "prebuild"], env=env, check=True, stdin=subprocess.DEVNULL)
    prebuild = time.monotonic() - began
    firsts = []
    for scenario in SCENARIOS:
        proc, _, took, lines = lb.start(home, scenario, env=env)
        lb.stop(proc)
        firsts.append((scenario, took, lines))
    subprocess.run(["rm", "-rf", home])
    return prebuild, firsts


def main():
    # Priming: dependencies and the kit compiled, as after any earlier scenario.
    prime = lb.fresh_home("startup-prime")
    proc, _, _, _ = lb.start(prime)
    lb.stop(proc)
    subprocess.run(["rm", "-rf", prime])
    home = lb.fresh_home("startup")
    never_compiled_service(home)
    proc, _, cold, cold_lines = lb.start(home)
    lb.stop(proc)
    proc, _, warm, _ = lb.start(home)
    lb.stop(proc)
    edit = edit_loop(home)
    prebuild, firsts = after_install()
    rows = [("cold start to ready", cold, TARGETS["cold"]), ("warm start to ready", warm, TARGETS["warm"]),
            ("edit saved to first metrics of the new build", edit, TARGETS["edit"])]
    rows += [(f"first start after install, {sc} (from source)", took, TARGETS["first"]) for sc, took, _ in firsts]
    table = ["| measure | seconds | target s | measured ÷ target |", "|---|---:|---:|---:|"]
    for name, secs, target in rows:
        table.append(f"| {name} | {secs:.1f} | {target:.0f} | {secs / target:.2f} |")
    table.append(f"| warm ÷ cold (speed-up) | {cold / warm:.0f}x | | |")
    table.append(f"| install's `sdlab prebuild`, every scenario, empty target dir | {prebuild:.1f} | | |")
    slowest = max(firsts, key=lambda f: f[1])
    profile = "\n".join(f"    {l}" for l in lb.step_timings(cold_lines)) or "    (no step timings printed)"
    body = ("\n".join(table) + "\n\nWhere the cold start goes (sdlab start's steps; the database's "
            "and the code's run at the same time, so their times overlap):\n\n" + profile +
            f"\n\nThe slowest first start after install ({slowest[0]}):\n\n" +
            "\n".join(f"    {l}" for l in lb.step_timings(slowest[2])))
    print(body)
    lb.append_results("startup (scenario t1-01)", body)
    subprocess.run(["rm", "-rf", home])


if __name__ == "__main__":
    main()
