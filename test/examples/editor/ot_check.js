// Checks ot.js on every pair of edits on short texts: both orders of two concurrent edits end
// with the same text, and diff() turns any text into any other. Exits 1 on the first failure.
//   node test/examples/editor/ot_check.js
import { apply, diff, transform, valid } from './ot.js';

function editsOn(text) {
    const edits = [null];
    for (let pos = 0; pos <= text.length; pos++) {
        edits.push({ type: 'ins', pos, text: 'X' }, { type: 'ins', pos, text: 'YZ' });
        for (let len = 1; pos + len <= text.length; len++) edits.push({ type: 'del', pos, len });
    }
    return edits;
}

let checked = 0;
for (const text of ['', 'a', 'ab', 'abcd', 'abcdef']) {
    const edits = editsOn(text);
    for (const a of edits) {
        for (const b of edits) {
            for (const aFirst of [true, false]) {
                const a2 = transform(a, b, aFirst);
                const b2 = transform(b, a, !aFirst);
                const viaB = apply(apply(text, b), a2);
                const viaA = apply(apply(text, a), b2);
                if (viaA !== viaB || !valid(a2, apply(text, b).length) || !valid(b2, apply(text, a).length)) {
                    console.error('diverged:', JSON.stringify({ text, a, b, aFirst, a2, b2, viaA, viaB }));
                    process.exit(1);
                }
                checked++;
            }
        }
    }
}
for (const before of ['', 'abc', 'hello world', 'aaa']) {
    for (const after of ['', 'abc', 'hello big world', 'world', 'aaaa', 'xbc']) {
        const got = diff(before, after).reduce(apply, before);
        if (got !== after) {
            console.error('diff failed:', JSON.stringify({ before, after, got }));
            process.exit(1);
        }
        checked++;
    }
}
console.log(`ot.js: ${checked} cases converge`);
