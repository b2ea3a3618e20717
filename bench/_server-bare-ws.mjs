// The baseline for bench/server.bench.mjs: a bare `ws` broadcast server, as
// in docs/performance-anchors.md §2.1 ("naive" mode), with rooms. A client
// joins the room named by its URL path; every message it sends (binary or
// text) goes to every *other* connection of that room with ws.send.
// No auth, no parsing, no storage. perMessageDeflate is off.
import { createServer } from 'node:http';
import { WebSocketServer } from 'ws';

const rooms = new Map();
const http = createServer((req, res) => res.writeHead(404).end());
const wss = new WebSocketServer({ server: http, perMessageDeflate: false, clientTracking: false, maxPayload: 256 * 1024 });

wss.on('connection', (ws, req) => {
  const name = req.url ?? '/';
  let room = rooms.get(name);
  if (room === undefined) rooms.set(name, (room = new Set()));
  room.add(ws);
  ws.on('message', (data, isBinary) => {
    for (const peer of room) if (peer !== ws && peer.readyState === 1) peer.send(data, { binary: isBinary });
  });
  ws.on('close', () => {
    room.delete(ws);
    if (room.size === 0) rooms.delete(name);
  });
});

http.listen(0, '127.0.0.1', () => process.stderr.write(`bare ws server on port ${http.address().port}\n`));
process.on('SIGTERM', () => process.exit(0));
