#!/usr/bin/env python3
"""Generates the task suites distill-gate ships: suites/coding and suites/logistics.

Python 3 standard library only. Deterministic: the same flags always write
the same bytes, so `python3 suites/generate.py` regenerates every file
byte-identically and `python3 suites/generate.py --check` verifies that the
committed files are exactly what the generator produces.

Every target is computed, never typed: output-prediction targets come from
executing the generated Python code, CI-log labels from the template that
wrote the log, prices and dates from exact arithmetic (decimal, datetime),
carrier choices from filtering and sorting the options, extraction targets
from the values the notice was written from, function tests from executing
the reference solution, tours and load plans from exact solvers (brute force
over visiting orders, branch and bound over assignments).

Layout of this file: one generator function per category, each taking a
`random.Random` and returning an `Item` (input, target, meta). A category is
registered in `SUITES` with its prompt settings; adding one is one function
plus one `Category(...)` entry.

Splits: for each (suite, category, split) an independent random stream is
seeded from the string "<seed>:<suite>:<category>:<split>". The test split is
drawn first; train then skips any input already in test (or in train), so no
test input text ever appears in train and ids never collide. Code tasks
(function synthesis, bug fix) are also split by the function they ask for:
each function logic goes to test or train by a seeded hash (`logic_in_test`),
each split draws only its own side, and test never repeats a task. Growing a split
(`--train N`, `--test N`) appends items from its stream and keeps its earlier
items; growing test also drops from train the items that now collide with a
new test item.

Usage: python3 suites/generate.py [--seed S] [--train N] [--test N]
       [--suite NAME] [--out DIR] [--check]
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import hashlib
import itertools
import math
import json
import random
import sys
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from string import Template
from typing import Callable

SEED = 20250501
DEFAULT_TRAIN = 2000
DEFAULT_TEST = 500
HERE = Path(__file__).resolve().parent


@dataclass
class Item:
    """One generated task before it gets an id."""

    input: str
    target: object
    meta: dict = field(default_factory=dict)
    # Code tasks only (not written out): `logic` is the function the model
    # must produce, ignoring its name and the example inputs; it decides
    # the split the task may go to. `identity` is what makes two test tasks
    # the same task (the logic, plus the injected bug for bug fixes).
    logic: str | None = None
    identity: str | None = None


@dataclass
class Category:
    """A category: its generator and its `[categories.<name>]` settings."""

    name: str
    generate: Callable[[random.Random], Item]
    description: str
    verified: str
    settings: dict
    explain: Callable[[Item], str]
    # The target as the category's scorer writes it in few-shot examples
    # (its `target_text`), shown in the README when it differs from the JSON.
    answer: Callable[[object], str] | None = None
    # Fixed item counts for this category, instead of its even share of
    # `--train` / `--test`: set where a gate needs more items than the share
    # (sized with `distill-gate plan`, see suites/README.md). Growing a count
    # appends items from the same stream and keeps the earlier ones.
    train_size: int | None = None
    test_size: int | None = None


@dataclass
class SuiteSpec:
    name: str
    # Bumped when the suite's items change (existing items never do).
    version: str
    description: str
    defaults: dict
    categories: list


# ---------------------------------------------------------------------------
# coding/output_prediction: CRUXEval-style "what does this call return?"
# ---------------------------------------------------------------------------

WORDS = [
    "cargo", "truck", "route", "crate", "depot", "fleet", "parcel", "rail",
    "port", "ship", "load", "dock", "hub", "van", "box", "label", "map",
    "key", "node", "gate", "lane", "ramp", "yard", "bin", "pallet", "order",
    "stock", "metal", "green", "apple", "river", "stone", "tiger", "python",
    "rust", "queue", "stack", "array", "token", "model", "level", "radar",
    "kayak", "civic", "refer", "noon", "banana", "letter", "coffee", "mississippi",
]
PALINDROMES = ["level", "radar", "kayak", "civic", "refer", "noon", "madam", "rotor"]
LETTERS = "aeiorstnl"


def small_ints(rng: random.Random, n_min: int = 3, n_max: int = 6, lo: int = 0, hi: int = 12) -> list:
    return [rng.randint(lo, hi) for _ in range(rng.randint(n_min, n_max))]


def op_string_expr(rng):
    w = rng.choice(WORDS)
    a, b = sorted(rng.sample(range(0, 6), 2))
    ch = rng.choice(LETTERS)
    expr = rng.choice([
        "s.upper()[::-1]",
        "s[::-1]",
        "s[1:] + s[0]",
        "s[::2]",
        "s[-3:]",
        f"s[{a}:{b}]",
        "s.capitalize()",
        f"s.replace('{ch}', '{rng.choice('0123456789')}')",
        f"s.count('{ch}')",
        f"s.find('{ch}')",
        "s.upper().swapcase()",
        "s[0].upper() + s[1:-1] + s[-1].upper()",
        f"s.center({len(w) + rng.randint(2, 4)}, '-')",
        f"s.rjust({len(w) + rng.randint(1, 3)}, '0')",
        "'-'.join(s)",
        "sorted(s)[:3]",
        "len(s) * 2",
    ])
    return "def f(s):\n    return " + expr, f"f({w!r})"


def op_words(rng):
    words = rng.sample(WORDS[:40], rng.randint(2, 4))
    text = " ".join(words)
    body = rng.choice([
        "return ' '.join(w[::-1] for w in s.split())",
        "return [len(w) for w in s.split()]",
        "return s.title().replace(' ', '')",
        "return '_'.join(s.split()).upper()",
        "return [w[0] for w in s.split()]",
        "return max(s.split(), key=len)",
        "return sorted(s.split())[-1]",
        "return s.split()[::-1]",
    ])
    return "def f(s):\n    " + body, f"f({text!r})"


def op_list_comp(rng):
    xs = small_ints(rng)
    k = rng.randint(1, 5)
    t = rng.randint(2, 8)
    m = rng.randint(2, 4)
    body = rng.choice([
        "return [x * x for x in xs if x % 2 == 0]",
        f"return [x + {k} for x in xs if x > {t}]",
        f"return [x % {m} for x in xs]",
        f"return [x for x in xs if x % {m} != 0]",
        f"return [x * {k + 1} for x in xs[::2]]",
        "return [i * x for i, x in enumerate(xs)]",
        f"return [x - {k} if x > {t} else x for x in xs]",
        f"return [x // {m} for x in xs if x]",
    ])
    return "def f(xs):\n    " + body, f"f({xs!r})"


def op_list_ops(rng):
    xs = small_ints(rng, 4, 7, 0, 20)
    i = rng.randint(1, len(xs) - 1)
    k = rng.randint(1, 3)
    body = rng.choice([
        f"return xs[{i}:] + xs[:{i}]",
        f"return sorted(xs, reverse=True)[:{k + 1}]",
        "return max(xs) - min(xs)",
        "return sum(xs) // len(xs)",
        "return len(set(xs))",
        f"return xs.index({xs[i]})",
        "return xs[-1::-2]",
        "return sorted(xs)[len(xs) // 2]",
        f"return sum(x for x in xs if x > {sorted(xs)[len(xs) // 2]})",
        "return [a + b for a, b in zip(xs, xs[1:])]",
    ])
    return "def f(xs):\n    " + body, f"f({xs!r})"


def op_mutation(rng):
    xs = small_ints(rng, 3, 5, 0, 15)
    v = rng.randint(0, 15)
    i = rng.randint(0, len(xs) - 1)
    body = rng.choice([
        f"xs.append({v})\n    xs.pop(0)\n    return xs",
        f"xs.insert({i}, {v})\n    return xs",
        f"xs.remove({xs[i]})\n    return xs",
        f"xs[{i}] = {v}\n    xs.sort()\n    return xs",
        f"xs.extend(xs[:{i + 1}])\n    return xs",
        "xs.reverse()\n    return xs[1:]",
    ])
    return "def f(xs):\n    " + body, f"f({xs!r})"


def op_dict_count(rng):
    w = rng.choice([w for w in WORDS if len(w) <= 6])
    body = rng.choice([
        "d = {}\n    for ch in s:\n        d[ch] = d.get(ch, 0) + 1\n    return d",
        "d = {}\n    for i, ch in enumerate(s):\n        d[ch] = i\n    return d",
        "d = {}\n    for ch in s:\n        d[ch] = d.get(ch, 0) + 1\n    return max(d.values())",
    ])
    return "def f(s):\n    " + body, f"f({w!r})"


def op_dict_ops(rng):
    keys = rng.sample(["a", "b", "c", "d", "x", "y", "z", "id", "qty", "kg"], 3)
    vals = [rng.randint(1, 9) for _ in keys]
    d = dict(zip(keys, vals))
    probe = rng.sample(keys + ["n", "w"], 3)
    k = rng.randint(1, 4)
    body = rng.choice([
        f"return [d.get(k, 0) for k in {probe!r}]",
        f"return {{k: v * {k} for k, v in d.items() if v > {min(vals)}}}",
        "return sorted(d, key=d.get)",
        "return sum(d.values())",
        "return {v: k for k, v in d.items()}",
        f"d[{probe[0]!r}] = d.get({probe[0]!r}, 0) + {k}\n    return d",
        "return max(d.items(), key=lambda kv: kv[1])",
        "return list(d)[::-1]",
    ])
    return "def f(d):\n    " + body, f"f({d!r})"


def op_arith(rng):
    a, b = rng.randint(2, 40), rng.randint(2, 9)
    c = rng.randint(1, 6)
    expr = rng.choice([
        f"a * b - {c}",
        "(a + b) // b",
        "a % b",
        "divmod(a, b)",
        "a ** 2 - b ** 2",
        f"(a - b) * {c} % 7",
        "a // b * b",
        "abs(b - a) + min(a, b)",
        "a / b * 2",
        "a << 1 | b",
        "str(a) + str(b)",
        "a > b * 4",
    ])
    return "def f(a, b):\n    return " + expr, f"f({a}, {b})"


def op_loops(rng):
    n = rng.randint(2, 9)
    k = rng.randint(1, 4)
    body = rng.choice([
        f"total = 0\n    for i in range(n):\n        total += i * {k}\n    return total",
        "out = []\n    for i in range(1, n + 1):\n        if i % 3 == 0:\n            out.append(i)\n    return out",
        "steps = 0\n    while n > 1:\n        n = n // 2 if n % 2 == 0 else 3 * n + 1\n        steps += 1\n    return steps",
        f"x = 1\n    for _ in range(n):\n        x = x * 2 % {k + 10}\n    return x",
        "s = ''\n    for i in range(n):\n        s += 'xyz'[i % 3]\n    return s",
        "a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a",
    ])
    return "def f(n):\n    " + body, f"f({n})"


def op_bool_str(rng):
    w = rng.choice(PALINDROMES + WORDS[:20])
    ch = rng.choice(LETTERS)
    body = rng.choice([
        "return s == s[::-1]",
        f"return s.startswith('{ch}')",
        f"return '{ch}' in s and len(s) > 4",
        "return s.isalpha() and s.islower()",
        "return f'{s}:{len(s):03d}'",
        f"return s.endswith('{rng.choice(LETTERS)}') or s[0] == '{ch}'",
    ])
    return "def f(s):\n    " + body, f"f({w!r})"


def op_grid(rng):
    rows, cols = rng.randint(2, 3), rng.randint(2, 3)
    grid = [[rng.randint(0, 9) for _ in range(cols)] for _ in range(rows)]
    i = rng.randint(0, cols - 1)
    body = rng.choice([
        f"return [row[{i}] for row in grid]",
        "return [sum(row) for row in grid]",
        "return [x for row in grid for x in row if x % 2]",
        "return list(map(list, zip(*grid)))",
        "return max(max(row) for row in grid)",
    ])
    return "def f(grid):\n    " + body, f"f({grid!r})"


OUTPUT_TEMPLATES = [
    ("string_expr", op_string_expr, 3),
    ("words", op_words, 2),
    ("list_comprehension", op_list_comp, 3),
    ("list_ops", op_list_ops, 3),
    ("list_mutation", op_mutation, 2),
    ("dict_count", op_dict_count, 1),
    ("dict_ops", op_dict_ops, 2),
    ("arithmetic", op_arith, 3),
    ("loops", op_loops, 2),
    ("bool_and_format", op_bool_str, 2),
    ("nested_lists", op_grid, 1),
]
MAX_REPR_CHARS = 40


def run_call(code: str, call: str) -> object:
    """Executes `code` in a fresh namespace and evaluates `call` there."""
    namespace: dict = {}
    exec(compile(code, "<task>", "exec"), namespace)  # noqa: S102 - our own generated code
    return eval(compile(call, "<call>", "eval"), namespace)  # noqa: S307


def ambiguous_for_exact(result: object, text: str) -> bool:
    """Whether the exact scorer could not tell this answer from a wrong one.

    Its normalisation strips wrapping quotes and a trailing `.` on both sides,
    so a string result that reads as another literal once unquoted ('15',
    'True') would also accept the wrong-typed answer (15, True), and a result
    that normalises to nothing would accept an empty answer.
    """
    if text.strip(" \t'\"`*.") == "":
        return True
    if isinstance(result, str):
        try:
            value = eval(result, {"__builtins__": {}})  # noqa: S307 - a literal of our own
        except Exception:
            return False
        return not isinstance(value, str)
    return False


def gen_output_prediction(rng: random.Random) -> Item:
    while True:
        name, make, _ = rng.choices(OUTPUT_TEMPLATES, weights=[w for *_, w in OUTPUT_TEMPLATES])[0]
        code, call = make(rng)
        result = run_call(code, call)
        text = repr(result)
        if len(text) > MAX_REPR_CHARS or ambiguous_for_exact(result, text) or "\n" in text:
            continue
        return Item(f"{code}\n{call}", text, {"template": name, "type": type(result).__name__})


# ---------------------------------------------------------------------------
# coding/ci_log_triage: a CI log excerpt -> one label
# ---------------------------------------------------------------------------

CI_LABELS = [
    "compile_error", "test_failure", "lint_error", "type_error",
    "dependency_error", "timeout", "out_of_memory", "network_error",
]
MODULES = ["billing", "router", "parser", "cache", "auth", "quotes", "tracking", "store", "api", "utils"]
IDENTS = ["total", "config", "user_id", "rate", "items", "buf", "count", "payload", "conn", "shipment"]
FUNCS = ["parse_rate", "load_config", "compute_total", "send_quote", "build_route", "fetch_user", "apply_fuel", "pack_items"]
CRATES = ["serde", "tokio", "reqwest", "clap", "rand", "regex", "chrono", "anyhow"]
NPM = ["react", "lodash", "axios", "webpack", "eslint", "typescript", "jest", "express"]
PYPKGS = ["requests", "numpy", "pydantic", "fastapi", "pandas", "boto3", "httpx", "pyyaml"]
HOSTS = ["github.com", "registry.npmjs.org", "pypi.org", "proxy.golang.org", "index.crates.io", "files.pythonhosted.org"]


def camel(s: str) -> str:
    return "".join(p.capitalize() for p in s.split("_"))


def ci_compile_error(rng):
    m, ident, fn, ln, col = rng.choice(MODULES), rng.choice(IDENTS), rng.choice(FUNCS), rng.randint(3, 240), rng.randint(1, 40)
    return rng.choice([
        ("cargo", f"$ cargo build\nerror[E0425]: cannot find value `{ident}` in this scope\n  --> src/{m}.rs:{ln}:{col}\nerror: could not compile `{m}` (lib) due to 1 previous error"),
        ("cargo", f"$ cargo build --release\nerror: expected `;`, found `let`\n  --> src/{m}.rs:{ln}:{col}\nerror: could not compile `{m}` (bin \"{m}\") due to 1 previous error"),
        ("cargo", f"error[E0382]: borrow of moved value: `{ident}`\n  --> src/{m}.rs:{ln}:{col}\nerror: could not compile `{m}` due to 1 previous error"),
        ("gcc", f"$ make\nsrc/{m}.c:{ln}:{col}: error: '{ident}' undeclared (first use in this function)\nmake: *** [Makefile:{rng.randint(10, 60)}: build/{m}.o] Error 1"),
        ("go", f"$ go build ./...\n# example.com/app/{m}\n{m}/{m}.go:{ln}:{col}: undefined: {camel(fn)}"),
        ("javac", f"[ERROR] /app/src/main/java/{camel(m)}.java:[{ln},{col}] cannot find symbol\n[ERROR]   symbol: variable {ident}\n[INFO] BUILD FAILURE"),
    ])


def ci_test_failure(rng):
    m, fn, ln = rng.choice(MODULES), rng.choice(FUNCS), rng.randint(3, 240)
    a = rng.randint(0, 99)
    b = a + rng.randint(1, 9)
    return rng.choice([
        ("pytest", f"$ pytest -q\nFAILED tests/test_{m}.py::test_{fn} - AssertionError: assert {a} == {b}\n1 failed, {rng.randint(5, 90)} passed in {rng.randint(1, 9)}.{rng.randint(10, 99)}s"),
        ("cargo", f"test {m}::tests::{fn} ... FAILED\nthread '{m}::tests::{fn}' panicked at src/{m}.rs:{ln}:9:\nassertion `left == right` failed\ntest result: FAILED. {rng.randint(3, 60)} passed; 1 failed"),
        ("go", f"--- FAIL: Test{camel(fn)} (0.0{rng.randint(0, 9)}s)\n    {m}_test.go:{ln}: got {a}, want {b}\nFAIL\texample.com/app/{m}\t0.{rng.randint(10, 99)}s"),
        ("jest", f"FAIL src/{m}.test.js\n  \u2715 {fn.replace('_', ' ')} ({rng.randint(2, 90)} ms)\n    Expected: {b}\n    Received: {a}"),
    ])


def ci_lint_error(rng):
    m, ident, ln, col = rng.choice(MODULES), rng.choice(IDENTS), rng.randint(3, 240), rng.randint(1, 40)
    camel_ident = ident.split("_")[0] + camel(ident)[len(ident.split("_")[0]):]
    return rng.choice([
        ("eslint", f"$ npx eslint src/\nsrc/{m}.js\n  {ln}:{col}  error  '{camel_ident}' is assigned a value but never used  no-unused-vars\n1 problem (1 error, 0 warnings)"),
        ("ruff", f"$ ruff check .\napp/{m}.py:{ln}:{rng.randint(80, 120)}: E501 Line too long ({rng.randint(89, 130)} > 88)\nFound 1 error."),
        ("flake8", f"./app/{m}.py:{ln}:1: F401 'os' imported but unused"),
        ("clippy", f"$ cargo clippy -- -D warnings\nerror: redundant clone\n  --> src/{m}.rs:{ln}:{col}\n  = note: `-D clippy::redundant-clone` implied by `-D warnings`"),
        ("golangci-lint", f"{m}/{m}.go:{ln}:{col}: ineffectual assignment to {camel_ident} (ineffassign)"),
        ("go vet", f"$ go vet ./...\n# example.com/app/{m}\n{m}/{m}.go:{ln}:{col}: self-assignment of {camel_ident} to {camel_ident}"),
    ])


def ci_type_error(rng):
    m, fn, ident, ln, col = rng.choice(MODULES), rng.choice(FUNCS), rng.choice(IDENTS), rng.randint(3, 240), rng.randint(1, 40)
    t1, t2 = rng.sample(["str", "int", "float", "bytes", "list[str]", "None"], 2)
    return rng.choice([
        ("mypy", f"$ mypy app/\napp/{m}.py:{ln}: error: Argument 1 to \"{fn}\" has incompatible type \"{t1}\"; expected \"{t2}\"  [arg-type]\nFound 1 error in 1 file"),
        ("mypy", f"app/{m}.py:{ln}: error: Incompatible return value type (got \"{t1}\", expected \"{t2}\")  [return-value]"),
        ("tsc", f"$ npx tsc --noEmit\nsrc/{m}.ts({ln},{col}): error TS2322: Type 'string' is not assignable to type 'number'."),
        ("tsc", f"src/{m}.ts({ln},{col}): error TS2339: Property '{ident}' does not exist on type '{camel(m)}'."),
        ("pyright", f"app/{m}.py:{ln}:{col} - error: \"{ident}\" is not a known attribute of \"None\" (reportOptionalMemberAccess)"),
    ])


def ci_dependency_error(rng):
    crate, npm, py = rng.choice(CRATES), rng.choice(NPM), rng.choice(PYPKGS)
    major = rng.randint(5, 30)
    return rng.choice([
        ("npm", f"$ npm ci\nnpm ERR! code ERESOLVE\nnpm ERR! ERESOLVE unable to resolve dependency tree\nnpm ERR! peer {npm}@\"^{major}.0.0\" from app@1.0.0"),
        ("pip", f"$ pip install -r requirements.txt\nERROR: Could not find a version that satisfies the requirement {py}=={major}.{rng.randint(0, 9)}.0\nERROR: No matching distribution found for {py}=={major}.0"),
        ("cargo", f"error: failed to select a version for the requirement `{crate} = \"^{major}.1\"`\ncandidate versions found which didn't match: 1.0.{rng.randint(100, 220)}"),
        ("pip", f"ERROR: Cannot install {py}=={major}.0 and {rng.choice(PYPKGS)}==1.{rng.randint(0, 9)} because these package versions have conflicting dependencies."),
        ("go", f"go: example.com/app imports\n\tgithub.com/acme/{crate}: module github.com/acme/{crate}@latest found (v0.{rng.randint(1, 9)}.0), but does not contain package github.com/acme/{crate}"),
    ])


def go_duration(minutes: int) -> str:
    """A duration as Go prints it (`45m0s`, `1h30m0s`), as GitLab runners do."""
    return f"{minutes // 60}h{minutes % 60}m0s" if minutes >= 60 else f"{minutes}m0s"


def ci_timeout(rng):
    m, fn = rng.choice(MODULES), rng.choice(FUNCS)
    mins = rng.choice([10, 15, 30, 45, 60, 90, 120])
    return rng.choice([
        ("actions", f"##[error]The job running on runner ci-{rng.randint(1, 40)} has exceeded the maximum execution time of {mins} minutes."),
        ("go", f"panic: test timed out after {go_duration(mins)}\nrunning tests:\n\tTest{camel(fn)} ({go_duration(mins)})"),
        ("pytest", f"tests/test_{m}.py::test_{fn}\n+++++ Timeout +++++\nFailed: Timeout >{mins * 10}.0s"),
        ("jest", f"thrown: \"Exceeded timeout of {mins * 100} ms for a test.\"\n  at src/{m}.test.js:{rng.randint(3, 200)}:3"),
        ("gitlab", f"ERROR: Job failed: execution took longer than {go_duration(mins)} seconds"),
    ])


def ci_out_of_memory(rng):
    m = rng.choice(MODULES)
    return rng.choice([
        ("kernel", f"$ cargo build --release\n   Compiling {m} v0.{rng.randint(1, 9)}.0\nerror: could not compile `{m}` (lib)\nCaused by: process didn't exit successfully (signal: 9, SIGKILL: kill)"),
        ("node", f"FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory\n 1: 0xb0{rng.randint(1000, 9999)} node::Abort() [node]"),
        ("java", f"[ERROR] Exception in thread \"main\" java.lang.OutOfMemoryError: Java heap space\n\tat com.acme.{m}.{camel(m)}.load({camel(m)}.java:{rng.randint(3, 240)})"),
        ("go", f"fatal error: runtime: out of memory\n\ngoroutine {rng.randint(1, 40)} [running]:\nexample.com/app/{m}.Load()"),
        ("docker", f"Step {rng.randint(3, 12)}/{rng.randint(13, 20)} : RUN make build\nKilled\nThe command '/bin/sh -c make build' returned a non-zero code: 137"),
        ("python", f"  File \"app/{m}.py\", line {rng.randint(3, 240)}, in load\n    rows = list(reader)\nMemoryError"),
    ])


def ci_network_error(rng):
    host, npm, py, crate = rng.choice(HOSTS), rng.choice(NPM), rng.choice(PYPKGS), rng.choice(CRATES)
    ip = f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    return rng.choice([
        ("curl", f"$ curl -fsSL https://{host}/install.sh\ncurl: (6) Could not resolve host: {host}"),
        ("git", f"fatal: unable to access 'https://github.com/acme/{crate}.git/': Could not resolve host: github.com"),
        ("npm", f"npm ERR! code ECONNRESET\nnpm ERR! network request to https://registry.npmjs.org/{npm} failed, reason: socket hang up"),
        ("pip", f"WARNING: Retrying (Retry(total=0)) after connection broken by 'NewConnectionError': /simple/{py}/\nERROR: Could not install packages due to a connection error"),
        ("go", f"dial tcp {ip}:443: connect: connection refused"),
        ("cargo", f"warning: spurious network error (1 tries remaining): [6] Couldn't resolve host name\nerror: failed to download from `https://static.crates.io/crates/{crate}`"),
    ])


CI_GENERATORS = {
    "compile_error": ci_compile_error,
    "test_failure": ci_test_failure,
    "lint_error": ci_lint_error,
    "type_error": ci_type_error,
    "dependency_error": ci_dependency_error,
    "timeout": ci_timeout,
    "out_of_memory": ci_out_of_memory,
    "network_error": ci_network_error,
}


def gen_ci_log_triage(rng: random.Random) -> Item:
    label = rng.choice(CI_LABELS)
    tool, log = CI_GENERATORS[label](rng)
    return Item(log, label, {"tool": tool})


# ---------------------------------------------------------------------------
# coding/function_synthesis and coding/bug_fix: small functions with tests
# ---------------------------------------------------------------------------
#
# A template is a routine task with random constants and a random function
# name. It yields the function's signature, a one-line specification, the
# reference body, realistic one-line bugs (text replacements in the body)
# and a generator of call arguments. Expected values in the tests come from
# executing the reference; bug-fix items keep only bugs that the shown test
# catches.


@dataclass
class FnSpec:
    """A function to write: the reference plus what a task needs around it."""

    name: str
    params: str
    returns: str
    doc: str
    body: str
    bugs: list
    args: Callable[[random.Random], tuple]

    def source(self, body: str | None = None) -> str:
        return self.header() + (self.body if body is None else body)

    def header(self) -> str:
        return f"def {self.name}({self.params}) -> {self.returns}:\n"


def fill(text: str, **values) -> str:
    """`$name` placeholders in a code template (Python code keeps its braces)."""
    return Template(text).substitute(**values)


def rand_ints(rng: random.Random, n_min: int, n_max: int, lo: int, hi: int) -> list:
    return [rng.randint(lo, hi) for _ in range(rng.randint(n_min, n_max))]


def fn_sum_multiples(rng):
    a, b = sorted(rng.sample(range(2, 13), 2))
    count = rng.random() < 0.5
    inclusive = rng.random() < 0.5
    upto = "range(1, n + 1)" if inclusive else "range(1, n)"
    what = "How many" if count else "Sum of the"
    doc = (f"{what} positive integers {'up to and including' if inclusive else 'below'} n "
           f"divisible by {a} or {b}.")
    expr = "1" if count else "i"
    return FnSpec(
        rng.choice(["count_multiples", "multiples_count", "how_many_multiples"] if count
                   else ["sum_multiples", "multiples_total", "sum_of_multiples"]), "n: int", "int", doc,
        f"    return sum({expr} for i in {upto} if i % {a} == 0 or i % {b} == 0)\n",
        [(upto, "range(1, n)" if inclusive else "range(1, n + 1)"), (" or ", " and ")],
        lambda r: (rng_choice_multiple(r, a, b),),
    )


def rng_choice_multiple(rng, a, b):
    """n in 1..60, a multiple of a or b half the time (where off-by-one bugs show)."""
    if rng.random() < 0.5:
        return rng.choice([a, b]) * rng.randint(1, 60 // max(a, b))
    return rng.randint(1, 60)


def fn_run_length(rng):
    count_first = rng.random() < 0.5
    omit_ones = rng.random() < 0.5
    sep = rng.choice(["", ",", " ", ";"])
    piece = "f'{n}{c}'" if count_first else "f'{c}{n}'"
    if omit_ones:
        piece = f"({piece} if n > 1 else c)"
    doc = ("Run-length encode s: each run of one character becomes "
           + ("its length then the character" if count_first else "the character then its length")
           + ("; a run of one is just the character" if omit_ones else "")
           + (f"; pieces joined by {sep!r}." if sep else "."))
    body = (
        "    runs = []\n"
        "    for ch in s:\n"
        "        if runs and runs[-1][0] == ch:\n"
        "            runs[-1][1] += 1\n"
        "        else:\n"
        "            runs.append([ch, 1])\n"
        f"    return {sep!r}.join({piece} for c, n in runs)\n"
    )

    def args(r):
        alphabet = r.choice(["ab", "xyz", "abc", "01"])
        out, last = "", ""
        for _ in range(r.randint(0, 5)):
            ch = r.choice([c for c in alphabet if c != last])
            out += ch * r.randint(1, 4)
            last = ch
        return (out,)

    return FnSpec(
        rng.choice(["rle", "run_length", "encode_runs", "compress"]), "s: str", "str", doc, body,
        [("runs.append([ch, 1])", "runs.append([ch, 0])"), ("if runs and runs[-1][0] == ch", "if runs[-1][0] == ch")],
        args,
    )


def fn_dedupe(rng):
    limit = rng.choice([None, 2, 3, 4, 5])
    ret = "out" if limit is None else f"out[:{limit}]"
    tail = "" if limit is None else f", at most the first {limit}"
    if rng.random() < 0.6:
        key, what, lo = rng.choice([
            ("x", "repeats", 0),
            ("abs(x)", "repeats of the absolute value", -9),
            ("x % 3", "repeats of the remainder mod 3", 0),
            ("x % 4", "repeats of the remainder mod 4", 0),
            ("x % 5", "repeats of the remainder mod 5", 0),
        ])
        body = (
            "    seen = set()\n"
            "    out = []\n"
            "    for x in xs:\n"
            f"        if {key} not in seen:\n"
            f"            seen.add({key})\n"
            "            out.append(x)\n"
            f"    return {ret}\n"
        )
        return FnSpec(
            rng.choice(["dedupe", "unique", "remove_duplicates", "distinct"]), "xs: list[int]", "list[int]",
            f"The items of xs without {what}, keeping first occurrences in order{tail}.", body,
            [(f"            seen.add({key})\n", ""), (f"    return {ret}\n", f"    return sorted(out){ret[3:]}\n")],
            lambda r: ([r.randint(lo, 9) for _ in range(r.randint(2, 8))],),
        )
    body = (
        "    seen = set()\n"
        "    out = []\n"
        "    for w in words:\n"
        "        if w.lower() not in seen:\n"
        "            seen.add(w.lower())\n"
        "            out.append(w)\n"
        f"    return {ret}\n"
    )
    pool = ["Box", "box", "BOX", "van", "Van", "dock", "Dock", "hub", "ramp", "Ramp", "lane"]
    return FnSpec(
        rng.choice(["dedupe_words", "unique_words", "first_spellings"]), "words: list[str]", "list[str]",
        f"The words without case-insensitive repeats, keeping first occurrences in order{tail}.", body,
        [("seen.add(w.lower())", "seen.add(w)"), ("            seen.add(w.lower())\n", "")],
        lambda r: (r.sample(pool, r.randint(2, 6)),),
    )


def fn_chunk(rng):
    k = rng.choice(["k", "2", "3", "4"])
    keep = rng.random() < 0.5
    summed = rng.random() < 0.5
    piece = f"sum(xs[i:i + {k}])" if summed else f"xs[i:i + {k}]"
    stop = "len(xs)" if keep else f"len(xs) - {k} + 1"
    size = "k" if k == "k" else k
    doc = (f"Split xs into consecutive pieces of {size} items"
           + ("; the last may be shorter" if keep else ", dropping a shorter last piece")
           + ("; return each piece's sum." if summed else "."))
    returns = "list[int]" if summed else "list[list[int]]"
    return FnSpec(
        rng.choice(["chunk_sums", "batch_totals", "group_sums"] if summed else ["chunk", "chunks", "split_into", "batch"]),
        "xs: list[int], k: int" if k == "k" else "xs: list[int]", returns, doc,
        f"    return [{piece} for i in range(0, {stop}, {k})]\n",
        [(f"range(0, {stop}, {k})", f"range(0, len(xs) - {k}, {k})"), (f"xs[i:i + {k}]", f"xs[i:i + {k} - 1]")],
        (lambda r: ([r.randint(0, 20) for _ in range(r.randint(1, 8))], r.randint(1, 4))) if k == "k"
        else (lambda r: ([r.randint(0, 20) for _ in range(r.randint(1, 9))],)),
    )


def fn_parse_pairs(rng):
    sep, eq = rng.choice([(";", "="), (",", ":"), ("&", "="), ("|", ":"), (";", ":"),
                          (",", "="), ("|", "="), ("/", "="), ("/", ":"), ("&", ":")])
    lower = rng.random() < 0.5
    scale = rng.choice([1, 1, 10, 100])
    keyexpr = "key.strip().lower()" if lower else "key.strip()"
    valexpr = "int(value)" if scale == 1 else f"int(value) * {scale}"
    body = fill(
        "    out = {}\n"
        "    for part in s.split('$sep'):\n"
        "        if part.strip():\n"
        "            key, value = part.split('$eq')\n"
        "            out[$key] = $val\n"
        "    return out\n", sep=sep, eq=eq, key=keyexpr, val=valexpr)
    buggy_edge = fill(
        "        if part.strip():\n"
        "            key, value = part.split('$eq')\n"
        "            out[$key] = $val\n", eq=eq, key=keyexpr, val=valexpr)
    fixed_edge = fill(
        "        key, value = part.split('$eq')\n"
        "        out[$key] = $val\n", eq=eq, key=keyexpr, val=valexpr)

    def args(r):
        keys = r.sample(["a", "B", "x", "Qty", "kg", "ID", "zone", "n"], r.randint(1, 4))
        text = sep.join(f"{k}{eq}{r.randint(0, 99)}" for k in keys)
        if r.random() < 0.4:
            text += sep
        return (text,)

    extra = ("; keys lower-cased" if lower else "") + (f"; values times {scale}" if scale != 1 else "")
    example = f"{{'a': {scale}, 'b': {2 * scale}}}"
    return FnSpec(
        rng.choice(["parse_pairs", "parse_kv", "to_dict", "parse_fields"]), "s: str", "dict[str, int]",
        f"Parse 'a{eq}1{sep}b{eq}2' into {example} (int values{extra}); skip empty parts.", body,
        [(buggy_edge, fixed_edge), ("int(value)", "value")],
        args,
    )


def fn_clamp(rng):
    lo = rng.randint(-5, 5)
    hi = lo + rng.randint(3, 10)
    body = fill(
        "    out = []\n"
        "    for x in xs:\n"
        "        if x < $lo:\n"
        "            out.append($lo)\n"
        "        elif x > $hi:\n"
        "            out.append($hi)\n"
        "        else:\n"
        "            out.append(x)\n"
        "    return out\n", lo=lo, hi=hi)
    return FnSpec(
        rng.choice(["clamp", "clamp_all", "limit", "bound_values"]), "xs: list[int]", "list[int]",
        f"Each x in xs clamped to the range {lo}..{hi}.", body,
        [(f"            out.append({hi})", f"            out.append({lo})"),
         (f"            out.append({lo})", "            out.append(x)")],
        lambda r: ([r.randint(lo - 6, hi + 6) for _ in range(r.randint(2, 7))],),
    )


LONG_WORD_TESTS = {
    ">": ("longer than", ">="),
    ">=": ("at least", ">"),
    "<": ("shorter than", "<="),
    "==": ("exactly", ">="),
}


def fn_long_words(rng):
    op = rng.choice(sorted(LONG_WORD_TESTS))
    k = rng.randint(4, 6) if op == "<" else rng.randint(3, 6)
    listing = rng.random() < 0.5
    phrase, bug_op = LONG_WORD_TESTS[op]
    unit = "characters" if op != "==" else "characters long"

    def args(r):
        words = r.sample(WORDS, r.randint(2, 7))
        for pool in ([w for w in WORDS if len(w) == k], [w for w in WORDS if len(w) > k],
                     [w for w in WORDS if len(w) < k]):
            if pool and r.random() < 0.6:
                words[r.randrange(len(words))] = r.choice(pool)
        return (" ".join(words),)

    if listing:
        doc = f"The words of s (split on whitespace) that are {phrase} {k} {unit}, in order."
        body = f"    return [w for w in s.split() if len(w) {op} {k}]\n"
        names, returns = ["words_of_length", "pick_words", "filter_words"], "list[str]"
    else:
        doc = f"How many words of s (split on whitespace) are {phrase} {k} {unit}."
        body = f"    return sum(1 for w in s.split() if len(w) {op} {k})\n"
        names, returns = ["count_long_words", "count_words_by_length", "count_matching_words"], "int"
    return FnSpec(
        rng.choice(names), "s: str", returns, doc, body,
        [(f"len(w) {op} {k}", f"len(w) {bug_op} {k}"), ("s.split()", "s.split(' ')[1:]")],
        args,
    )


ORDINALS = {2: "second", 3: "third", 4: "fourth", 5: "fifth"}


def fn_second_largest(rng):
    largest = rng.random() < 0.5
    rank = rng.choice([2, 2, 3, 4])
    missing = rng.choice(["None", "-1"])
    rev = "True" if largest else "False"
    word = "largest" if largest else "smallest"
    nth = ORDINALS[rank]
    body = (
        f"    values = sorted(set(xs), reverse={rev})\n"
        f"    if len(values) < {rank}:\n"
        f"        return {missing}\n"
        f"    return values[{rank - 1}]\n"
    )

    def args(r):
        xs = [r.randint(0, 9) for _ in range(r.randint(1, 4 + rank))]
        if r.random() < 0.5:
            xs.append(max(xs) if largest else min(xs))
        r.shuffle(xs)
        return (xs,)

    return FnSpec(
        rng.choice([f"{nth}_{word}", f"{word}_{nth}", f"nth_{word}"]), "xs: list[int]",
        "int | None" if missing == "None" else "int",
        f"The {nth} {word} distinct value in xs, or {missing} if there is none.", body,
        [(f"sorted(set(xs), reverse={rev})", f"sorted(xs, reverse={rev})"),
         (f"if len(values) < {rank}:", f"if len(values) < {rank - 1}:")],
        args,
    )


def fn_format_duration(rng):
    style = rng.choice(["colon", "units", "words", "minutes"])
    if style == "colon":
        ret = "    return f'{hours:02d}:{minutes:02d}:{secs:02d}'\n"
        doc = "Format a number of seconds as HH:MM:SS."
    elif style == "units":
        ret = "    return f'{hours}h {minutes:02d}m {secs:02d}s'\n"
        doc = "Format a number of seconds like '1h 02m 05s'."
    elif style == "words":
        ret = "    return f'{hours} h {minutes} min {secs:02d} s'\n"
        doc = "Format a number of seconds like '1 h 2 min 05 s'."
    else:
        ret = "    return f'{hours * 60 + minutes}:{secs:02d}'\n"
        doc = "Format a number of seconds as total minutes and seconds, like '62:05'."
    body = "    hours, rest = divmod(seconds, 3600)\n    minutes, secs = divmod(rest, 60)\n" + ret
    return FnSpec(
        rng.choice(["format_duration", "hms", "fmt_seconds", "as_clock"]), "seconds: int", "str", doc, body,
        [("divmod(rest, 60)", "divmod(seconds, 60)"), ("{secs:02d}", "{secs}")],
        lambda r: (r.choice([r.randint(0, 3599), r.randint(3600, 90000)]),),
    )


def fn_merge_intervals(rng):
    touching = rng.random() < 0.5
    count = rng.random() < 0.5
    cmp = "<=" if touching else "<"
    body = (
        "    merged = []\n"
        "    for start, end in sorted(intervals):\n"
        f"        if merged and start {cmp} merged[-1][1]:\n"
        "            merged[-1][1] = max(merged[-1][1], end)\n"
        "        else:\n"
        "            merged.append([start, end])\n"
        + ("    return len(merged)\n" if count else "    return merged\n")
    )

    def args(r):
        out = []
        for _ in range(r.randint(1, 5)):
            s = r.randint(0, 20)
            out.append([s, s + r.randint(0, 6)])
        if r.random() < 0.5 and out:
            out.append([out[0][1], out[0][1] + r.randint(1, 3)])
        return (out,)

    which = "overlapping or touching" if touching else "overlapping (not merely touching)"
    return FnSpec(
        rng.choice(["count_merged", "merged_count", "count_blocks"] if count
                   else ["merge_intervals", "merge_ranges", "union_intervals"]),
        "intervals: list[list[int]]", "int" if count else "list[list[int]]",
        f"Merge {which} [start, end] intervals; return "
        + ("how many remain." if count else "them sorted."), body,
        [(f"start {cmp} merged[-1][1]", f"start {'<' if touching else '<='} merged[-1][1]"),
         ("max(merged[-1][1], end)", "end")],
        args,
    )


BRACKETS = ["()", "[]", "{}", "<>"]


def fn_balanced(rng):
    kinds = sorted(rng.sample(BRACKETS, rng.randint(2, 4)), key=BRACKETS.index)
    pairs = "{" + ", ".join(f"'{c}': '{o}'" for o, c in kinds) + "}"
    opening = "".join(o for o, _ in kinds)
    closing = "".join(c for _, c in kinds)
    body = (
        f"    pairs = {pairs}\n"
        "    stack = []\n"
        "    for ch in s:\n"
        f"        if ch in '{opening}':\n"
        "            stack.append(ch)\n"
        "        elif ch in pairs:\n"
        "            if not stack or stack.pop() != pairs[ch]:\n"
        "                return False\n"
        "    return not stack\n"
    )

    def balanced(r, depth):
        out = ""
        for _ in range(r.randint(1, 2)):
            o, c = r.choice(kinds)
            inner = balanced(r, depth - 1) if depth > 0 and r.random() < 0.6 else r.choice(["", "x", "ab"])
            out += o + inner + c
        return out

    def args(r):
        s = balanced(r, 2)
        kind = r.random()
        if kind < 0.25:
            s += r.choice(opening)
        elif kind < 0.5:
            i = r.randrange(len(s))
            s = s[:i] + r.choice(closing) + s[i:]
        elif kind < 0.6:
            s = r.choice(closing) + s
        return (s,)

    listed = " ".join(o + c for o, c in kinds)
    return FnSpec(
        rng.choice(["balanced", "is_balanced", "brackets_ok", "check_brackets"]), "s: str", "bool",
        f"Whether the brackets {listed} in s are balanced and properly nested (other characters are ignored).",
        body,
        [("    return not stack\n", "    return True\n"),
         ("if not stack or stack.pop() != pairs[ch]", "if stack and stack.pop() != pairs[ch]")],
        args,
    )


def fn_rotate(rng):
    right = rng.random() < 0.5
    k = rng.choice(["k", "k", "1", "2", "3"])
    expr = "xs[-k:] + xs[:-k]" if right else "xs[k:] + xs[:k]"
    first = "k %= len(xs)" if k == "k" else f"k = {k} % len(xs)"
    body = f"    if not xs:\n        return []\n    {first}\n    return {expr}\n"
    bug2 = ("xs[-k:] + xs[:-k]", "xs[k:] + xs[:k]") if right else ("xs[k:] + xs[:k]", "xs[-k:] + xs[:-k]")
    bug1 = ("    k %= len(xs)\n", "") if k == "k" else (f"{k} % len(xs)", f"{k}")
    direction = "right" if right else "left"
    if k == "k":
        return FnSpec(
            rng.choice(["rotate", "rotate_list", "shift"]) + f"_{direction}", "xs: list[int], k: int",
            "list[int]", f"xs rotated {direction} by k positions (k may exceed len(xs)).", body,
            [bug1, bug2],
            lambda r: ([r.randint(0, 9) for _ in range(r.randint(0, 6))], r.randint(0, 9)),
        )
    return FnSpec(
        rng.choice(["rotate", "rotate_list", "shift"]) + f"_{direction}_{k}", "xs: list[int]",
        "list[int]", f"xs rotated {direction} by {k} position{'s' if k != '1' else ''} (xs may be shorter).",
        body, [bug1, bug2],
        lambda r: ([r.randint(0, 9) for _ in range(r.randint(0, 6))],),
    )


WORD_CHANGES = {
    "upper": ("w.upper()", "upper-cased"),
    "capitalize": ("w.capitalize()", "capitalised"),
    "reverse": ("w[::-1]", "reversed"),
    "star": ("w + '*'", "followed by '*'"),
}


def fn_upper_every(rng):
    k = rng.randint(2, 5)
    method = rng.choice(sorted(WORD_CHANGES))
    joiner = rng.choice([" ", " ", "-", "_"])
    change, what = WORD_CHANGES[method]
    body = (f"    words = s.split()\n    return {joiner!r}.join({change} if (i + 1) % {k} == 0 else w "
            "for i, w in enumerate(words))\n")
    ordinal = ORDINALS[k]
    joined = "single spaces" if joiner == " " else repr(joiner)
    return FnSpec(
        rng.choice([f"{method}_every_{ordinal}", f"mark_{ordinal}_words", f"every_{ordinal}_{method}"]), "s: str",
        "str", f"The words of s joined by {joined}, every {ordinal} word {what}.", body,
        [(f"(i + 1) % {k}", f"i % {k}"), (f"{joiner!r}.join", "''.join")],
        lambda r: (" ".join(r.choice(WORDS[:40]) for _ in range(r.randint(k, 8))),),
    )


def fn_running(rng):
    kind = rng.choice(["sum", "max", "min", "positives"])
    if kind in ("sum", "positives"):
        step = "total += x" if kind == "sum" else "total += 1 if x > 0 else 0"
        body = (
            "    out = []\n"
            "    total = 0\n"
            "    for x in xs:\n"
            f"        {step}\n"
            "        out.append(total)\n"
            "    return out\n"
        )
        doc = ("The running totals of xs: item i is xs[0] + ... + xs[i]." if kind == "sum"
               else "Item i is how many of xs[0..i] are positive.")
        return FnSpec(
            rng.choice(["prefix_sums", "running_total", "cumulative"] if kind == "sum"
                       else ["running_positives", "positives_so_far", "count_positive_prefix"]),
            "xs: list[int]", "list[int]", doc, body,
            [(f"        {step}\n        out.append(total)\n", f"        out.append(total)\n        {step}\n"),
             ("    total = 0\n", "    total = 1 if xs else 0\n")],
            lambda r: ([r.randint(-5, 9) for _ in range(r.randint(1, 7))],),
        )
    better, worse, word = (">", "<", "largest") if kind == "max" else ("<", ">", "smallest")
    body = (
        "    out = []\n"
        "    best = None\n"
        "    for x in xs:\n"
        f"        if best is None or x {better} best:\n"
        "            best = x\n"
        "        out.append(best)\n"
        "    return out\n"
    )
    return FnSpec(
        rng.choice([f"running_{kind}", f"prefix_{kind}", f"{kind}_so_far"]), "xs: list[int]", "list[int]",
        f"Item i is the {word} of xs[0..i].", body,
        [("best = None", "best = 0"), (f"x {better} best", f"x {worse} best")],
        lambda r: ([r.randint(-9, 9) for _ in range(r.randint(1, 7))],),
    )


def fn_count_chars(rng):
    if rng.random() < 0.3:
        chars = rng.choice(["aeiou", "aeiouy"])
    else:
        chars = "".join(sorted(rng.sample("bcdeghklmnoprstuy", rng.randint(2, 4))))
    fold = rng.random() < 0.6
    text = "s.lower()" if fold else "s"
    return FnSpec(
        rng.choice(["count_vowels", "count_letters", "letter_hits"]) if chars.startswith("aeiou")
        else rng.choice(["count_letters", "letter_hits", f"count_{chars}"]),
        "s: str", "int",
        f"How many characters of s are one of '{chars}'" + (", ignoring case." if fold else " (case-sensitive)."),
        f"    return sum(1 for ch in {text} if ch in '{chars}')\n",
        [(f"in {text} if", "in s.upper() if" if not fold else "in s if"), (f"'{chars}'", f"'{chars[:-1]}'")],
        lambda r: (" ".join(r.choice(WORDS).capitalize() if r.random() < 0.4 else r.choice(WORDS).upper()
                            if r.random() < 0.2 else r.choice(WORDS) for _ in range(r.randint(1, 3))),),
    )


FIRST_ABOVE_TESTS = {">": ("greater than", ">="), ">=": ("at least", ">"), "<": ("less than", "<="),
                     "<=": ("at most", "<")}


def fn_first_above(rng):
    op = rng.choice(sorted(FIRST_ABOVE_TESTS))
    last = rng.random() < 0.5
    missing = rng.choice(["-1", "None"])
    phrase, bug_op = FIRST_ABOVE_TESTS[op]
    loop = "    for i in range(len(xs) - 1, -1, -1):\n" if last else "    for i in range(len(xs)):\n"
    body = (
        loop
        + f"        if xs[i] {op} t:\n"
        "            return i\n"
        f"    return {missing}\n"
    )

    def args(r):
        xs = [r.randint(0, 9) for _ in range(r.randint(1, 7))]
        t = r.choice(xs) if r.random() < 0.6 else r.randint(0, 10)
        return (xs, t)

    which = "last" if last else "first"
    return FnSpec(
        rng.choice([f"{which}_index", f"find_{which}", f"{which}_match"]), "xs: list[int], t: int",
        "int" if missing == "-1" else "int | None",
        f"Index of the {which} item of xs {phrase} t, or {missing} if none is.", body,
        [(f"xs[i] {op} t", f"xs[i] {bug_op} t"),
         (f"    return {missing}\n", "    return len(xs)\n" if missing == "-1" else "    return -1\n")],
        args,
    )


def fn_window_sums(rng):
    k = rng.randint(2, 5)
    agg = rng.choice(["sum", "max", "min"])
    noun = {"sum": "Sums", "max": "Maxima", "min": "Minima"}[agg]
    return FnSpec(
        rng.choice([f"window_{agg}s", f"rolling_{agg}", f"{agg}_of_runs"]), "xs: list[int]", "list[int]",
        f"{noun} of every {k} consecutive items of xs, in order.",
        f"    return [{agg}(xs[i:i + {k}]) for i in range(len(xs) - {k} + 1)]\n",
        [(f"range(len(xs) - {k} + 1)", f"range(len(xs) - {k})"), (f"xs[i:i + {k}]", f"xs[i:i + {k - 1}]")],
        lambda r: ([r.randint(0, 9) for _ in range(r.randint(k, 8))],),
    )


FN_TEMPLATES = [
    ("sum_multiples", fn_sum_multiples),
    ("run_length", fn_run_length),
    ("dedupe", fn_dedupe),
    ("chunk", fn_chunk),
    ("parse_pairs", fn_parse_pairs),
    ("clamp", fn_clamp),
    ("long_words", fn_long_words),
    ("second_distinct", fn_second_largest),
    ("format_duration", fn_format_duration),
    ("merge_intervals", fn_merge_intervals),
    ("balanced", fn_balanced),
    ("rotate", fn_rotate),
    ("every_kth_word", fn_upper_every),
    ("running", fn_running),
    ("count_chars", fn_count_chars),
    ("first_above", fn_first_above),
    ("window_sums", fn_window_sums),
]


def load_function(source: str, name: str) -> Callable:
    namespace: dict = {}
    exec(compile(source, "<solution>", "exec"), namespace)  # noqa: S102 - our own generated code
    return namespace[name]


def call_text(name: str, args: tuple) -> str:
    return f"{name}({', '.join(repr(a) for a in args)})"


def expected_outcome(fn: Callable, args: tuple) -> tuple:
    """('ok', value) or ('error', exception name): calling fn on a copy of args."""
    try:
        return ("ok", fn(*copy.deepcopy(args)))
    except Exception as e:  # a buggy version may raise; that is a failing test
        return ("error", type(e).__name__)


def passes(fn: Callable, case: tuple) -> bool:
    """Whether `assert <call> == <expected>` would pass for fn."""
    status, value = expected_outcome(fn, case[0])
    return status == "ok" and value == case[2]


def run_tests(source: str, tests: list) -> bool:
    """Whether every assert line passes against `source` (a fresh namespace)."""
    namespace: dict = {}
    try:
        exec(compile(source, "<solution>", "exec"), namespace)  # noqa: S102
        for test in tests:
            exec(compile(test, "<test>", "exec"), namespace)  # noqa: S102
    except Exception:
        return False
    return True


def make_cases(spec: FnSpec, rng: random.Random, n: int) -> list:
    """Up to `n` distinct (args, call text, expected value) from the reference."""
    ref = load_function(spec.source(), spec.name)
    cases, seen = [], set()
    for _ in range(200):
        if len(cases) == n:
            break
        args = spec.args(rng)
        call = call_text(spec.name, args)
        if call in seen:
            continue
        status, value = expected_outcome(ref, args)
        if status != "ok" or len(repr(value)) > 60:
            continue
        seen.add(call)
        cases.append((args, call, value))
    return cases


def discriminating(cases: list) -> bool:
    """Whether the expected values differ, so that no constant function passes every test."""
    return len({repr(value) for _, _, value in cases}) > 1


def assert_line(case: tuple) -> str:
    _, call, value = case
    return f"assert {call} == {value!r}"


def code_target(spec: FnSpec, cases: list) -> dict:
    solution = spec.source()
    tests = [assert_line(c) for c in cases]
    if not run_tests(solution, tests):
        raise AssertionError(f"reference {spec.name} fails its own tests")
    return {"entry_point": spec.name, "solution": solution, "tests": tests}


def logic_key(template: str, spec: FnSpec) -> str:
    """What the model must write, without the function's name: template, signature types and body."""
    return f"{template}\n({spec.params}) -> {spec.returns}\n{spec.body}"


