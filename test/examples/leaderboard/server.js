// Leaderboard over HTTP streaming: /board is an SSE stream (channel `board`) whose first event is
// the current board; every score change publishes the whole board again, sorted, so a page only
// ever shows the latest event.
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import express from 'express';
import { createBackend, listen, serial } from '../lib/backend.js';

const { app, publisher } = createBackend(path.dirname(fileURLToPath(import.meta.url)));
const scores = new Map(); // player -> score
let version = 0;
const inOrder = serial();

function boardEvent() {
    const board = [...scores].map(([player, score]) => ({ player, score }))
        .sort((a, b) => b.score - a.score || a.player.localeCompare(b.player));
    return `event: board\ndata: ${JSON.stringify({ version, board })}\n\n`;
}

app.get('/board', (req, res) => {
    const instruct = res.grip.startInstruct();
    instruct.addChannel('board');
    instruct.setHoldStream();
    instruct.setKeepAlive(':\n\n', 20);
    res.type('text/event-stream').send(boardEvent());
});

// {"player": "ann", "points": 5} adds points (a new player starts at 0).
app.post('/scores', express.json(), async (req, res) => {
    const { player, points } = req.body ?? {};
    if (typeof player !== 'string' || !player || player.length > 40 || !Number.isInteger(points)) {
        res.status(400).send('need {"player": "...", "points": <integer>}\n');
        return;
    }
    await inOrder(async () => {
        scores.set(player, (scores.get(player) ?? 0) + points);
        version += 1;
        await publisher.publishHttpStream('board', boardEvent());
    });
    res.status(204).end();
});

listen(app, 'leaderboard');
