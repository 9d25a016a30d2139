// Webhook inbox: POST /inboxes makes an inbox with a temporary URL, /hook/<id>; whatever is POSTed
// there is published on channel `inbox-<id>` in two formats at once: an SSE event for pages that
// stream /inbox/<id>/events, and a JSON answer for pages long-polling /inbox/<id>/items?after=N
// (the fallback without EventSource). Items carry GRIP ids (id N, prev-id N-1), and a long-poll
// holds with prev-id = the last item it has, so the proxy re-asks at once if it missed one.
import crypto from 'node:crypto';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import express from 'express';
import { Channel, HttpResponseFormat, HttpStreamFormat } from '@fanoutio/grip';
import { createBackend, listen, serial } from '../lib/backend.js';

const { app, publisher } = createBackend(path.dirname(fileURLToPath(import.meta.url)));
const inboxes = new Map(); // id -> [{n, at, contentType, body}], at most 100 inboxes of 50 items
const inOrder = serial();

const sse = (item) => `event: hook\nid: ${item.n}\ndata: ${JSON.stringify(item)}\n\n`;

function inbox(req, res) {
    const items = inboxes.get(req.params.id);
    if (items == null) res.status(404).send('no such inbox (they live in memory: restarted?)\n');
    return items;
}

app.post('/inboxes', (req, res) => {
    if (inboxes.size >= 100) inboxes.delete(inboxes.keys().next().value);
    const id = crypto.randomBytes(8).toString('hex');
    inboxes.set(id, []);
    res.status(201).json({ id, url: `/hook/${id}` });
});

app.post('/hook/:id', express.text({ type: () => true, limit: '10kb' }), async (req, res) => {
    const items = inbox(req, res);
    if (items == null) return;
    await inOrder(async () => {
        const item = {
            n: (items.at(-1)?.n ?? 0) + 1,
            at: new Date().toISOString(),
            contentType: req.headers['content-type'] ?? '',
            body: typeof req.body === 'string' ? req.body : '',
        };
        items.push(item);
        if (items.length > 50) items.shift();
        await publisher.publishFormats(`inbox-${req.params.id}`, [
            new HttpStreamFormat(sse(item)),
            new HttpResponseFormat({ headers: { 'Content-Type': 'application/json' }, body: JSON.stringify([item]) }),
        ], String(item.n), item.n > 1 ? String(item.n - 1) : undefined);
    });
    res.status(202).send('received\n');
});

app.get('/inbox/:id/events', (req, res) => {
    const items = inbox(req, res);
    if (items == null) return;
    const instruct = res.grip.startInstruct();
    instruct.addChannel(`inbox-${req.params.id}`);
    instruct.setHoldStream();
    instruct.setKeepAlive(':\n\n', 20);
    res.type('text/event-stream').send(items.map(sse).join(''));
});

app.get('/inbox/:id/items', (req, res) => {
    const items = inbox(req, res);
    if (items == null) return;
    const after = Number(req.query.after ?? 0);
    const newer = items.filter((item) => item.n > after);
    if (newer.length === 0) { // nothing yet: hold until the next item (or 20 s, then `[]`)
        const instruct = res.grip.startInstruct();
        instruct.addChannel(new Channel(`inbox-${req.params.id}`, String(items.at(-1)?.n ?? 0)));
        instruct.setHoldLongPoll(20);
    }
    res.json(newer);
});

listen(app, 'webhook-inbox');