def gen_function_synthesis(rng: random.Random) -> Item:
    while True:
        key, make = rng.choice(FN_TEMPLATES)
        spec = make(rng)
        cases = make_cases(spec, rng, rng.randint(3, 5))
        if len(cases) >= 3 and discriminating(cases):
            break
    _, call, value = cases[0]
    text = f"{spec.header()}    \"\"\"{spec.doc}\n    Example: {call} == {value!r}\n    \"\"\""
    logic = logic_key(key, spec)
    return Item(text, code_target(spec, cases), {"template": key}, logic=logic, identity=logic)


def gen_bug_fix(rng: random.Random) -> Item:
    while True:
        key, make = rng.choice(FN_TEMPLATES)
        spec = make(rng)
        bug = rng.randrange(len(spec.bugs))
        old, new = spec.bugs[bug]
        if spec.body.count(old) != 1:
            raise AssertionError(f"{key}: bug text {old!r} must occur once in the body")
        buggy_body = spec.body.replace(old, new)
        buggy_source = spec.source(buggy_body)
        buggy = load_function(buggy_source, spec.name)
        # The shown failing test is the first call the bug gets wrong (a wrong
        # value or an exception), exactly as its assert would judge it.
        candidates = make_cases(spec, rng, 8)
        failing = [c for c in candidates if not passes(buggy, c)]
        if not failing:
            continue
        shown = failing[0]
        others = [c for c in candidates if c is not shown][: rng.randint(2, 4)]
        if len(others) < 2 or not discriminating([shown] + others):
            continue
        if run_tests(buggy_source, [assert_line(shown)]):
            raise AssertionError(f"{key}: the shown test passes on the buggy version")
        break
    buggy_text = f"{spec.header()}    \"\"\"{spec.doc}\"\"\"\n{buggy_body}".rstrip("\n")
    text = f"{buggy_text}\n# Failing: {assert_line(shown)}"
    logic = logic_key(key, spec)
    return Item(text, code_target(spec, [shown] + others), {"template": key, "bug": bug},
                logic=logic, identity=f"{logic}\nbug {bug}")


