"""Helpers shared by bench/startup.py and bench/memory.py: run `sdlab` with a lab home,
wait for lines, sum memory of a process tree, append to bench/RESULTS.md."""

import os
import re
import signal
import subprocess
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)
SDLAB = os.path.join(REPO, "target", "release", "sdlab")
SERVICES_TARGET = os.path.join(REPO, "target", "sdlab-services")


def env_for(home):
    env = dict(os.environ)
    env.update(SDLAB_HOME=home, SDLAB_ROOT=REPO, SDLAB_TARGET_DIR=SERVICES_TARGET)
    return env


def fresh_home(tag):
    import tempfile
    home = tempfile.mkdtemp(prefix=f"sdlab-bench-{tag}-", dir="/tmp")
    os.chmod(home, 0o755)  # PostgreSQL runs as nobody when we are root
    return home


def start(home, scenario="t1-01", timeout=600, env=None):
    """`sdlab start`; returns (process, url, seconds to `ready`, stderr lines so far)."""
    began = time.monotonic()
    proc = subprocess.Popen([SDLAB, "start", scenario], env=env or env_for(home), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    err_lines = []
    import threading
    threading.Thread(target=lambda: [err_lines.append(l.rstrip()) for l in proc.stderr], daemon=True).start()
    deadline = began + timeout
    for line in proc.stdout:
        if line.startswith("ready "):
            return proc, line.split()[2], time.monotonic() - began, err_lines
        if time.monotonic() > deadline:
            break
    proc.kill()
    raise SystemExit(f"sdlab start did not become ready; stderr:\n" + "\n".join(err_lines[-30:]))


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()


def descendants(pid):
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry))
            except (OSError, ValueError, IndexError):
                pass
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def postmaster_tree(home):
    """PostgreSQL processes of a lab home (the postmaster is detached by pg_ctl)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if home in cmd and "postgres" in cmd:
                pids.extend(descendants(int(entry)))
    return pids


def pss_kib(pid):
    """Proportional set size: shared pages (PostgreSQL's shared buffers) split among sharers."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def step_timings(err_lines):
    """`<step> ... (1.2 s)` style lines of sdlab start's progress, as printed."""
    return [l for l in err_lines if re.search(r"\d+(\.\d+)? ?(ms|s)\b", l)]


def machine():
    """`2 cores, 24 GiB, Debian GNU/Linux 12 (bookworm), <kernel>, commit <sha>`."""
    with open("/proc/meminfo") as f:
        mem_kib = next(int(l.split()[1]) for l in f if l.startswith("MemTotal:"))
    with open("/etc/os-release") as f:
        pretty = next((l.split("=", 1)[1].strip().strip('"') for l in f if l.startswith("PRETTY_NAME=")), "?")
    commit = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    return f"{os.cpu_count()} cores, {mem_kib / 1048576:.0f} GiB, {pretty}, {os.uname().release}, commit {commit}"


def append_results(title, body):
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    with open(os.path.join(BENCH, "RESULTS.md"), "a") as f:
        f.write(f"\n## {title} — {stamp}\n\nMachine: {machine()}\n\n{body}\n")
