// Chat room over HTTP streaming: the page reads /events with EventSource (gripd holds it as a
// stream on channel `chat`) and posts messages to /messages; each is published as an SSE event.
// A page that (re)connects gets the last messages in the stream's first bytes.
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import express from 'express';
import { createBackend, listen, serial } from '../lib/backend.js';

const { app, publisher } = createBackend(path.dirname(fileURLToPath(import.meta.url)));
const history = []; // the last 50 messages, oldest first
const inOrder = serial();

function sse(message) {
    return `event: message\nid: ${message.id}\ndata: ${JSON.stringify(message)}\n\n`;
}

app.get('/events', (req, res) => {
    const instruct = res.grip.startInstruct();
    instruct.addChannel('chat');
    instruct.setHoldStream();
    instruct.setKeepAlive(':\n\n', 20);
    res.type('text/event-stream').send(history.map(sse).join(''));
});

app.post('/messages', express.json(), async (req, res) => {
    const { user, text } = req.body ?? {};
    if (typeof user !== 'string' || typeof text !== 'string' || !user || !text || text.length > 1000) {
        res.status(400).send('need {"user": "...", "text": "..."}\n');
        return;
    }
    await inOrder(async () => {
        const message = { id: (history.at(-1)?.id ?? 0) + 1, user: user.slice(0, 40), text };
        history.push(message);
        if (history.length > 50) history.shift();
        await publisher.publishHttpStream('chat', sse(message));
    });
    res.status(204).end();
});

listen(app, 'chat');
