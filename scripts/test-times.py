#!/usr/bin/env python3
"""Prints where the test command's time went: each stage, each scenario, and what 32
scenarios would cost at today's measured cost per scenario.

Inputs (all written by scripts/test.sh and the tests themselves; any may be missing):
  target/test-times.tsv           stage <TAB> seconds <TAB> status
  target/nextest/ci/junit.xml     nextest's per-test times (everything but the golden fixes)
  target/nextest/ci-golden/junit.xml  the golden fix tests, two scenarios at a time
  target/golden-times.tsv         scenario <TAB> fix <TAB> seconds (cli/tests/it/golden.rs)
"""

import collections
import pathlib
import re
import sys
import xml.etree.ElementTree as ET

TARGET = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "target")
PLANNED_SCENARIOS = 32
CI_LIMIT_MIN = 90
BUDGET_MIN = 45


def stages():
    path = TARGET / "test-times.tsv"
    rows = []
    if path.exists():
        for line in path.read_text().splitlines():
            parts = line.split("\t")
            if len(parts) >= 2:
                rows.append((parts[0], float(parts[1]), parts[2] if len(parts) > 2 else ""))
    return rows


JUNIT = [TARGET / "nextest" / p / "junit.xml" for p in ("ci", "ci-golden")]
GOLDEN_STAGE = "nextest golden fixes"


def cases():
    for path in JUNIT:
        if path.exists():
            yield from ET.parse(path).getroot().iter("testcase")


def tests():
    """(group, seconds) per test: a scenario id for scenario tests, else the test module."""
    out = []
    for case in cases():
        name = case.get("name", "")
        secs = float(case.get("time", "0") or 0)
        m = re.match(r"golden::every_fix_of_(t\d+_\d+)_", name) or re.match(
            r"scenario_(t\d+_\d+)::", name
        )
        if m:
            group = m.group(1).replace("_", "-")
        else:
            crate = case.get("classname", "").split("::")[0]
            module = name.split("::")[0] if "::" in name else "(top level)"
            group = f"{crate} {module}"
        out.append((group, secs, name))
    return out


def golden():
    path = TARGET / "golden-times.tsv"
    runs = collections.defaultdict(list)
    if path.exists():
        for line in path.read_text().splitlines():
            parts = line.split("\t")
            if len(parts) == 3:
                runs[parts[0]].append((parts[1], float(parts[2])))
    return runs


def table(title, rows, headers):
    print(f"\n{title}")
    widths = [max(len(str(r[i])) for r in rows + [headers]) for i in range(len(headers))]
    fmt = "  ".join(f"{{:{'<' if i == 0 else '>'}{w}}}" for i, w in enumerate(widths))
    print(fmt.format(*headers))
    print(fmt.format(*["-" * w for w in widths]))
    for r in rows:
        print(fmt.format(*r))


def main():
    st = stages()
    total = sum(s for _, s, _ in st)
    if st:
        table(
            "Test command: time per stage",
            [(n, f"{s:.0f} s", status) for n, s, status in st]
            + [("total", f"{total:.0f} s ({total / 60:.1f} min)", "")],
            ("stage", "time", "status"),
        )

    by_group = collections.defaultdict(float)
    counts = collections.Counter()
    for group, secs, _ in tests():
        by_group[group] += secs
        counts[group] += 1
    scenario_groups = sorted(g for g in by_group if re.match(r"t\d+-\d+$", g))
    runs = golden()
    if scenario_groups:
        rows = []
        for g in scenario_groups:
            # A name in parentheses is not a fix: the dashboard's queries (prometheus.rs).
            fixes = [r for r in runs.get(g, []) if not r[0].startswith("(")]
            extra = [r for r in runs.get(g, []) if r[0].startswith("(")]
            rows.append(
                (
                    g,
                    f"{by_group[g]:.0f} s",
                    str(counts[g]),
                    f"{len(fixes)} ({sum(s for _, s in fixes):.0f} s)" if fixes else "-",
                    f"{sum(s for _, s in extra):.0f} s" if extra else "-",
                )
            )
        table(
            "Scenarios: nextest time per scenario (golden fixes, dashboard, its own tests)",
            rows,
            ("scenario", "time", "tests", "fix checks (time)", "dashboard"),
        )
    others = sorted(((g, s) for g, s in by_group.items() if g not in scenario_groups),
                    key=lambda x: -x[1])
    if others:
        shown = [(g, s) for g, s in others if s >= 1.0][:12]
        rest = [(g, s) for g, s in others if (g, s) not in shown]
        rows = [(g, f"{s:.0f} s", str(counts[g])) for g, s in shown]
        if rest:
            rows.append((f"{len(rest)} more modules", f"{sum(s for _, s in rest):.0f} s",
                         str(sum(counts[g] for g, _ in rest))))
        table("Platform tests: nextest time per module", rows, ("module", "time", "tests"))

    if st and scenario_groups:
        # The golden fixes run two scenarios at a time: a scenario costs the run its share of
        # that stage's wall time plus its own (serial) tests.
        golden_wall = sum(secs for name, secs, _ in st if name.startswith(GOLDEN_STAGE))
        own = {g: 0.0 for g in scenario_groups}
        for group, secs, name in tests():
            if group in own and not name.startswith("golden::"):
                own[group] += secs
        n = len(scenario_groups)
        per = sorted(golden_wall / n + own[g] for g in scenario_groups)
        per_scenario = sum(per) / n
        fixed = total - golden_wall - sum(own.values())
        projected = fixed + per_scenario * PLANNED_SCENARIOS
        print(
            f"\nProjection: {fixed / 60:.1f} min that does not grow with scenarios + "
            f"{per_scenario:.0f} s per scenario (the golden stage's {golden_wall:.0f} s wall "
            f"time over {n} scenarios, two at a time, plus each one's own tests) x "
            f"{PLANNED_SCENARIOS} = {projected / 60:.1f} min for {PLANNED_SCENARIOS} scenarios "
            f"(CI limit {CI_LIMIT_MIN} min; today's run {total / 60:.1f} min against a budget "
            f"of {BUDGET_MIN})."
        )


def tally():
    """nextest's counts from its JUnit report, as the run's closing line."""
    cases_ = list(cases())
    if not cases_:
        return
    failed = sum(
        1 for c in cases_ if c.find("failure") is not None or c.find("error") is not None
    )
    skipped = sum(1 for c in cases_ if c.find("skipped") is not None)
    print(f"\nnextest: {len(cases_) - failed - skipped} passed, {failed} failed, {skipped} skipped")


if __name__ == "__main__":
    main()
    tally()
