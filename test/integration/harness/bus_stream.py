"""Reads gripd's history streams on Redis (include/gripd/pubsub/bus_stream.hpp): an entry "r" is a
run of records "<how><len>:<item JSON>" (how: k kept, a kept with an assigned id, p published only),
"g" a marker for an item too big to keep, "i" one item (earlier versions)."""


def run_items(value):
    """The kept item JSON texts of one run value (bytes or str), in order."""
    if isinstance(value, str):
        value = value.encode()
    out = []
    while value:
        how, value = value[:1], value[1:]
        head, _, rest = value.partition(b":")
        n = int(head)
        if how != b"p":
            out.append(rest[:n].decode())
        value = rest[n:]
    return out


def stream_items(entries):
    """The kept item JSON texts of XRANGE's entries ([[id, [field, value]], ...]), oldest first."""
    out = []
    for _, fields in entries:
        field = fields[0].decode() if isinstance(fields[0], bytes) else fields[0]
        if field == "r":
            out += run_items(fields[1])
        elif field == "i":
            out.append(fields[1].decode() if isinstance(fields[1], bytes) else fields[1])
    return out
