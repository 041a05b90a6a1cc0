# The trusted half of the `code` scorer (after code_codec.py): runs the
# task's tests with the answer's entry point replaced by a proxy that asks
# the worker process (where the answer runs) to call it, and rebuilds each
# result as exact builtins before the tests compare it. The answer never
# runs here: it cannot reach this process's frames, builtins, output or
# exit, so only the values it computes decide the verdict.
#
# fd 0: the worker's replies; fd 3: calls to the worker; stdout: the result
# line "<nonce> <json>", read by the harness only.
import builtins
import os

_JUDGE_SPEC = _codec_json.loads({spec})
# A reply larger than this fails its call (and ends the conversation).
_MAX_REPLY = 16 << 20


class AnswerRaised(Exception):
    """The answer raised an exception that is not a builtin one."""


class AnswerFailed(Exception):
    """The answer's process gave no usable reply."""


def _judge():
    spec = _JUDGE_SPEC
    nonce = spec["nonce"]
    inbox = os.fdopen(0, "rb")
    outbox = 3
    stdout = os.dup(1)
    # An exception the answer raised is raised here again as the builtin
    # of that name (so `except ValueError` in a test works), else as
    # AnswerRaised; never as SystemExit or KeyboardInterrupt.
    builtin_exceptions = {}
    for name in dir(builtins):
        cls = getattr(builtins, name)
        if isinstance(cls, type) and issubclass(cls, Exception):
            builtin_exceptions[name] = cls
    state = {"calls": 0, "gone": None}

    def report(result):
        line = "\n" + nonce + " " + _codec_json.dumps(result) + "\n"
        os.write(stdout, line.encode("utf-8", "replace"))

    def receive():
        line = inbox.readline(_MAX_REPLY + 1)
        if not line:
            raise AnswerFailed("the answer's process ended")
        if len(line) > _MAX_REPLY:
            raise AnswerFailed("the answer's process sent a reply over %d bytes" % _MAX_REPLY)
        try:
            message = _codec_loads(line)
        except BaseException:
            raise AnswerFailed("the answer's process sent something that is not a reply")
        if type(message) is not dict:
            raise AnswerFailed("the answer's process sent something that is not a reply")
        return message

    def call(*args, **kwargs):
        if state["gone"] is not None:
            raise AnswerFailed(state["gone"])
        if kwargs:
            raise AnswerFailed("keyword arguments are not passed to the answer")
        try:
            encoded = [_codec_encode(a) for a in args]
        except NotPlain as e:
            raise AnswerFailed("a test passed %s, which is not plain data" % e)
        state["calls"] += 1
        number = state["calls"]
        try:
            data = _codec_dumps({"call": number, "args": encoded})
            while data:
                data = data[os.write(outbox, data):]
            message = receive()
            if message.get("call") != number:
                raise AnswerFailed("the answer's process answered out of turn")
        except (AnswerFailed, OSError) as e:
            # The conversation is over: later calls fail the same way.
            why = str(e) if isinstance(e, AnswerFailed) else "the answer's process ended"
            state["gone"] = why
            raise AnswerFailed(why)
        if "value" in message:
            try:
                return _codec_decode(message["value"])
            except NotPlain as e:
                raise AnswerFailed("the answer returned %s, not plain data" % e)
            except RecursionError:
                raise AnswerFailed("the answer returned a value nested too deep")
        if "not_plain" in message:
            raise AnswerFailed("the answer returned %s, not plain data" % str(message["not_plain"])[:200])
        raised = message.get("raised")
        if type(raised) is list and len(raised) == 2 and all(type(x) is str for x in raised):
            name, text = raised
            cls = builtin_exceptions.get(name)
            error = cls(text[:300]) if cls is not None else AnswerRaised(name[:100])
            # Described with the answer's own text (str() of a rebuilt
            # KeyError would quote it again).
            error.answer_text = text[:300]
            raise error
        state["gone"] = "the answer's process sent something that is not a reply"
        raise AnswerFailed(state["gone"])

    def describe(e):
        try:
            if isinstance(e, SyntaxError):
                return "%s: %s (line %s)" % (type(e).__name__, e.msg, e.lineno)
            name = type(e).__name__
            if isinstance(e, AnswerFailed):
                return str(e)[:300]
            text = getattr(e, "answer_text", None)
            if isinstance(e, AnswerRaised):
                return ("the answer raised %s: %s" % (e, text) if text else "the answer raised %s" % e)[:300]
            message = text if type(text) is str else str(e)
        except BaseException:
            return "exception"
        return (name + ": " + message if message else name)[:300]

    namespace = {"__name__": "tests", "__builtins__": builtins}

    def run(source, label):
        try:
            exec(compile(source, "<" + label + ">", "exec"), namespace)
        except BaseException as e:
            return describe(e)
        return None

    entry = spec["entry_point"]
    if spec["style"] == "tests":
        error = run(spec["setup"], "setup")
        if error is not None:
            report({"phase": "setup", "error": error})
            return
    else:
        # The benchmark's prompt defines the helpers its tests may use (the
        # answer completes it in the worker; here its stub is replaced).
        run(spec["prompt"], "prompt")
    try:
        ready = receive()
    except AnswerFailed as e:
        report({"phase": "answer", "error": str(e) + " before it was ready"})
        return
    if ready.get("ready") is not True:
        missing = ready.get("missing")
        if type(missing) is str:
            report({"missing": entry})
        else:
            error = ready.get("error")
            phase = ready.get("phase")
            report(
                {
                    "phase": phase if phase in ("setup", "answer") else "answer",
                    "error": error[:300] if type(error) is str else "failed",
                }
            )
        return
    namespace[entry] = call
    if spec["style"] == "tests":
        results = []
        for i, test in enumerate(spec["tests"]):
            results.append(run(test, "test %d" % (i + 1)))
        report({"tests": results})
    else:
        error = run(spec["test"] + "\ncheck(" + entry + ")\n", "program")
        if error is not None:
            report({"phase": "program", "error": error})
            return
        report({"passed": True})


_judge()
