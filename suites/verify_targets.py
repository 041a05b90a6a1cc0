#!/usr/bin/env python3
"""Checks the solver- and test-backed targets in the shipped suites, independently of the generator.

Python 3 standard library only. Reads suites/<suite>/{train,test}.jsonl and
checks, for every task of these categories:

- function_synthesis, bug_fix: the target has `entry_point`, `solution` and
  3-5 `tests`; the solution defines the entry point and passes every test in
  a fresh namespace; a synthesis input is that function's signature and
  docstring; a bug-fix input is a function that fails the shown test, which is
  the first test of the target.
- route: `nodes` start with Depot; `distances` is square, symmetric, zero on
  the diagonal, positive elsewhere and obeys the triangle inequality; `tour`
  is a closed tour from Depot through every stop once, its length is
  `optimum`, and `optimum` equals a Held-Karp dynamic program's result
  (the generator uses brute force, so the two solvers check each other).
- load_planning: 5-9 parcels, each within the capacity; `plan` uses every
  parcel exactly once without overloading a vehicle, has `optimum` vehicles,
  and `optimum` equals a dynamic program over parcel subsets (the generator
  uses branch and bound).

Also checks that no test input appears in train, and that no test task can be
answered from memory of train: no test solution (compared with line ends
stripped) equals the solution of any train task of the suite, and no route or
load-planning instance (`distances`; `parcels` with `capacity_kg`) appears in
both splits. Exits 1 with the problems found, else prints a count per category.

Usage: python3 suites/verify_targets.py [--dir suites]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent


def run_asserts(source: str, tests: list) -> str | None:
    """None when `source` passes every assert, else what went wrong."""
    namespace: dict = {}
    try:
        exec(compile(source, "<solution>", "exec"), namespace)  # noqa: S102 - the suites' own code
    except Exception as e:
        return f"solution does not load: {e!r}"
    for test in tests:
        try:
            exec(compile(test, "<test>", "exec"), namespace)  # noqa: S102
        except Exception as e:
            return f"{test}: {type(e).__name__} {e}"
    return None


def check_code(task: dict) -> list:
    t, problems = task["target"], []
    if set(t) - {"entry_point", "solution", "tests", "setup"} or not {"entry_point", "solution", "tests"} <= set(t):
        return [f"target fields {sorted(t)}"]
    name, solution, tests = t["entry_point"], t["solution"], t["tests"]
    if not 3 <= len(tests) <= 5:
        problems.append(f"{len(tests)} tests")
    if not solution.startswith(f"def {name}("):
        problems.append("solution does not define the entry point first")
    if any(not test.startswith(f"assert {name}(") for test in tests):
        problems.append("a test does not call the entry point")
    if len(set(tests)) != len(tests):
        problems.append("repeated tests")
    if len({test.rsplit(" == ", 1)[-1] for test in tests}) < 2:
        problems.append("every test expects the same value (a constant function would pass)")
    failure = run_asserts(t.get("setup", "") + "\n" + solution, tests)
    if failure:
        problems.append(f"reference fails: {failure}")
    header = solution.split("\n", 1)[0]
    if not task["input"].startswith(header):
        problems.append("input does not start with the solution's signature")
    if task["category"] == "bug_fix":
        code, sep, shown = task["input"].rpartition("\n# Failing: ")
        if not sep or shown != tests[0]:
            problems.append("input does not end with the first test as the failing test")
        elif run_asserts(code, [shown]) is None:
            problems.append("the buggy function passes the shown test")
        elif code.strip() == solution.strip():
            problems.append("the buggy function is the solution")
    else:
        if "Example: " not in task["input"]:
            problems.append("no example in the input")
    return problems


def held_karp(dist: list) -> int:
    n = len(dist)
    best = {(1 << j, j): dist[0][j] for j in range(1, n)}
    for size in range(2, n):
        nxt = {}
        for (mask, last), cost in best.items():
            for j in range(1, n):
                if mask & (1 << j):
                    continue
                key = (mask | (1 << j), j)
                c = cost + dist[last][j]
                if c < nxt.get(key, 1 << 60):
                    nxt[key] = c
        best = nxt
    return min(cost + dist[last][0] for (_, last), cost in best.items())


def check_route(task: dict) -> list:
    t, problems = task["target"], []
    if set(t) != {"nodes", "distances", "optimum", "tour"}:
        return [f"target fields {sorted(t)}"]
    nodes, dist, tour = t["nodes"], t["distances"], t["tour"]
    n = len(nodes)
    if nodes[0] != "Depot" or not 5 <= n <= 8 or len(set(nodes)) != n:
        problems.append(f"nodes {nodes}")
    if len(dist) != n or any(len(row) != n for row in dist):
        return problems + ["distances not square over the nodes"]
    for i in range(n):
        for j in range(n):
            if dist[i][j] != dist[j][i] or (dist[i][j] == 0) != (i == j) or not isinstance(dist[i][j], int):
                problems.append(f"distance {nodes[i]}-{nodes[j]}")
            if any(dist[i][j] > dist[i][k] + dist[k][j] for k in range(n)):
                problems.append(f"triangle inequality at {nodes[i]}-{nodes[j]}")
    if tour[0] != "Depot" or tour[-1] != "Depot" or sorted(tour[1:-1]) != sorted(nodes[1:]):
        problems.append(f"tour {tour} is not a closed tour over every stop")
    else:
        idx = [nodes.index(x) for x in tour]
        length = sum(dist[a][b] for a, b in zip(idx, idx[1:]))
        if length != t["optimum"]:
            problems.append(f"tour length {length} != optimum {t['optimum']}")
    if held_karp(dist) != t["optimum"]:
        problems.append(f"Held-Karp gives {held_karp(dist)}, target says {t['optimum']}")
    for name, row in zip(nodes, dist):
        if f"\n{name} {' '.join(map(str, row))}" not in task["input"]:
            problems.append(f"input lacks the row of {name}")
    return problems


def min_vehicles(weights: list, capacity: int) -> int:
    """Minimum number of bins: dp[mask] = (bins used, load of the last bin), the least over orders."""
    n = len(weights)
    dp = [(n + 1, 0)] * (1 << n)
    dp[0] = (1, 0)
    for mask in range(1, 1 << n):
        for i in range(n):
            if mask & (1 << i):
                bins, load = dp[mask ^ (1 << i)]
                cand = (bins, load + weights[i]) if load + weights[i] <= capacity else (bins + 1, weights[i])
                if cand < dp[mask]:
                    dp[mask] = cand
    return dp[-1][0]


def check_load(task: dict) -> list:
    t, problems = task["target"], []
    if set(t) != {"capacity_kg", "parcels", "optimum", "plan"}:
        return [f"target fields {sorted(t)}"]
    cap, parcels, plan = t["capacity_kg"], t["parcels"], t["plan"]
    if not 5 <= len(parcels) <= 9 or any(not 0 < w <= cap for w in parcels.values()):
        problems.append(f"parcels {parcels}")
    used = [p for group in plan for p in group]
    if sorted(used) != sorted(parcels) or len(used) != len(set(used)):
        problems.append("plan is not a partition of the parcels")
    elif any(sum(parcels[p] for p in group) > cap for group in plan):
        problems.append("plan overloads a vehicle")
    if len(plan) != t["optimum"]:
        problems.append(f"plan uses {len(plan)} vehicles, optimum says {t['optimum']}")
    best = min_vehicles(list(parcels.values()), cap)
    if best != t["optimum"]:
        problems.append(f"subset DP gives {best}, target says {t['optimum']}")
    for p, w in parcels.items():
        if f"{p} {w}" not in task["input"]:
            problems.append(f"input lacks {p} {w}")
    return problems


def solution_text(task: dict) -> str | None:
    """A code target's solution with whitespace at line ends stripped, else None."""
    t = task["target"]
    if not isinstance(t, dict) or not isinstance(t.get("solution"), str):
        return None
    return "\n".join(line.rstrip() for line in t["solution"].strip("\n").split("\n"))