# ---------------------------------------------------------------------------
# logistics/rate_quote: rate card + parcel -> price
# ---------------------------------------------------------------------------

CENT = Decimal("0.01")
DIM_DIVISOR = 5000


def money(x: Decimal) -> Decimal:
    return x.quantize(CENT, rounding=ROUND_HALF_UP)


def gen_rate_quote(rng: random.Random) -> Item:
    band = rng.choice([5, 10, 20])
    card = []
    for z in sorted(rng.sample(range(1, 6), 2)):
        low = money(Decimal(rng.randint(120, 520)) / 100)
        high = money(low * Decimal(rng.randint(75, 92)) / 100)
        card.append((z, low, high))
    fuel = rng.randint(5, 22)
    zone, low, high = rng.choice(card)
    dims = sorted((rng.randint(1, 8) * 10 for _ in range(3)), reverse=True)
    dim_kg = Decimal(dims[0] * dims[1] * dims[2]) / DIM_DIVISOR
    # Actual weight in 0.1 kg steps, sometimes above and sometimes below the
    # dimensional weight so both branches of max() occur.
    actual = Decimal(rng.randint(5, 400)) / 10
    actual_text = f"{actual:.1f}"
    billable = max(actual, dim_kg)
    rate = low if billable <= band else high
    price = money(billable * rate * (100 + fuel) / 100)
    rates = ", ".join(f"Z{z} {lo}/{hi}" for z, lo, hi in card)
    text = (
        f"Break {band} kg. {rates}. Fuel {fuel}%. "
        f"To Z{zone}: {dims[0]}x{dims[1]}x{dims[2]} cm, {actual_text} kg."
    )
    meta = {"dim_kg": float(dim_kg), "billable_kg": float(billable), "rate": float(rate), "fuel_pct": fuel}
    return Item(text, f"{price:.2f}", meta)


