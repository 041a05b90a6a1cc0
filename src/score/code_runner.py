# Trusted test runner of the `code` scorer, run inside the sandbox.
#
# stdin: a random nonce on the first line, then a JSON payload:
#   {"style": "tests", "setup": str, "answer": str, "entry_point": str, "tests": [str]}
#   {"style": "program", "program": str}
# The candidate code never sees stdin (it is read to the end first). The
# result is written as one line "<nonce> <json>" on a duplicate of stdout,
# only after the candidate and the tests ran, so exiting early (sys.exit,
# os._exit) or printing a fake success line cannot forge a pass.
import json
import os
import sys


def _runner():
    raw = sys.stdin.read()
    nonce, _, payload = raw.partition("\n")
    spec = json.loads(payload)
    out = os.dup(1)
    write = os.write
    dumps = json.dumps
    base = BaseException
    syntax = SyntaxError
    text_of = str
    name_of = type
    # Builtins the runner uses after candidate code ran, captured first
    # (the candidate may replace them in the builtins module).
    is_instance = isinstance
    is_callable = callable
    run_code = exec
    compile_code = compile
    numbered = enumerate

    def report(result):
        line = "\n" + nonce + " " + dumps(result) + "\n"
        write(out, line.encode("utf-8", "replace"))

    def describe(e):
        try:
            if is_instance(e, syntax):
                return "%s: %s (line %s)" % (name_of(e).__name__, e.msg, e.lineno)
            name = name_of(e).__name__
            message = text_of(e)
        except base:
            return "exception"
        return (name + ": " + message if message else name)[:300]

    namespace = {"__name__": "answer", "__builtins__": __builtins__}

    def run(source, label):
        try:
            run_code(compile_code(source, "<" + label + ">", "exec"), namespace)
        except base as e:
            return describe(e)
        return None

    if spec["style"] == "tests":
        for label in ("setup", "answer"):
            error = run(spec[label], label)
            if error is not None:
                report({"phase": label, "error": error})
                return
        entry = spec["entry_point"]
        if not is_callable(namespace.get(entry)):
            report({"missing": entry})
            return
        results = []
        for i, test in numbered(spec["tests"]):
            results.append(run(test, "test %d" % (i + 1)))
        report({"tests": results})
    else:
        error = run(spec["program"], "program")
        if error is not None:
            report({"phase": "program", "error": error})
            return
        report({"passed": True})


_runner()
