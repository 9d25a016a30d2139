// A second WebSocket client library (npm `ws`) against gripd/pushpin. Usage: node ws_check.js URL
// Prints one JSON line per step; after "ready" it waits for one published message, then closes.
'use strict';
const WebSocket = require('ws');

const url = process.argv[2];
const ws = new WebSocket(url, { perMessageDeflate: false });
const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');
const queue = [];
let waiter = null;

ws.on('message', (data, isBinary) => {
  const m = { binary: isBinary, data: isBinary ? Buffer.from(data).toString('hex') : data.toString() };
  if (waiter) { const w = waiter; waiter = null; w(m); } else queue.push(m);
});
const next = () => new Promise((resolve, reject) => {
  if (queue.length) return resolve(queue.shift());
  const t = setTimeout(() => reject(new Error('timeout')), 10000);
  waiter = (m) => { clearTimeout(t); resolve(m); };
});

ws.on('error', (e) => { out({ step: 'error', error: String(e) }); process.exit(1); });
ws.on('open', async () => {
  try {
    out({ step: 'open', protocol: ws.protocol });
    ws.send('hello from node');
    out({ step: 'text', got: await next() });
    ws.send(Buffer.from([0, 1, 2, 255]));
    out({ step: 'binary', got: await next() });
    ws.send('frag-', { fin: false });
    ws.send('mented', { fin: true });
    out({ step: 'fragmented', got: await next() });
    const pong = new Promise((resolve) => ws.once('pong', (d) => resolve(d.toString())));
    ws.ping('node-ping');
    out({ step: 'ping', pong: await pong });
    out({ step: 'ready' });
    out({ step: 'published', got: await next() });
    ws.on('close', (code, reason) => { out({ step: 'closed', code, reason: reason.toString() }); process.exit(0); });
    ws.close(4000, 'node bye');
  } catch (e) {
    out({ step: 'error', error: String(e) });
    process.exit(1);
  }
});