# ---------------------------------------------------------------------------
# logistics/delivery_date: order time, cut-off, transit days, holidays -> date
# ---------------------------------------------------------------------------

DAY_NAMES = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
FIRST_DAY = dt.date(2025, 1, 1)
LAST_DAY = dt.date(2026, 12, 31)


def is_business_day(day: dt.date, holidays: set) -> bool:
    return day.weekday() < 5 and day not in holidays


def add_business_days(day: dt.date, n: int, holidays: set) -> dt.date:
    while n > 0:
        day += dt.timedelta(days=1)
        if is_business_day(day, holidays):
            n -= 1
    return day


def gen_delivery_date(rng: random.Random) -> Item:
    order_day = FIRST_DAY + dt.timedelta(days=rng.randint(0, (LAST_DAY - FIRST_DAY).days))
    order_time = dt.time(rng.randint(6, 21), rng.choice(range(0, 60, 5)))
    cutoff = dt.time(rng.choice([12, 14, 15, 16, 17, 18]), rng.choice([0, 30]))
    transit = rng.randint(1, 5)
    # Holidays drawn from the weekdays around the order so that they matter.
    window = [order_day + dt.timedelta(days=d) for d in range(0, transit + 8)]
    weekdays = [d for d in window if d.weekday() < 5]
    holidays = set(rng.sample(weekdays, rng.choice([0, 1, 1, 2])))
    if is_business_day(order_day, holidays) and order_time <= cutoff:
        ship = order_day
    else:
        ship = add_business_days(order_day, 1, holidays)
    delivery = add_business_days(ship, transit, holidays)
    hol = ", ".join(d.isoformat() for d in sorted(holidays)) or "none"
    text = (
        f"Order {DAY_NAMES[order_day.weekday()]} {order_day.isoformat()} {order_time.strftime('%H:%M')}, "
        f"cut-off {cutoff.strftime('%H:%M')}, transit {transit} business day{'s' if transit > 1 else ''}, "
        f"holidays: {hol}."
    )
    return Item(text, delivery.isoformat(), {"ship_date": ship.isoformat(), "weekday": DAY_NAMES[delivery.weekday()]})