def instance_key(task: dict) -> str | None:
    """A route or load-planning target's instance (what the solver was given), else None."""
    t = task["target"]
    if task["category"] == "route":
        return "route " + json.dumps(t["distances"])
    if task["category"] == "load_planning":
        return "load " + json.dumps([t["capacity_kg"], t["parcels"]], sort_keys=True)
    return None


def leaks(tasks: dict) -> list:
    """Test tasks whose solution or instance also occurs in train."""
    problems = []
    for key, what in ((solution_text, "solution"), (instance_key, "instance")):
        in_train = {key(t) for t in tasks["train"]} - {None}
        problems += [f"{t['id']}: test {what} also in train" for t in tasks["test"] if key(t) in in_train]
    return problems


CHECKS = {
    "function_synthesis": check_code,
    "bug_fix": check_code,
    "route": check_route,
    "load_planning": check_load,
}


def main(argv: list | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, default=HERE, help="suites directory (default: this script's)")
    args = parser.parse_args(argv)
    problems, counts = [], Counter()
    for suite in sorted(p for p in args.dir.iterdir() if (p / "suite.toml").is_file()):
        inputs, by_split = {}, {}
        for split in ("train", "test"):
            tasks = [json.loads(line) for line in (suite / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()]
            inputs[split] = {t["input"] for t in tasks}
            by_split[split] = tasks
            for task in tasks:
                check = CHECKS.get(task["category"])
                if check is None:
                    continue
                counts[f"{suite.name}/{task['category']}/{split}"] += 1
                problems += [f"{suite.name}/{task['id']}: {p}" for p in check(task)]
        problems += [f"{suite.name}: test input also in train: {i[:60]!r}" for i in inputs["test"] & inputs["train"]]
        problems += [f"{suite.name}/{p}" for p in leaks(by_split)]
    for p in problems:
        print(p, file=sys.stderr)
    for key, n in sorted(counts.items()):
        print(f"{key}: {n} checked")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
