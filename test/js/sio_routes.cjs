// Passenger logins and the room, stranger and passenger routes between
// socket.io (socket.io-client 1.4.8, websocket) and MQTT.js sessions, run
// by cmd/mqim's TestMain_SocketIORoutes. Every say waits for its
// receiver's message. Prints one JSON line per event seen:
// {"who","event","payload"}.
//
// env: BASE, WS_URL (MQTT over WebSocket), APP, KEY, RID (a room of alice
// and bob).
'use strict';
const crypto = require('crypto');
const io = require('socket.io-client');
const mqtt = require('mqtt');

const { BASE, WS_URL, APP, KEY, RID } = process.env;
const sign = () => { const ts = Date.now(); return crypto.createHash('md5').update(ts + KEY).digest('hex') + ',' + ts; };
const out = (who, event, payload) => process.stdout.write(JSON.stringify({ who, event, payload }) + '\n');

// received resolves when who gets a message with body.
const waiters = [];
function seen(who, event, payload) {
  out(who, event, payload);
  if (event !== 'message') return;
  const body = payload && payload.content && payload.content.body;
  for (let i = waiters.length - 1; i >= 0; i--) {
    if (waiters[i].who === who && waiters[i].body === body) waiters.splice(i, 1)[0].resolve(payload);
  }
}
const received = (who, body) => new Promise((resolve) => waiters.push({ who, body, resolve }));

function sio(who, auth) {
  const sock = io.connect(BASE + '/chat', { query: 'auth=' + JSON.stringify(auth), transports: ['websocket'], forceNew: true, reconnection: false });
  for (const ev of ['message', 'yourself', 'ack']) sock.on(ev, (p) => seen(who, ev, p));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(who + ': no login')), 10000);
    sock.once('login', (p) => { clearTimeout(timer); out(who, 'login', p); sock.loginID = p.id; resolve(sock); });
  });
}

async function mq(who, username, inbox) {
  const c = mqtt.connect(WS_URL, { protocolVersion: 4, clientId: who, username, password: sign(), clean: true, reconnectPeriod: 0 });
  await new Promise((resolve, reject) => { c.once('connect', resolve); c.once('error', reject); });
  c.on('message', (topic, payload) => seen(who, topic.split('/').pop(), JSON.parse(payload.toString())));
  await c.subscribeAsync(inbox + '/#', { qos: 1 });
  return c;
}

const say = (sock, to, body) => sock.emit('say', { to, content: { media: 0, body } });
const pub = (c, topic, body) => c.publishAsync(topic, JSON.stringify({ content: { media: 0, body } }), { qos: 1 });

async function main() {
  const alice = await sio('alice-sio', { app: APP, sign: sign(), client: 'alice' });
  const bob = await mq('bob-mqtt', 'bob', 'users/bob');
  const carol = await mq('carol-mqtt', 'carol', 'users/carol');
  const pm = await mq('pm-mqtt', 'passenger:pm', 'passengers/pm');
  // passengers over socket.io, with and without an id
  const p1 = await sio('p1-sio', { app: APP, sign: sign(), passenger: { id: 'p1', name: 'Pat' } });
  const p2 = await sio('p2-sio', { app: APP, sign: sign(), passenger: { name: 'anon' } });

  // room, both ways
  let r = received('bob-mqtt', 'room from sio');
  say(alice, { id: RID, type: 2 }, 'room from sio');
  await r;
  r = received('alice-sio', 'room from mqtt');
  await pub(bob, 'say/room/' + RID, 'room from mqtt');
  await r;

  // stranger, both ways
  r = received('carol-mqtt', 'stranger from sio');
  say(alice, { id: 'carol', type: 4 }, 'stranger from sio');
  await r;
  r = received('alice-sio', 'stranger from mqtt');
  await pub(carol, 'say/stranger/alice', 'stranger from mqtt');
  await r;

  // a socket.io passenger (to has no type) and an MQTT user, both ways
  r = received('bob-mqtt', 'from passenger sio');
  say(p1, { id: 'bob' }, 'from passenger sio');
  await r;
  r = received('p1-sio', 'to passenger sio');
  await pub(bob, 'say/passenger/p1', 'to passenger sio');
  await r;

  // an MQTT passenger and a socket.io user, both ways
  r = received('alice-sio', 'from passenger mqtt');
  await pub(pm, 'say/user/alice', 'from passenger mqtt');
  await r;
  r = received('pm-mqtt', 'to passenger mqtt');
  say(alice, { id: 'pm', type: 3 }, 'to passenger mqtt');
  await r;

  // the passenger with a generated id, both ways
  r = received('alice-sio', 'from generated passenger');
  say(p2, { id: 'alice' }, 'from generated passenger');
  await r;
  r = received('p2-sio', 'to generated passenger');
  say(alice, { id: p2.loginID, type: 3 }, 'to generated passenger');
  await r;

  out('script', 'done', null);
  process.exit(0);
}

main().catch((e) => { process.stderr.write(String(e && e.stack || e) + '\n'); process.exit(1); });
