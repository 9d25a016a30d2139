"""Reads gripd's history streams on Redis (src/pubsub/bus_stream.cpp): an entry is a run of items,
field "k" (own ids) or "a" (assigned ids), its value "<len>:<item JSON>" records; "g" is a marker."""


def run_items(value):
    """The item JSON texts of one run value (bytes or str)."""
    if isinstance(value, str):
        value = value.encode()
    out = []
    while value:
        head, _, rest = value.partition(b":")
        n = int(head)
        out.append(rest[:n].decode())
        value = rest[n:]
    return out


def stream_items(entries):
    """The item JSON texts of XRANGE's entries ([[id, [field, value]], ...]), oldest first."""
    out = []
    for _, fields in entries:
        field = fields[0].decode() if isinstance(fields[0], bytes) else fields[0]
        if field in ("k", "a"):
            out += run_items(fields[1])
        elif field == "i":
            out.append(fields[1].decode() if isinstance(fields[1], bytes) else fields[1])
    return out