# ---------------------------------------------------------------------------
# logistics/carrier_selection: options + requirements -> cheapest valid letter
# ---------------------------------------------------------------------------

CARRIERS = ["Nordex", "SwiftPost", "CargoLine", "BlueRoute", "Parcelo", "TransEuro", "QuickHaul", "Orbit", "Velox", "Kestrel"]
FEATURES = ["tracked", "insured", "signature"]


def gen_carrier_selection(rng: random.Random) -> Item:
    while True:
        n = rng.choice([3, 4])
        deadline = rng.randint(2, 5)
        required = sorted(rng.sample(FEATURES, rng.choice([0, 1, 1, 2])))
        names = rng.sample(CARRIERS, n)
        prices = rng.sample(range(800, 9000), n)
        options = []
        for name, cents in zip(names, prices):
            days = rng.randint(1, 7)
            feats = sorted(f for f in FEATURES if rng.random() < 0.5)
            options.append({"name": name, "price": Decimal(cents) / 100, "days": days, "features": feats})
        ok = [o for o in options if o["days"] <= deadline and all(f in o["features"] for f in required)]
        if not ok:
            continue
        best = min(ok, key=lambda o: o["price"])
        cheapest = min(options, key=lambda o: o["price"])
        # Keep the task a real trade-off: the cheapest option overall must
        # fail a requirement, except in one item in eight.
        if best is cheapest and rng.random() >= 0.125:
            continue
        break
    texts = []
    for o in options:
        feats = "+".join(o["features"]) or "basic"
        texts.append(f"{o['name']} {o['price']:.2f}, {o['days']} day{'s' if o['days'] > 1 else ''}, {feats}")
    letter = "ABCD"[options.index(best)]
    need = f"within {deadline} days" + "".join(f", {f}" for f in required)
    lines = [f"Need: {need}."] + [f"{l}. {t}" for l, t in zip("ABCD", texts)]
    meta = {"options": texts, "feasible": ["ABCD"[options.index(o)] for o in ok]}
    return Item("\n".join(lines), letter, meta)


