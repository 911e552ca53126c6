// socket.io-client 1.4.8 as MaxIM's JavaScript SDK v4 drives it: websocket
// only, auth JSON in the handshake query, namespace /chat, one argument per
// event. Run by cmd/mqim's TestMain_SocketIO against the real binary; it
// prints one JSON line per event seen: {"who","event","payload"}.
//
// env: BASE (http://host:port), APP, KEY, GID (a group of alice and bob),
// TRANSPORTS (comma list; default websocket).
'use strict';
const crypto = require('crypto');
const io = require('socket.io-client');

const { BASE, APP, KEY, GID } = process.env;
const transports = (process.env.TRANSPORTS || 'websocket').split(',');

function sign(key) {
  const ts = Date.now();
  return crypto.createHash('md5').update(ts + key).digest('hex') + ',' + ts;
}

function out(who, event, payload) {
  process.stdout.write(JSON.stringify({ who, event, payload }) + '\n');
}

// connect opens one session and resolves with its login answer.
function connect(who, auth) {
  const sock = io.connect(BASE + '/chat', {
    query: 'auth=' + JSON.stringify(auth),
    transports,
    forceNew: true,
    reconnection: false,
  });
  for (const ev of ['message', 'yourself', 'ack', 'sys', 'online', 'offline']) {
    sock.on(ev, (p) => out(who, ev, p));
  }
  sock.on('disconnect', (r) => out(who, 'disconnect', r));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(who + ': no login')), 5000);
    sock.once('login', (p) => {
      clearTimeout(timer);
      out(who, 'login', p);
      resolve(sock);
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function main() {
  // A bad signature: login failure, then the namespace disconnect.
  const bad = await connect('bad', { app: APP, sign: 'deadbeef,' + Date.now(), client: 'alice' });
  await sleep(300);
  bad.close();

  const a1 = await connect('a1', { app: APP, sign: sign(KEY), client: 'alice' });
  const a2 = await connect('a2', { app: APP, sign: sign(KEY), client: 'alice' });
  const b1 = await connect('b1', { app: APP, sign: sign(KEY), client: 'bob' });
  await sleep(200);

  a1.emit('say', { to: { id: 'bob', type: 0 }, content: { media: 0, body: 'hi bob' }, ack: 7 });
  await sleep(300);
  a1.emit('say', { to: { id: GID, type: 1 }, content: { media: 0, body: 'hi group' }, ack: 8 });
  await sleep(300);
  // not friends: refused silently (no ack, no error event)
  a1.emit('say', { to: { id: 'carol', type: 0 }, content: { body: 'hi carol' }, ack: 9 });
  // SDK-JS0 style: the payload as a JSON string
  b1.emit('say', JSON.stringify({ to: { id: 'alice', type: 0 }, content: { media: 0, body: 'hi alice' }, ack: 10 }));
  await sleep(500);
  for (const s of [a1, a2, b1]) s.close();
  out('script', 'done', null);
}

main().then(() => process.exit(0), (e) => {
  process.stderr.write(String(e && e.stack || e) + '\n');
  process.exit(1);
});
