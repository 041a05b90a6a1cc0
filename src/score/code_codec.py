# Plain data between the two processes of the `code` scorer: the worker,
# which runs the answer, and the judge, which runs the tests. Prepended to
# both programs. One message is one line of JSON; a value is a tagged list:
#   ["N"] None, ["B", bool], ["I", hex int], ["F", float.hex()], ["S", str],
#   ["Y", hex bytes], ["L", [values]] list, ["T", [values]] tuple,
#   ["D", [[key, value], ...]] dict, ["E", [values]] set,
#   ["Z", [values]] frozenset.
# Only objects whose type is exactly one of these are plain data: a subclass
# of int, or any object with methods of its own, is not (its comparison
# methods could lie). The judge rebuilds every value as exact builtins, so
# whatever the worker sends is data, never code.
import json as _codec_json

_CODEC_MAX_DEPTH = 100


class NotPlain(Exception):
    """A value that is not plain data."""


def _codec_encode(value, depth=0):
    if depth > _CODEC_MAX_DEPTH:
        raise NotPlain("a value nested deeper than %d levels" % _CODEC_MAX_DEPTH)
    kind = type(value)
    if value is None:
        return ["N"]
    if kind is bool:
        return ["B", value]
    if kind is int:
        return ["I", hex(value)]
    if kind is float:
        return ["F", value.hex()]
    if kind is str:
        return ["S", value]
    if kind is bytes:
        return ["Y", value.hex()]
    tags = {list: "L", tuple: "T", set: "E", frozenset: "Z"}
    if kind in tags:
        return [tags[kind], [_codec_encode(v, depth + 1) for v in value]]
    if kind is dict:
        return [
            "D",
            [[_codec_encode(k, depth + 1), _codec_encode(v, depth + 1)] for k, v in value.items()],
        ]
    for base in (bool, int, float, str, bytes, list, tuple, dict, set, frozenset):
        if isinstance(value, base):
            raise NotPlain("a %s (a subclass of %s)" % (_codec_name(kind), base.__name__))
    raise NotPlain("a %s" % _codec_name(kind))


def _codec_name(kind):
    try:
        name = type.__getattribute__(kind, "__name__")
    except BaseException:
        return "value of unknown type"
    return name if type(name) is str else "value of unknown type"


def _codec_decode(data, depth=0):
    """Rebuilds a value from its message form as exact builtins; raises
    NotPlain on anything malformed."""
    if depth > _CODEC_MAX_DEPTH + 1:
        raise NotPlain("a value nested too deep")
    if type(data) is not list or not data or type(data[0]) is not str:
        raise NotPlain("a malformed value")
    tag = data[0]
    if tag == "N" and len(data) == 1:
        return None
    if len(data) != 2:
        raise NotPlain("a malformed value")
    body = data[1]
    try:
        if tag == "B" and type(body) is bool:
            return bool(body)
        if tag == "I" and type(body) is str:
            return int(body, 16)
        if tag == "F" and type(body) is str:
            return float.fromhex(body)
        if tag == "S" and type(body) is str:
            return str(body)
        if tag == "Y" and type(body) is str:
            return bytes.fromhex(body)
        if tag in ("L", "T", "E", "Z") and type(body) is list:
            items = [_codec_decode(v, depth + 1) for v in body]
            return {"L": list, "T": tuple, "E": set, "Z": frozenset}[tag](items)
        if tag == "D" and type(body) is list:
            out = {}
            for pair in body:
                if type(pair) is not list or len(pair) != 2:
                    raise NotPlain("a malformed dict")
                out[_codec_decode(pair[0], depth + 1)] = _codec_decode(pair[1], depth + 1)
            return out
    except NotPlain:
        raise
    except (ValueError, TypeError, OverflowError) as e:
        raise NotPlain("a malformed value (%s)" % type(e).__name__)
    raise NotPlain("a malformed value")


def _codec_dumps(message):
    return (_codec_json.dumps(message) + "\n").encode("utf-8", "surrogatepass")


def _codec_loads(line):
    return _codec_json.loads(line.decode("utf-8", "surrogatepass"))
