// To-do list over WebSockets: gripd turns the page's WebSocket into WebSocket-over-HTTP POSTs to
// /ws (route option `over_http`); serve-grip gives each POST a WebSocketContext. On open the
// connection is accepted, subscribed to channel `todos` (a `c:` control message) and sent the list;
// each command changes the list and the whole list is published to every open page.
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { WebSocketMessageFormat } from '@fanoutio/grip';
import { createBackend, listen, serial } from '../lib/backend.js';

const { app, publisher } = createBackend(path.dirname(fileURLToPath(import.meta.url)));
let todos = []; // {id, text, done}
let nextId = 1;
let version = 0;
const inOrder = serial();

const snapshot = () => JSON.stringify({ version, todos });

// {"op": "add", "text": "..."}, {"op": "toggle", "id": N}, {"op": "delete", "id": N}
function apply(command) {
    if (command.op === 'add' && typeof command.text === 'string' && command.text && command.text.length <= 200 &&
        todos.length < 200) {
        todos.push({ id: nextId++, text: command.text, done: false });
    } else if (command.op === 'toggle') {
        todos = todos.map((t) => (t.id === command.id ? { ...t, done: !t.done } : t));
    } else if (command.op === 'delete') {
        todos = todos.filter((t) => t.id !== command.id);
    } else {
        return false;
    }
    version += 1;
    return true;
}

app.post('/ws', async (req, res) => {
    const ws = req.grip.wsContext;
    if (ws == null) {
        res.status(400).send('WebSocket only (through gripd with over_http)\n');
        return;
    }
    if (ws.isOpening()) {
        ws.accept();
        ws.subscribe('todos');
        ws.send(snapshot());
    }
    while (ws.canRecv()) {
        const text = ws.recv();
        if (text === null) { // the page closed: close our side too
            ws.close();
            break;
        }
        let command;
        try {
            command = JSON.parse(text);
        } catch {
            command = {};
        }
        await inOrder(async () => {
            if (apply(command)) {
                await publisher.publishFormats('todos', new WebSocketMessageFormat(snapshot()));
            }
        });
    }
    res.end();
});

listen(app, 'todo');
