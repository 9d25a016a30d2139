// Operational transformation for one plain text, shared by the backend and the page.
// An edit is {type: 'ins', pos, text} or {type: 'del', pos, len}; null is an edit that does
// nothing. transform(a, b, aFirst) rewrites a, made on the same text as b, to apply after b, so
// that both orders end equal (apply(apply(s, b), transform(a, b, f)) ==
// apply(apply(s, a), transform(b, a, !f))); aFirst says whose insert goes first at one position.
// Text inserted inside a range another user deleted is deleted with it.
export function apply(text, op) {
    if (!op) return text;
    if (op.type === 'ins') return text.slice(0, op.pos) + op.text + text.slice(op.pos);
    return text.slice(0, op.pos) + text.slice(op.pos + op.len);
}

export function transform(a, b, aFirst) {
    if (!a || !b) return a;
    if (a.type === 'ins' && b.type === 'ins') {
        return b.pos < a.pos || (b.pos === a.pos && !aFirst) ? { ...a, pos: a.pos + b.text.length } : a;
    }
    if (a.type === 'ins') { // b deletes
        if (a.pos <= b.pos) return a;
        if (a.pos >= b.pos + b.len) return { ...a, pos: a.pos - b.len };
        return null;
    }
    if (b.type === 'ins') { // a deletes
        if (b.pos <= a.pos) return { ...a, pos: a.pos + b.text.length };
        if (b.pos >= a.pos + a.len) return a;
        return { ...a, len: a.len + b.text.length };
    }
    // both delete: a keeps what b did not delete already (after b, one contiguous range)
    const overlap = Math.max(0, Math.min(a.pos + a.len, b.pos + b.len) - Math.max(a.pos, b.pos));
    const pos = a.pos < b.pos ? a.pos : Math.max(b.pos, a.pos - b.len);
    return a.len > overlap ? { type: 'del', pos, len: a.len - overlap } : null;
}

// Whether op is well formed and fits a text of this length.
export function valid(op, length) {
    if (op === null) return true;
    if (typeof op !== 'object' || !Number.isInteger(op.pos) || op.pos < 0 || op.pos > length) return false;
    if (op.type === 'ins') return typeof op.text === 'string' && op.text.length > 0 && op.text.length <= 10000;
    return op.type === 'del' && Number.isInteger(op.len) && op.len > 0 && op.pos + op.len <= length;
}

// The edits (at most a delete then an insert) that turn before into after.
export function diff(before, after) {
    let start = 0;
    while (start < before.length && start < after.length && before[start] === after[start]) start++;
    let end = 0;
    while (end < before.length - start && end < after.length - start &&
           before[before.length - 1 - end] === after[after.length - 1 - end]) end++;
    const ops = [];
    if (before.length - start - end > 0) ops.push({ type: 'del', pos: start, len: before.length - start - end });
    if (after.length - start - end > 0) ops.push({ type: 'ins', pos: start, text: after.slice(start, after.length - end) });
    return ops;
}
