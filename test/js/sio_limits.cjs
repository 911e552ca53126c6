// The per-identity limits over socket.io and MQTT together, run by
// cmd/mqim's TestMain_SocketIOLimits with mqtt.max_connections_per_user 2
// and a say budget of 2 (mqtt.rate_burst 2, a negligible rate). Every step
// waits for the answer it causes. Prints one JSON line per event seen:
// {"who","event","payload"}.
//
// env: BASE, WS_URL (MQTT over WebSocket), APP, KEY.
'use strict';
const crypto = require('crypto');
const io = require('socket.io-client');
const mqtt = require('mqtt');

const { BASE, WS_URL, APP, KEY } = process.env;
const sign = () => { const ts = Date.now(); return crypto.createHash('md5').update(ts + KEY).digest('hex') + ',' + ts; };
const out = (who, event, payload) => process.stdout.write(JSON.stringify({ who, event, payload }) + '\n');

function sio(who, auth) {
  const sock = io.connect(BASE + '/chat', { query: 'auth=' + JSON.stringify(auth), transports: ['websocket'], forceNew: true, reconnection: false });
  for (const ev of ['message', 'yourself', 'ack']) sock.on(ev, (p) => out(who, ev, p));
  sock.gone = new Promise((resolve) => sock.on('disconnect', (r) => { out(who, 'disconnect', r); resolve(); }));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(who + ': no login')), 10000);
    sock.once('login', (p) => { clearTimeout(timer); out(who, 'login', p); resolve(sock); });
  });
}

// mq connects over MQTT 5 and resolves with the client, or with null
// after recording a refused CONNACK.
async function mq(who, user) {
  const c = mqtt.connect(WS_URL, { protocolVersion: 5, clientId: who, username: user, password: sign(), clean: true, reconnectPeriod: 0 });
  try {
    await new Promise((resolve, reject) => { c.once('connect', resolve); c.once('error', reject); });
  } catch (e) {
    out(who, 'refused', e.code);
    c.end(true);
    return null;
  }
  c.on('message', (topic, payload) => out(who, topic.split('/').pop(), JSON.parse(payload.toString())));
  return c;
}

async function publish(c, who, topic, body) {
  try {
    await c.publishAsync(topic, JSON.stringify({ content: { media: 0, body } }), { qos: 1 });
    out(who, 'puback', body);
  } catch (e) {
    out(who, 'puback-error', { body, code: e.code });
  }
}

async function main() {
  const am = await mq('alice-mqtt', 'alice');
  const a1 = await sio('a1', { app: APP, sign: sign(), client: 'alice' });
  // alice has two sessions, the cap: one more is refused on either protocol
  const a2 = await sio('a2', { app: APP, sign: sign(), client: 'alice' });
  await a2.gone;
  await mq('alice-mqtt-2', 'alice');

  // the say budget of 2 is shared: one MQTT say and one socket.io say
  // pass, then both protocols are refused
  await publish(am, 'alice-mqtt', 'say/friend/bob', 'm1');
  const acked = new Promise((resolve) => a1.once('ack', resolve));
  a1.emit('say', { to: { id: 'bob', type: 0 }, content: { media: 0, body: 's1' }, ack: 1 });
  await acked;
  a1.emit('say', { to: { id: 'bob', type: 0 }, content: { media: 0, body: 's2' }, ack: 2 });
  await publish(am, 'alice-mqtt', 'say/friend/bob', 'm2');
  out('script', 'done', null);
  process.exit(0);
}

main().catch((e) => { process.stderr.write(String(e && e.stack || e) + '\n'); process.exit(1); });
