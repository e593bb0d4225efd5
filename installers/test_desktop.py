"""Drives the installed desktop app for installers/test-deb.sh (run inside a network namespace
with only loopback): Xvfb, the app's window, a screenshot with a pixel check of the sidebar,
scenario t1-05 (PostgreSQL, Redis, two instances) started and checked with the solution applied through the app's own API, then
the window closed the way a window manager closes it, and no process of the app left behind.

Uses Debian's python3 with python3-xlib (for WM_DELETE_WINDOW) and ImageMagick's `import`.
"""

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

from Xlib import X, display as xdisplay, protocol

TITLE = "System Design Lab"


def log(msg):
    print(f"test-desktop: {msg}", flush=True)


def fail(msg, app_err=None):
    log(f"FAIL: {msg}")
    if app_err and os.path.exists(app_err):
        with open(app_err, errors="replace") as f:
            tail = f.read()[-4000:]
        log(f"the app's stderr (tail):\n{tail}")
    sys.exit(1)


def wait_for(what, timeout, probe, interval=0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(interval)
    return None


class Api:
    def __init__(self, base, token):
        self.base, self.token = base, token

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                text = resp.read().decode()
        except urllib.error.HTTPError as e:
            raise RuntimeError(f"{method} {path}: {e.code} {e.read().decode(errors='replace')}") from None
        return json.loads(text) if text else None

    def put_text(self, path, text):
        req = urllib.request.Request(self.base + path, data=text.encode(), method="PUT")
        req.add_header("Authorization", f"Bearer {self.token}")
        with urllib.request.urlopen(req, timeout=60) as resp:
            return json.loads(resp.read().decode())


def find_window(disp):
    """The app's top-level window, by its title."""
    root = disp.screen().root
    stack = [root]
    while stack:
        w = stack.pop()
        try:
            name = w.get_wm_name()
            if name == TITLE and w.get_attributes().map_state == X.IsViewable:
                return w
            stack.extend(w.query_tree().children)
        except Exception:  # a window can vanish while we walk the tree
            continue
    return None


def close_window(disp, window):
    """What a window manager does when the user clicks the close button."""
    wm_protocols = disp.intern_atom("WM_PROTOCOLS")
    wm_delete = disp.intern_atom("WM_DELETE_WINDOW")
    event = protocol.event.ClientMessage(
        window=window, client_type=wm_protocols, data=(32, [wm_delete, X.CurrentTime, 0, 0, 0])
    )
    window.send_event(event)
    disp.flush()


def screenshot(display_name, path):
    subprocess.run(["import", "-display", display_name, "-window", "root", path], check=True)


def sidebar_colors(path, geometry):
    """How many distinct colours the sidebar's list area has (1 when nothing rendered)."""
    out = subprocess.run(
        ["convert", path, "-crop", geometry, "+repage", "-format", "%k", "info:"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()
    return int(out)


# The scenario the installed app starts and checks offline: t1-05 has the most parts
# (PostgreSQL, Redis, two instances, the kit's Redis client built from vendored crates).
SCENARIO = "t1-05"


def lab_processes(home):
    """Processes whose command line names the app's data folder: PostgreSQL (-D <home>/pg/..),
    nginx (-p <home>/..), services (<home>/run/bin/..); and those working in it: redis-server
    rewrites its command line to "redis-server 127.0.0.1:PORT", but runs in <home>/run/redis-.."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            cwd = ""
        if (home in cmd or cwd.startswith(home)) and int(pid) != os.getpid():
            found.append(f"{pid}: {cmd.strip()}")
    return found


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--prefix", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--artifacts", required=True)
    args = ap.parse_args()

    # No network here: prove it before relying on it.
    try:
        urllib.request.urlopen("https://index.crates.io/config.json", timeout=5)
        fail("crates.io is reachable; this test must run without a network")
    except (urllib.error.URLError, OSError) as e:
        log(f"network unreachable, as intended ({e.__class__.__name__})")

    home = os.path.join(args.work, "home")
    cargo_home = os.path.join(args.work, "cargo-home")  # empty: no registry cache to fall back on
    os.makedirs(cargo_home)
    env = dict(os.environ)
    env.update(
        SDLAB_HOME=home,
        CARGO_HOME=cargo_home,
        PATH=os.path.expanduser("~/.cargo/bin") + ":" + env.get("PATH", ""),
        LANG="C",
    )
    for var in ("SDLAB_ROOT", "SDLAB_TARGET_DIR", "CARGO_TARGET_DIR", "CARGO"):
        env.pop(var, None)
    env.setdefault("RUSTUP_HOME", os.path.expanduser("~/.rustup"))

    disp_num = 90 + os.getpid() % 9
    display_name = f":{disp_num}"
    xvfb = subprocess.Popen(
        ["Xvfb", display_name, "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    app = None
    try:
        disp = wait_for("X display", 20, lambda: _try_display(display_name))
        if not disp:
            fail("Xvfb did not start")
        env["DISPLAY"] = display_name
        app_out, app_err = os.path.join(args.work, "app.out"), os.path.join(args.work, "app.err")
        exe = os.path.join(args.prefix, "usr/bin/sdlab-desktop")
        app = subprocess.Popen([exe], env=env, stdout=open(app_out, "w"), stderr=open(app_err, "w"))

        line = wait_for("serving line", 60, lambda: _serving(app_out))
        if not line:
            fail("the app did not print its address", app_err)
        base, token = line
        api = Api(base, token)
        log(f"app serving on {base}")

        window = wait_for("window", 60, lambda: find_window(disp))
        if not window:
            fail(f"no window titled {TITLE!r} appeared", app_err)
        geo = window.get_geometry()
        log(f"window {TITLE!r}: {geo.width}x{geo.height}")

        # The sidebar's scenario list (below the app name) must have rendered: more than a
        # flat background. Measured on the root window, at the window's position.
        pos = window.translate_coords(disp.screen().root, 0, 0)
        x0, y0 = -pos.x, -pos.y
        crop = f"190x160+{x0 + 5}+{y0 + 70}"
        shot = os.path.join(args.artifacts, "window.png")

        def rendered():
            screenshot(display_name, shot)
            return sidebar_colors(shot, crop) > 20

        if not wait_for("sidebar", 60, rendered, interval=2):
            fail(f"the sidebar did not render (screenshot: {shot}, area {crop})", app_err)
        log(f"sidebar rendered ({sidebar_colors(shot, crop)} colours in {crop}); screenshot {shot}")

        # What the sidebar lists comes from this API; the window asked for it with its token.
        scenarios = [s["id"] for s in api.call("GET", "/api/scenarios")]
        if SCENARIO not in scenarios:
            fail(f"{SCENARIO} not in the installed catalog: {scenarios}")
        doctor = api.call("GET", "/api/doctor")
        missing = [f["what"] for f in doctor if f["required"] and not f["ok"]]
        if missing:
            fail(f"the app reports missing requirements: {missing}")
        vendored = next(f for f in doctor if "offline" in f["what"])
        if not vendored["ok"]:
            fail(f"the installed app has no vendored crates: {vendored}")
        log(f"doctor: {vendored['detail']}")

        # The learner reveals the solution and applies it to their code.
        solution = api.call("POST", f"/api/scenarios/{SCENARIO}/solution", {"confirm": True})
        applied = 0
        for f in solution["files"]:
            if f["path"].endswith(".md"):
                continue
            api.put_text(f"/api/scenarios/{SCENARIO}/files/{f['path']}", f["content"])
            applied += 1
        log(f"solution applied ({applied} files)")

        api.call("POST", f"/api/scenarios/{SCENARIO}/start")
        started = time.monotonic()

        def up():
            s = api.call("GET", f"/api/scenarios/{SCENARIO}/status")
            if s["state"] == "failed":
                fail(f"start failed: {s.get('error')}\n{s.get('diagnostics') or ''}", app_err)
            return s if s["state"] == "running" else None

        if not wait_for("running", 1500, up, interval=3):
            fail(f"{SCENARIO} did not come up within 25 minutes", app_err)
        log(f"{SCENARIO} running after {time.monotonic() - started:.0f} s (built offline from vendored crates)")
        config = os.path.join(home, "work/.cargo/config.toml")
        with open(config) as f:
            if "share/sdlab/vendor" not in f.read():
                fail(f"{config} does not point at the package's vendored crates")

        api.call("POST", f"/api/scenarios/{SCENARIO}/check")

        def checked():
            j = api.call("GET", f"/api/scenarios/{SCENARIO}/job")
            return j if j and j["state"] in ("done", "failed") else None

        job = wait_for("check", 600, checked, interval=3)
        if not job:
            fail("the check did not finish within 10 minutes", app_err)
        if job["state"] != "done" or not job["check"]:
            fail(f"the check failed to run: {job.get('error')}", app_err)
        for line_ in job["check"]["lines"]:
            log(f"  {'PASS' if line_['passed'] else 'FAIL'}  {line_['label']}: {line_['measured']} (need {line_['required']})")
        if not job["check"]["passed"]:
            fail("the solution did not pass its check in the installed app", app_err)
        log("check PASS with the solution applied")
        time.sleep(2)
        screenshot(display_name, os.path.join(args.artifacts, "window-after-check.png"))

        before = lab_processes(home)
        if not any("postgres" in p for p in before) or not any("redis-server" in p for p in before):
            fail(f"expected the scenario's PostgreSQL and Redis to be running before the close: {before}")
        log(f"{len(before)} lab processes before closing the window")

        close_window(disp, window)
        try:
            code = app.wait(timeout=90)
        except subprocess.TimeoutExpired:
            fail("the app did not exit within 90 s of its window closing", app_err)
        log(f"window closed; the app exited with {code}")
        left = wait_for("no processes", 15, lambda: not lab_processes(home), interval=0.5)
        if not left:
            fail("processes left behind after the window closed:\n" + "\n".join(lab_processes(home)))
        if code != 0:
            fail(f"the app exited with {code}", app_err)
        log("no PostgreSQL, Redis, nginx or service process left")

        # Again, ended by SIGTERM (logout, `kill`) instead of the window: the same clean exit.
        app_out2 = os.path.join(args.work, "app2.out")
        app = subprocess.Popen([exe], env=env, stdout=open(app_out2, "w"), stderr=open(app_err, "w"))
        line = wait_for("serving line", 60, lambda: _serving(app_out2))
        if not line:
            fail("the app did not start a second time", app_err)
        api = Api(*line)
        api.call("POST", f"/api/scenarios/{SCENARIO}/start")
        if not wait_for("running", 300, up, interval=1):
            fail(f"{SCENARIO} did not come up on the second launch", app_err)
        if not any("postgres" in p for p in lab_processes(home)):
            fail("expected the scenario's PostgreSQL to run on the second launch")
        app.send_signal(signal.SIGTERM)
        try:
            code = app.wait(timeout=90)
        except subprocess.TimeoutExpired:
            fail("the app did not exit within 90 s of SIGTERM", app_err)
        if not wait_for("no processes", 15, lambda: not lab_processes(home), interval=0.5):
            fail("processes left behind after SIGTERM:\n" + "\n".join(lab_processes(home)))
        log(f"second launch: {SCENARIO} up again (warm), SIGTERM -> exit {code}, nothing left running")
    finally:
        if app and app.poll() is None:
            app.send_signal(signal.SIGTERM)
            try:
                app.wait(timeout=30)
            except subprocess.TimeoutExpired:
                app.kill()
        xvfb.terminate()
        for p in lab_processes(home):
            pid = int(p.split(":")[0])
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
    shutil.rmtree(home, ignore_errors=True)
    log("PASS")


def _try_display(name):
    try:
        return xdisplay.Display(name)
    except Exception:
        return None


def _serving(path):
    try:
        with open(path) as f:
            m = re.search(r"serving (http://127\.0\.0\.1:\d+)/#token=([0-9a-f]+)", f.read())
    except OSError:
        return None
    return (m.group(1), m.group(2)) if m else None


if __name__ == "__main__":
    main()