# ---------------------------------------------------------------------------
# logistics/extraction: shipping notice -> JSON fields
# ---------------------------------------------------------------------------

CITIES = [
    "Rotterdam", "Hamburg", "Antwerp", "Lyon", "Milan", "Madrid", "Porto", "Warsaw", "Vienna",
    "Prague", "Budapest", "Zurich", "Munich", "Gdansk", "Valencia", "Marseille", "Turin", "Leipzig",
    "Brno", "Dublin", "Le Havre", "Bilbao", "Genoa", "Lisbon", "Oslo", "Helsinki", "Riga", "Sofia",
]
UNITS = {"pallets": "pallet", "cartons": "carton", "crates": "crate", "boxes": "box", "drums": "drum", "parcels": "parcel"}
SERVICES = ["express", "standard", "economy"]


def gen_extraction(rng: random.Random) -> Item:
    origin, dest = rng.sample(CITIES, 2)
    pieces = rng.randint(1, 40)
    unit = rng.choice(sorted(UNITS))
    if rng.random() < 0.3:
        weight = Decimal(rng.randint(10, 2000)) / 2
    else:
        weight = Decimal(rng.randint(2, 4000))
    wtext = f"{weight:,}" if weight >= 1000 else str(weight)
    service = rng.choice(SERVICES)
    ref = rng.randint(1000, 99999)
    day = rng.randint(1, 28)
    month = rng.choice(["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"])
    n = f"{pieces} {unit}" if pieces > 1 else f"1 {UNITS[unit]}"
    template = rng.randrange(6)
    text = [
        f"Booking {ref}: {n}, {wtext} kg, {origin} to {dest}, {service}.",
        f"Please collect {n} (gross {wtext} kg) in {origin} on {day} {month} for {service} delivery to {dest}.",
        f"Shipment {origin} -> {dest}: {n} weighing {wtext} kg total. Service: {service}. Ref {ref}.",
        f"{service.capitalize()} service, {origin} to {dest}, {n}, total weight {wtext} kg.",
        f"Ref {ref}. Deliver {n} ({wtext} kg) from {origin} to {dest} by {day} {month}, {service}.",
        f"Pickup {origin}, drop {dest}. {n}, {wtext} kg, {service} service, ready {day} {month}.",
    ][template]
    weight_value = int(weight) if weight == weight.to_integral_value() else float(weight)
    target = {"origin": origin, "destination": dest, "weight_kg": weight_value, "pieces": pieces, "service": service}
    return Item(text, target, {"template": template})


# ---------------------------------------------------------------------------
# logistics/route: a depot, 4-7 stops, a distance table -> the shortest tour
# ---------------------------------------------------------------------------

STOP_NAMES = "ABCDEFG"


def ceil_distance(p: tuple, q: tuple) -> int:
    """ceil of the Euclidean distance, in exact integer arithmetic.

    ceil keeps the triangle inequality: ceil(a) + ceil(b) >= ceil(a + b) >= ceil(c).
    """
    sq = (p[0] - q[0]) ** 2 + (p[1] - q[1]) ** 2
    root = math.isqrt(sq)
    return root if root * root == sq else root + 1


def tour_length(dist: list, order: list) -> int:
    return sum(dist[a][b] for a, b in zip(order, order[1:]))


def shortest_tour(dist: list) -> tuple:
    """(length, node indices from 0 back to 0) of a shortest closed tour, by brute force.

    Permutations come in lexicographic order and only a strictly shorter tour
    replaces the best, so the tour returned is the lexicographically first optimal one.
    """
    best = None
    for perm in itertools.permutations(range(1, len(dist))):
        order = [0, *perm, 0]
        length = tour_length(dist, order)
        if best is None or length < best[0]:
            best = (length, order)
    return best


def nearest_neighbour_tour(dist: list) -> int:
    here, left, length = 0, set(range(1, len(dist))), 0
    while left:
        nxt = min(left, key=lambda j: (dist[here][j], j))
        length += dist[here][nxt]
        left.remove(nxt)
        here = nxt
    return length + dist[here][0]


def gen_route(rng: random.Random) -> Item:
    while True:
        n = rng.randint(4, 7)
        points: list = []
        while len(points) < n + 1:
            p = (rng.randint(0, 60), rng.randint(0, 60))
            if p not in points:
                points.append(p)
        dist = [[ceil_distance(p, q) for q in points] for p in points]
        optimum, order = shortest_tour(dist)
        greedy = nearest_neighbour_tour(dist)
        # Keep most items where visiting the nearest stop next is not optimal.
        if greedy == optimum and rng.random() < 0.7:
            continue
        break
    nodes = ["Depot", *STOP_NAMES[:n]]
    for i, row in enumerate(dist):
        for j, d in enumerate(row):
            if any(d > row[k] + dist[k][j] for k in range(n + 1)):
                raise AssertionError("distance table breaks the triangle inequality")
    rows = [f"{name} {' '.join(str(d) for d in row)}" for name, row in zip(nodes, dist)]
    text = f"Stops {', '.join(nodes[1:])}. km (columns {' '.join(nodes)}):\n" + "\n".join(rows)
    target = {
        "nodes": nodes,
        "distances": dist,
        "optimum": optimum,
        "tour": [nodes[i] for i in order],
    }
    return Item(text, target, {"nearest_neighbour_km": greedy})


# ---------------------------------------------------------------------------
# logistics/load_planning: parcels, vehicle capacity -> fewest vehicles
# ---------------------------------------------------------------------------


def first_fit_decreasing(weights: list, capacity: int) -> int:
    loads: list = []
    for w in sorted(weights, reverse=True):
        for i, load in enumerate(loads):
            if load + w <= capacity:
                loads[i] += w
                break
        else:
            loads.append(w)
    return len(loads)


