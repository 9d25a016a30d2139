// A WebSocket client (npm `ws`) that resumes by itself with gripd's ids (README "History and
// resume"). Usage: node ws_resume.js BASE_URL[,BASE_URL2...] LAST_ID TOTAL PER_CONNECTION
// It connects to BASE_URL?last=<id>, reads gripd-id messages and the item after each, and after
// PER_CONNECTION items drops the connection (every other time without a close handshake) and
// connects again (to the next URL) with the last id it saw, until it has TOTAL items. Prints one
// JSON line per item ({"id","channel","data"}), a {"gap"} line for a gripd-gap, then {"done","hops"}.
'use strict';
const WebSocket = require('ws');

const urls = process.argv[2].split(',');
let last = process.argv[3];
const total = Number(process.argv[4]);
const perConnection = Number(process.argv[5]);
const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');
let got = 0;
let hops = 0;

function connect() {
  const url = `${urls[hops % urls.length]}?last=${encodeURIComponent(last)}`;
  const ws = new WebSocket(url, { perMessageDeflate: false });
  let pending = null; // the gripd-id message waiting for its item
  let here = 0;
  let leaving = false;
  const timer = setTimeout(() => { out({ error: 'timeout', url }); process.exit(1); }, 20000);
  ws.on('message', (data, isBinary) => {
    if (leaving) return;
    const text = isBinary ? null : data.toString();
    if (text !== null && text.startsWith('{"type":"gripd-')) {
      const m = JSON.parse(text);
      if (m.type === 'gripd-gap') { out({ gap: m }); return; }
      if (m.type === 'gripd-id') {
        if (pending) { out({ error: 'two gripd-id messages in a row' }); process.exit(1); }
        pending = m;
        return;
      }
    }
    if (!pending) { out({ error: 'item without gripd-id', data: text }); process.exit(1); }
    out({ id: pending.id, channel: pending.channel, data: text });
    last = pending.id;
    pending = null;
    got++;
    here++;
    if (got >= total) {
      leaving = true;
      clearTimeout(timer);
      out({ done: true, hops: hops + 1 });
      ws.terminate();
      process.exit(0);
    }
    if (here >= perConnection) {
      leaving = true;
      clearTimeout(timer);
      hops++;
      if (hops % 2) ws.terminate(); else ws.close();
      connect();
    }
  });
  ws.on('error', (e) => { if (!leaving) { out({ error: String(e) }); process.exit(1); } });
}
connect();
