// Live text editor: one shared text. Pages stream /doc/events (channel `doc`): first a snapshot
// {rev, text}, then every accepted edit {rev, op, author, seq}. A page POSTs each edit with the
// revision it was made on; the backend transforms it past the edits accepted since (ot.js),
// applies it and publishes it. Pages transform what they receive past their own unconfirmed edits,
// so every page ends with the same text.
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import express from 'express';
import { createBackend, listen, serial } from '../lib/backend.js';
import { apply, transform, valid } from './ot.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const { app, publisher } = createBackend(here);
const MAX_TEXT = 100000;
const KEEP = 1000; // edits kept for transforming late ones; older bases must resync
let text = '';
let rev = 0; // edits applied so far
let recent = []; // the last KEEP edits: recent[i] took the text from rev - recent.length + i
const inOrder = serial();

const sse = (event, data) => `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;

app.get('/ot.js', (req, res) => res.sendFile(path.join(here, 'ot.js')));

app.get('/doc/events', (req, res) => {
    const instruct = res.grip.startInstruct();
    instruct.addChannel('doc');
    instruct.setHoldStream();
    instruct.setKeepAlive(':\n\n', 20);
    res.type('text/event-stream').send(sse('snapshot', { rev, text }));
});

// {"rev": N, "op": {...}, "author": "...", "seq": N}: 204 once published, 409 when the page must
// take a new snapshot (its base is too old), 400/413 for a bad edit.
app.post('/doc/ops', express.json({ limit: '64kb' }), async (req, res) => {
    const { rev: base, op, author, seq } = req.body ?? {};
    if (!Number.isInteger(base) || base < 0 || base > rev || typeof author !== 'string' || !Number.isInteger(seq)) {
        res.status(400).send('need {"rev": N, "op": {...}, "author": "...", "seq": N}\n');
        return;
    }
    const status = await inOrder(async () => {
        if (base < rev - recent.length) return 409;
        let edit = op;
        for (const earlier of recent.slice(recent.length - (rev - base))) {
            if (!valid(edit, Infinity)) break;
            edit = transform(edit, earlier, false);
        }
        if (!valid(edit, text.length)) return 400;
        const next = apply(text, edit);
        if (next.length > MAX_TEXT) return 413;
        text = next;
        rev += 1;
        recent.push(edit);
        if (recent.length > KEEP) recent = recent.slice(-KEEP);
        await publisher.publishHttpStream('doc', sse('op', { rev, op: edit, author, seq }));
        return 204;
    });
    res.status(status).end();
});

listen(app, 'editor');
