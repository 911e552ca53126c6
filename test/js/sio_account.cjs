// Account control reaches socket.io sessions, run by cmd/mqim's
// TestMain_SocketIOAccount: kick, ban, token revocation and erasure end
// socket.io sessions (socket.io-client 1.4.8, websocket) beside MQTT.js
// ones. Every step waits for the event it causes, never for a delay.
// Prints one JSON line per event seen: {"who","event","payload"}.
//
// env: BASE, WS_URL (MQTT over WebSocket), APP, KEY, MASTER.
'use strict';
const crypto = require('crypto');
const io = require('socket.io-client');
const mqtt = require('mqtt');

const { BASE, WS_URL, APP, KEY, MASTER } = process.env;
const sign = () => { const ts = Date.now(); return crypto.createHash('md5').update(ts + KEY).digest('hex') + ',' + ts; };
const out = (who, event, payload) => process.stdout.write(JSON.stringify({ who, event, payload }) + '\n');

// sio opens one session; it resolves with the socket once login is
// answered, and sock.gone resolves on its disconnect.
function sio(who, auth) {
  const sock = io.connect(BASE + '/chat', { query: 'auth=' + JSON.stringify(auth), transports: ['websocket'], forceNew: true, reconnection: false });
  sock.gone = new Promise((resolve) => sock.on('disconnect', (r) => { out(who, 'disconnect', r); resolve(); }));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(who + ': no login')), 10000);
    sock.once('login', (p) => { clearTimeout(timer); out(who, 'login', p); resolve(sock); });
  });
}

async function mq(who, user) {
  const c = mqtt.connect(WS_URL, { protocolVersion: 4, clientId: who, username: user, password: sign(), clean: true, reconnectPeriod: 0 });
  await new Promise((resolve, reject) => { c.once('connect', resolve); c.once('error', reject); });
  c.gone = new Promise((resolve) => c.once('close', () => { out(who, 'close', null); resolve(); }));
  return c;
}

async function rest(what, method, path, body) {
  const r = await fetch(BASE + path, {
    method,
    headers: { 'Content-Type': 'application/json', 'X-ML-AppId': APP, 'X-ML-MasterKey': MASTER },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  const payload = { status: r.status, body: text ? JSON.parse(text) : null };
  out('rest', what, payload);
  return payload;
}

async function main() {
  // kick: two socket.io sessions and one MQTT session of alice
  const a1 = await sio('a1', { app: APP, sign: sign(), client: 'alice' });
  const a2 = await sio('a2', { app: APP, sign: sign(), client: 'alice' });
  const am = await mq('alice-mqtt', 'alice');
  await rest('kick', 'POST', '/ctx/alice/kick');
  await Promise.all([a1.gone, a2.gone, am.gone]);

  // ban: the live session ends, the next login is refused
  const a3 = await sio('a3', { app: APP, sign: sign(), client: 'alice' });
  await rest('ban', 'PUT', '/ctx/alice/ban', { reason: 'spam' });
  await a3.gone;
  const a4 = await sio('a4', { app: APP, sign: sign(), client: 'alice' });
  await a4.gone;

  // token revocation: only the session that logged in with a token ends
  const tok = await rest('token', 'POST', '/tokens', { user: 'bob' });
  const bt = await sio('b-token', { token: tok.body.token });
  const bs = await sio('b-sign', { app: APP, sign: sign(), client: 'bob' });
  await rest('revoke', 'DELETE', '/ctx/bob/tokens');
  await bt.gone;
  await rest('kick-bob', 'POST', '/ctx/bob/kick'); // b-sign was still there
  await bs.gone;

  // erasure
  const c1 = await sio('c1', { app: APP, sign: sign(), client: 'carol' });
  await rest('erase', 'DELETE', '/ctx/carol');
  await c1.gone;
  out('script', 'done', null);
}

main().then(() => process.exit(0), (e) => { process.stderr.write(String(e && e.stack || e) + '\n'); process.exit(1); });
