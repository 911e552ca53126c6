// socket.io and MQTT side by side, run by cmd/mqim's
// TestMain_SocketIOMQTT: alice on socket.io (socket.io-client 1.4.8,
// websocket) and on MQTT.js, bob and carol on MQTT.js. Prints one JSON line
// per event seen: {"who","event","payload"} (MQTT events are named by the
// last topic level).
//
// env: BASE, WS_URL (MQTT over WebSocket), APP, KEY, MASTER.
'use strict';
const crypto = require('crypto');
const io = require('socket.io-client');
const mqtt = require('mqtt');

const { BASE, WS_URL, APP, KEY, MASTER } = process.env;
const sign = () => { const ts = Date.now(); return crypto.createHash('md5').update(ts + KEY).digest('hex') + ',' + ts; };
const out = (who, event, payload) => process.stdout.write(JSON.stringify({ who, event, payload }) + '\n');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function sio(who, auth) {
  const sock = io.connect(BASE + '/chat', { query: 'auth=' + JSON.stringify(auth), transports: ['websocket'], forceNew: true, reconnection: false });
  for (const ev of ['message', 'yourself', 'ack', 'sys', 'online', 'offline']) sock.on(ev, (p) => out(who, ev, p));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(who + ': no login')), 5000);
    sock.once('login', (p) => { clearTimeout(timer); out(who, 'login', p); resolve(sock); });
  });
}

async function mq(who, user) {
  const c = mqtt.connect(WS_URL, { protocolVersion: 4, clientId: who, username: user, password: sign(), clean: true, reconnectPeriod: 0 });
  await new Promise((resolve, reject) => { c.once('connect', resolve); c.once('error', reject); });
  c.on('message', (topic, payload) => out(who, topic.split('/').pop(), JSON.parse(payload.toString())));
  await c.subscribeAsync('users/' + user + '/#', { qos: 1 });
  return c;
}

async function main() {
  const bob = await mq('bob-mqtt', 'bob');
  const a1 = await sio('a1', { app: APP, sign: sign(), client: 'alice' });
  await sleep(200);
  const am = await mq('alice-mqtt', 'alice');
  const carol = await mq('carol-mqtt', 'carol');
  await sleep(200);

  // socket.io -> MQTT, with the yourself echo on alice's MQTT session
  a1.emit('say', { to: { id: 'bob', type: 0 }, content: { media: 0, body: 'from sio' }, ack: 1 });
  await sleep(300);
  // MQTT -> socket.io (and alice's MQTT session)
  await bob.publishAsync('say/friend/alice', JSON.stringify({ content: { media: 0, body: 'from mqtt' } }), { qos: 1 });
  // MQTT alice -> bob: the socket.io session gets yourself
  await am.publishAsync('say/friend/bob', JSON.stringify({ content: { media: 0, body: 'from alice mqtt' } }), { qos: 1 });
  await sleep(300);
  // sys from REST
  const r = await fetch(BASE + '/system/alice', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'X-ML-AppId': APP, 'X-ML-MasterKey': MASTER },
    body: JSON.stringify({ content: { media: 0, body: 'maintenance' } }),
  });
  out('script', 'sys-status', r.status);
  await sleep(300);
  // presence: carol (MQTT) leaves; alice leaves MQTT (still online over socket.io), then socket.io
  carol.end();
  await sleep(300);
  am.end();
  await sleep(300);
  a1.close();
  await sleep(500);
  bob.end();
  out('script', 'done', null);
}

main().then(() => process.exit(0), (e) => { process.stderr.write(String(e && e.stack || e) + '\n'); process.exit(1); });