def optimal_packing(weights: list, capacity: int) -> list:
    """A minimum-vehicle assignment (lists of item indices), by exhaustive branch and bound.

    Items go heaviest first into each open vehicle or one new vehicle (opening
    at most one new vehicle per item removes symmetric duplicates); a branch
    stops when it cannot beat the best plan found so far.
    """
    order = sorted(range(len(weights)), key=lambda i: (-weights[i], i))
    lower = -(-sum(weights) // capacity)
    best: list = [None]

    def place(k: int, bins: list, loads: list) -> None:
        if best[0] is not None and (len(best[0]) == lower or len(bins) >= len(best[0])):
            return
        if k == len(order):
            best[0] = [sorted(b) for b in bins]
            return
        item = order[k]
        for b in range(len(bins)):
            if loads[b] + weights[item] <= capacity:
                bins[b].append(item)
                loads[b] += weights[item]
                place(k + 1, bins, loads)
                loads[b] -= weights[item]
                bins[b].pop()
        bins.append([item])
        loads.append(weights[item])
        place(k + 1, bins, loads)
        bins.pop()
        loads.pop()

    place(0, [], [])
    return sorted(best[0])


def tight_weights(rng: random.Random, capacity: int) -> list:
    """Weights that fill 2-3 vehicles almost exactly, shuffled: where greedy packing goes wrong."""
    weights = []
    for _ in range(rng.randint(2, 3)):
        room = capacity - rng.randint(0, capacity // 20)
        parts = rng.randint(2, 3)
        cuts = sorted(rng.sample(range(capacity // 10, room - capacity // 10), parts - 1))
        weights += [b - a for a, b in zip([0, *cuts], [*cuts, room])]
    rng.shuffle(weights)
    return weights


def gen_load_planning(rng: random.Random) -> Item:
    want_greedy_fail = rng.random() < 0.4
    while True:
        capacity = rng.choice([400, 500, 600, 750, 800, 1000, 1200, 1500])
        if rng.random() < 0.6:
            weights = tight_weights(rng, capacity)
        else:
            weights = [rng.randint(capacity // 10, capacity * 7 // 10) for _ in range(rng.randint(5, 9))]
        if not 5 <= len(weights) <= 9 or min(weights) < 1:
            continue
        plan = optimal_packing(weights, capacity)
        greedy = first_fit_decreasing(weights, capacity)
        if (greedy > len(plan)) == want_greedy_fail:
            break
    ids = [f"P{i + 1}" for i in range(len(weights))]
    text = f"Vehicle capacity {capacity} kg. Parcels (kg): " + ", ".join(f"{p} {w}" for p, w in zip(ids, weights)) + "."
    target = {
        "capacity_kg": capacity,
        "parcels": dict(zip(ids, weights)),
        "optimum": len(plan),
        "plan": [[ids[i] for i in b] for b in plan],
    }
    return Item(text, target, {"first_fit_decreasing": greedy})


# ---------------------------------------------------------------------------
# Suite definitions
# ---------------------------------------------------------------------------

STOP_AT_NEWLINE = ["\n"]
# Code answers are whole functions: a markdown fence opens the answer in the
# prompt and the closing fence stops it; the example's `{target}` is the
# scorer's target text, the reference solution (which ends in a newline).
CODE_PROMPT_TAIL = "\n\n{examples}### Task\n{input}\n### Solution\n```python\n"
CODE_EXAMPLE = "### Task\n{input}\n### Solution\n```python\n{target}```"
CODE_STOP = ["```"]

SUITES = [
    SuiteSpec(
        name="coding",
        version="1.1",
        description="Code reasoning, writing and fixing: predict a Python call's return value; classify a CI "
        "log; write a function from its specification; fix a function's bug.",
        defaults={
            "chat": False,
            "stop": STOP_AT_NEWLINE,
        },
        categories=[
            Category(
                name="output_prediction",
                generate=gen_output_prediction,
                description="A short Python function and a call (CRUXEval style: string ops, comprehensions, "
                "arithmetic, dicts, slicing, loops, mutation). The answer is the repr() of the return value.",
                verified="The generator executes the code (`exec` in a fresh namespace, then `eval` of the call) "
                "and stores `repr()` of the result. Scored by `exact` (case-sensitive; whitespace, a trailing "
                "`.` and wrapping quotes are normalised on both sides) on the first line of the answer.",
                explain=lambda it: f"executing the code returns a `{it.meta['type']}` whose `repr()` is the target",
                settings={
                    "prompt": "Write the value each Python call returns.\n\n{examples}Code:\n{input}\nAnswer:",
                    "example": "Code:\n{input}\nAnswer: {target}",
                    "few_shot": 4,
                    "max_tokens": 40,
                    "scorer": {"kind": "exact", "case_sensitive": True},
                    "extract": "first_line",
                },
            ),
            Category(
                name="ci_log_triage",
                generate=gen_ci_log_triage,
                description="A CI log excerpt (rustc/cargo, gcc, go, javac, pytest, jest, eslint, ruff, clippy, "
                "mypy, tsc, pyright, npm, pip, CI runners, the kernel's OOM killer) to classify with one label: "
                + ", ".join(CI_LABELS) + ".",
                verified="The label is the one whose template wrote the log; identifiers, file names, line "
                "numbers and versions are random. Scored by `exact` (case-insensitive) on the first line.",
                explain=lambda it: f"written by a `{it.meta['tool']}` template of this label",
                settings={
                    "prompt": "Label each CI log: " + ", ".join(CI_LABELS) + ".\n\n{examples}Log:\n{input}\nLabel:",
                    "example": "Log:\n{input}\nLabel: {target}",
                    "few_shot": 4,
                    "max_tokens": 12,
                    "scorer": {"kind": "exact"},
                    "extract": "first_line",
                },
            ),
            Category(
                name="function_synthesis",
                generate=gen_function_synthesis,
                description="A signature and a docstring (one-line specification and one example call) of a "
                "routine function: " + ", ".join(k.replace("_", " ") for k, _ in FN_TEMPLATES) + ", with random "
                "names and constants. The answer is the function.",
                verified="The target holds a reference solution and 3-5 `assert` tests whose expected values "
                "come from executing the reference on random arguments; the generator re-runs the asserts "
                "against the reference. Scored by `code`: the answer is run against the tests.",
                explain=lambda it: f"`{it.meta['template']}` template; the tests' expected values come from running the reference",
                settings={
                    "prompt": "Write each function so that its example holds."
                    + CODE_PROMPT_TAIL,
                    "example": CODE_EXAMPLE,
                    "few_shot": 2,
                    "max_tokens": 160,
                    "stop": CODE_STOP,
                    "scorer": {"kind": "code"},
                },
                answer=lambda t: t["solution"],
            ),
            Category(
                name="bug_fix",
                generate=gen_bug_fix,
                description="A function from the same templates with one injected bug (off-by-one range or "
                "slice, `<` for `<=`, wrong operator or variable, wrong initial or default value, a dropped "
                "edge-case check or line) and the assert it fails. The answer is the fixed function.",
                verified="The generator checks that the buggy version fails the shown assert (a wrong value "
                "or an exception) and that the reference passes it and 2-4 more asserts, all with expected "
                "values from executing the reference. Scored by `code`: the answer is run against the tests.",
                explain=lambda it: f"`{it.meta['template']}` template, bug {it.meta['bug']}; the reference passes every test",
                settings={
                    "prompt": "Fix the bug in each function; the failing test shows the "
                    "expected result." + CODE_PROMPT_TAIL,
                    "example": CODE_EXAMPLE,
                    "few_shot": 1,
                    "max_tokens": 160,
                    "stop": CODE_STOP,
                    "scorer": {"kind": "code"},
                },
                answer=lambda t: t["solution"],
            ),
        ],
    ),
    SuiteSpec(
        name="logistics",
        # 1.2: extraction grown to 1,000 train and 700 test items.
        version="1.2",
        description="Shipping operations: rate quotes, delivery dates, carrier selection, notice extraction, "
        "delivery routes, vehicle load plans.",
        defaults={
            "chat": False,
            "stop": STOP_AT_NEWLINE,
        },
        categories=[
            Category(
                name="rate_quote",
                generate=gen_rate_quote,
                description="A compact rate card (two zones, each with a per-kg rate up to a weight break and a lower "
                "rate above it, a fuel surcharge) and a parcel (dimensions, actual weight, zone) to price.",
                verified="Computed with exact decimals: dim kg = L*W*H/5000, billable = max(actual, dim), "
                "rate = the zone's rate for the billable weight, price = billable * rate * (1 + fuel%), "
                "rounded half-up to cents. Scored by `numeric` (abs_tol 0.01) on the last number of the answer.",
                explain=lambda it: (f"dim {it.meta['dim_kg']} kg, billable {it.meta['billable_kg']} kg at "
                                    f"{it.meta['rate']:.2f}/kg, plus {it.meta['fuel_pct']}% fuel"),
                settings={
                    "prompt": "Price = billable kg x rate per kg, plus fuel %, in EUR to 2 decimals. Billable kg = "
                    "max(kg, L*W*H/5000). Zone rate a/b: a up to the break, b above it.\n\n{examples}{input}\nPrice:",
                    "example": "{input}\nPrice: {target}",
                    "few_shot": 3,
                    "max_tokens": 16,
                    "scorer": {"kind": "numeric", "abs_tol": 0.01},
                    "extract": "last_number",
                },
            ),
            Category(
                name="delivery_date",
                generate=gen_delivery_date,
                description="Order day and time, the shipping cut-off, transit business days and holidays; "
                "the answer is the delivery date.",
                verified="Computed with `datetime`: an order after the cut-off, or on a weekend or holiday, "
                "ships the next business day; delivery is the ship day plus the transit business days "
                "(Mon-Fri, not holidays). Scored by `exact` on the first line (YYYY-MM-DD).",
                explain=lambda it: f"ships {it.meta['ship_date']}, arrives {it.meta['weekday']} {it.target}",
                settings={
                    "prompt": "Give each delivery date. Orders after the cut-off or on a non-business day ship "
                    "the next business day; then add the transit business days (Mon-Fri, not holidays)."
                    "\n\n{examples}{input}\nDelivery:",
                    "example": "{input}\nDelivery: {target}",
                    "few_shot": 3,
                    "max_tokens": 16,
                    "scorer": {"kind": "exact"},
                    "extract": "first_line",
                },
            ),
            Category(
                name="carrier_selection",
                generate=gen_carrier_selection,
                description="3-4 carrier options (price, transit days, service features) and a requirement "
                "(deadline, sometimes tracked/insured/signature); the answer is the letter of the cheapest "
                "option meeting every requirement.",
                verified="The generator filters the options by the requirements and takes the cheapest (prices "
                "are distinct and at least one option qualifies, so exactly one answer is correct; in 7 of 8 "
                "items the cheapest option overall fails a requirement). Scored by `choice` (the letter, or "
                "the option's text) against `meta.options`.",
                explain=lambda it: f"options meeting the need: {', '.join(it.meta['feasible'])}; {it.target} is the cheapest",
                settings={
                    "prompt": "Options: price EUR, transit days, features. Answer with the letter of the cheapest "
                    "option meeting every need."
                    "\n\n{examples}{input}\nAnswer:",
                    "example": "{input}\nAnswer: {target}",
                    "few_shot": 3,
                    "max_tokens": 8,
                    "scorer": {"kind": "choice"},
                },
            ),
            Category(
                name="extraction",
                generate=gen_extraction,
                description="A free-text shipping notice (six phrasings, with distracting reference numbers and "
                "dates) to turn into JSON: origin, destination, weight_kg, pieces, service.",
                verified="The target is the values the notice was written from. Scored by `json` with per-field "
                "credit (strings case-insensitive, numbers within 0.01) on the first JSON object of the answer.",
                explain=lambda it: "the values the notice was written from",
                # `distill-gate plan --teacher-accuracy 0.6 --retention 1.0 --disagreement 0.1`
                # needs 678 paired items for 80% power at min_retention 0.95, confidence 0.95.
                train_size=1000,
                test_size=700,
                settings={
                    "prompt": "Extract origin, destination, weight_kg, pieces and service as JSON."
                    "\n\n{examples}Notice: {input}\nJSON:",
                    "example": "Notice: {input}\nJSON: {target}",
                    "few_shot": 3,
                    "max_tokens": 64,
                    "scorer": {"kind": "json", "abs_tol": 0.01},
                },
            ),
            Category(
                name="route",
                generate=gen_route,
                description="A depot and 4-7 stops with a symmetric table of road distances (km, rounded up "
                "from random map points, so the triangle inequality holds); the answer is a shortest round "
                "trip from the depot through every stop and back.",
                verified="The optimum is computed exactly by trying every visiting order; the target's tour is "
                "an optimal one (nearest-neighbour is not optimal in most items, see `meta`). Scored by `route`: "
                "the answer's node names are read in order from its first line and the tour's length is "
                "compared with the optimum.",
                explain=lambda it: (f"optimum {it.target['optimum']} km; nearest-neighbour gives "
                                    f"{it.meta['nearest_neighbour_km']} km"),
                settings={
                    "prompt": "Give the shortest round trip from Depot through every stop once and back to "
                    "Depot. Distances in km; rows and columns in the listed order.\n\n{examples}{input}\nTour:",
                    "example": "{input}\nTour: {target}",
                    "few_shot": 2,
                    "max_tokens": 48,
                    "scorer": {"kind": "route"},
                    "extract": "first_line",
                },
                answer=lambda t: " -> ".join(t["tour"]),
            ),
            Category(
                name="load_planning",
                generate=gen_load_planning,
                description="5-9 parcels (kg) and identical vehicles of a given capacity; the answer assigns "
                "the parcels to as few vehicles as possible.",
                verified="The minimum number of vehicles is computed exactly by branch-and-bound over every "
                "assignment; the target's plan is an optimal one. In about 40% of the items "
                "first-fit-decreasing needs an extra vehicle (`meta.first_fit_decreasing`). Scored by "
                "`load_plan`: the answer's groups are checked for capacity and completeness and their "
                "number compared with the optimum.",
                explain=lambda it: (f"optimum {it.target['optimum']} vehicles; first-fit-decreasing uses "
                                    f"{it.meta['first_fit_decreasing']}"),
                settings={
                    "prompt": "Assign the parcels to as few vehicles as possible; no vehicle may carry more "
                    "than its capacity.\n\n{examples}{input}\nPlan:",
                    "example": "{input}\nPlan: {target}",
                    "few_shot": 3,
                    "max_tokens": 64,
                    "scorer": {"kind": "load_plan"},
                    "extract": "first_line",
                },
                answer=lambda t: "; ".join(f"V{i}: {' '.join(group)}" for i, group in enumerate(t["plan"], 1)),
            ),
        ],
    ),
]


# ---------------------------------------------------------------------------
# Splits, files
# ---------------------------------------------------------------------------


def shares(total: int, parts: int) -> list:
    """`total` split as evenly as possible over `parts` (earlier parts get the remainder)."""
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


TEST_SHARE = 0.2


def logic_in_test(seed: int, suite: str, logic: str) -> bool:
    """Whether this function logic belongs to the test side (about TEST_SHARE of all logics).

    A seeded hash of the logic alone (not the category), so a function asked
    in a test task never appears in train, neither to write nor to fix.
    """
    digest = hashlib.sha256(f"{seed}:{suite}:{logic}".encode()).digest()
    return int.from_bytes(digest[:8], "big") < TEST_SHARE * 2**64


def draw(suite: str, category: Category, split: str, n: int, seed: int, taken: set) -> list:
    """`n` items with inputs not in `taken` (which is updated), from the split's own stream.

    Code items (those with a `logic`) are drawn only from their split's side
    of the logic partition, and test never repeats an identity.
    """
    rng = random.Random(f"{seed}:{suite}:{category.name}:{split}")
    items = []
    identities: set = set()
    misses = 0
    while len(items) < n:
        item = category.generate(rng)
        if item.logic is not None and (logic_in_test(seed, suite, item.logic) != (split == "test")
                                       or (split == "test" and item.identity in identities)):
            misses += 1
            if misses > 50 * (n + 100):
                sys.exit(f"{suite}/{category.name}: cannot find {n} distinct {split} tasks; grow the templates")
            continue
        if item.input in taken:
            misses += 1
            if misses > 50 * (n + 100):
                sys.exit(f"{suite}/{category.name}: cannot find {n} distinct {split} inputs; grow the templates")
            continue
        taken.add(item.input)
        identities.add(item.identity)
        items.append(item)
    return items


def task_line(task_id: str, category: str, item: Item) -> str:
    record = {"id": task_id, "category": category, "input": item.input, "target": item.target}
    if item.meta:
        record["meta"] = item.meta
    return json.dumps(record, ensure_ascii=False)


def toml_string(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)


def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return toml_string(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"cannot write {v!r} as TOML")


def suite_toml(spec: SuiteSpec, seed: int, args_text: str) -> str:
    lines = [
        f"# Generated by suites/generate.py (seed {seed}{args_text}); do not edit by hand.",
        f"name = {toml_string(spec.name)}",
        f"version = {toml_string(spec.version)}",
        f"description = {toml_string(spec.description)}",
        "",
        "[defaults]",
    ]
    lines += [f"{k} = {toml_value(v)}" for k, v in spec.defaults.items()]
    for cat in spec.categories:
        lines += ["", f"[categories.{cat.name}]"]
        lines += [f"{k} = {toml_value(v)}" for k, v in cat.settings.items()]
    return "\n".join(lines) + "\n"


def example_block(cat: Category, item: Item) -> str:
    target = json.dumps(item.target) if isinstance(item.target, dict) else str(item.target)
    out = f"```text\n{item.input}\n```\n\nTarget: `{target}` ({cat.explain(item)})"
    if cat.answer is not None:
        text = cat.answer(item.target)
        out += (f"\n\nAs an answer (and in few-shot examples):\n\n```text\n{text.rstrip()}\n```" if "\n" in text
                else f"\n\nAs an answer (and in few-shot examples): `{text}`")
    return out


def suite_readme(spec: SuiteSpec, seed: int, counts: dict, examples: dict, args_text: str) -> str:
    total_train = sum(c["train"] for c in counts.values())
    total_test = sum(c["test"] for c in counts.values())
    out = [
        f"# `{spec.name}` suite",
        "",
        spec.description,
        "",
        "Generated by `python3 suites/generate.py` "
        f"(seed {seed}{args_text}); every file in this directory is its output, so edit the generator, "
        "not the files. `python3 suites/generate.py --check` verifies that they match.",
        "",
        f"| category | train | test |",
        "|---|---:|---:|",
    ]
    for cat in spec.categories:
        out.append(f"| `{cat.name}` | {counts[cat.name]['train']} | {counts[cat.name]['test']} |")
    out += [f"| **total** | {total_train} | {total_test} |", ""]
    out += [
        "Prompts are plain completions (`chat = false`) with few-shot examples drawn from `train.jsonl`",
        "(same category) and a small `max_tokens`, so that even a small model's answer is extractable:",
        "one answer per line (`stop = [\"\\n\"]`), except code answers, which are a function in a",
        "markdown fence the prompt opens (`stop = [\"```\"]`). See `suite.toml` for each category's exact",
        "template.",
        "",
        "## Categories",
        "",
    ]
    for cat in spec.categories:
        out += [
            f"### `{cat.name}`",
            "",
            cat.description,
            "",
            f"Verified: {cat.verified}",
            "",
            f"Example (`{examples[cat.name][0]}`):",
            "",
            example_block(cat, examples[cat.name][1]),
            "",
        ]
    out += [
        "## Adding categories",
        "",
        "Each category is one function `gen_<category>(rng) -> Item` in `suites/generate.py` plus one",
        "`Category(...)` entry (prompt settings and scorer) in `SUITES`. `python3 suites/verify_targets.py`",
        "re-checks the code, route and load-plan targets with independent solvers.",
        "",
    ]
    return "\n".join(out)


def build(seed: int, n_train: int, n_test: int, only: str | None) -> dict:
    """Every file's path (relative to suites/) and contents."""
    files = {}
    non_default = []
    if seed != SEED:
        non_default.append(f"--seed {seed}")
    if n_train != DEFAULT_TRAIN:
        non_default.append(f"--train {n_train}")
    if n_test != DEFAULT_TEST:
        non_default.append(f"--test {n_test}")
    args_text = (", " + " ".join(non_default)) if non_default else ""
    for spec in SUITES:
        if only and spec.name != only:
            continue
        k = len(spec.categories)
        lines = {"train": [], "test": []}
        counts, examples = {}, {}
        for cat, n_tr, n_te in zip(spec.categories, shares(n_train, k), shares(n_test, k)):
            n_tr = n_tr if cat.train_size is None else cat.train_size
            n_te = n_te if cat.test_size is None else cat.test_size
            if n_tr <= cat.settings.get("few_shot", 0):
                sys.exit(f"{spec.name}/{cat.name}: {n_tr} train items cannot supply few_shot = "
                         f"{cat.settings['few_shot']} examples; raise --train")
            taken: set = set()
            test = draw(spec.name, cat, "test", n_te, seed, taken)
            train = draw(spec.name, cat, "train", n_tr, seed, taken)
            width = max(4, len(str(max(n_tr, n_te))))
            for split, items in (("test", test), ("train", train)):
                for i, item in enumerate(items, 1):
                    lines[split].append(task_line(f"{cat.name}-{split}-{i:0{width}d}", cat.name, item))
            counts[cat.name] = {"train": len(train), "test": len(test)}
            if train:
                examples[cat.name] = (f"{cat.name}-train-{1:0{width}d}", train[0])
            elif test:
                examples[cat.name] = (f"{cat.name}-test-{1:0{width}d}", test[0])
        files[f"{spec.name}/suite.toml"] = suite_toml(spec, seed, args_text)
        files[f"{spec.name}/train.jsonl"] = "".join(l + "\n" for l in lines["train"])
        files[f"{spec.name}/test.jsonl"] = "".join(l + "\n" for l in lines["test"])
        files[f"{spec.name}/README.md"] = suite_readme(spec, seed, counts, examples, args_text)
    return files


def main(argv: list | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=SEED, help=f"base seed (default {SEED})")
    parser.add_argument("--train", type=int, default=DEFAULT_TRAIN, metavar="N",
                        help=f"train items per suite, split evenly over its categories (default {DEFAULT_TRAIN})")
    parser.add_argument("--test", type=int, default=DEFAULT_TEST, metavar="N",
                        help=f"test items per suite, split evenly over its categories (default {DEFAULT_TEST})")
    parser.add_argument("--suite", choices=[s.name for s in SUITES], help="generate only this suite")
    parser.add_argument("--out", type=Path, default=HERE, help="output directory (default: this script's directory)")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if any file differs from what would be generated")
    args = parser.parse_args(argv)
    if args.train < 0 or args.test < 1:
        parser.error("--train must be >= 0 and --test >= 1")
    files = build(args.seed, args.train, args.test, args.suite)
    if args.check:
        stale = [p for p, text in files.items()
                 if not (args.out / p).is_file() or (args.out / p).read_text(encoding="utf-8") != text]
        for p in stale:
            print(f"differs: {args.out / p}", file=sys.stderr)
        return 1 if stale else 0
    for path, text in files.items():
        target = args.out / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8", newline="\n")
        print(f"wrote {target} ({text.count(chr(10)) if path.endswith('.jsonl') else len(text)} "
              f"{'tasks' if path.endswith('.jsonl') else 'bytes'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
