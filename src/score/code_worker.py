# The untrusted half of the `code` scorer (after code_codec.py): runs the
# answer, then calls its entry point with the arguments the judge sends and
# sends back what it returned (or raised) as plain data. Nothing here is
# trusted: the answer runs in this process and may change any of it; the
# judge rebuilds whatever arrives as exact builtins and compares it itself.
#
# The protocol uses the standard input and output this program started
# with, kept on private descriptors; the answer's own prints go to stderr.
import os

_WORKER_SPEC = _codec_json.loads({spec})


def _worker():
    spec = _WORKER_SPEC
    inbox = os.fdopen(os.dup(0), "rb")
    outbox = os.dup(1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)

    def send(message):
        data = _codec_dumps(message)
        while data:
            data = data[os.write(outbox, data):]

    namespace = {"__name__": "answer", "__builtins__": __builtins__}
    for label in ("setup", "answer"):
        try:
            exec(compile(spec[label], "<" + label + ">", "exec"), namespace)
        except BaseException as e:
            send({"ready": False, "phase": label, "error": _describe(e)})
            return
    entry = namespace.get(spec["entry_point"])
    if not callable(entry):
        send({"ready": False, "missing": spec["entry_point"]})
        return
    send({"ready": True})
    while True:
        line = inbox.readline()
        if not line:
            return
        message = _codec_loads(line)
        call = message["call"]
        try:
            args = [_codec_decode(a) for a in message["args"]]
            result = entry(*args)
        except BaseException as e:
            reply = {"call": call, "raised": [_codec_name(type(e)), _message(e)]}
        else:
            try:
                reply = {"call": call, "value": _codec_encode(result)}
            except NotPlain as e:
                reply = {"call": call, "not_plain": str(e)}
            except RecursionError:
                reply = {"call": call, "not_plain": "a value nested too deep"}
        send(reply)


def _message(e):
    try:
        text = str(e)
    except BaseException:
        return ""
    return text[:300] if type(text) is str else ""


def _describe(e):
    if isinstance(e, SyntaxError):
        return "%s: %s (line %s)" % (_codec_name(type(e)), e.msg, e.lineno)
    name = _codec_name(type(e))
    message = _message(e)
    return (name + ": " + message if message else name)[:300]


_worker()
