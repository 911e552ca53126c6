// MQTT.js end-to-end check of the sync verbs (docs/realtime.md, "Sync" and
// "Typing, recall and edit"), driven by cmd/mqim's TestMain_MQTTJS: three
// devices of ALICE and one of BOB over WebSocket, all with protocol version
// PROTO (4 = MQTT 3.1.1, 5 = MQTT 5) and a signature password. bob says
// three things; alice's device 1 reads up to seq 2; bob types ten times in a
// burst, recalls seq 3 and edits seq 1. Prints one JSON line per
// observation ({"step","dev",...}); the Go test asserts on them. Exits
// non-zero on a timeout, a refused publish or an error event.
import crypto from "node:crypto";
import mqtt from "mqtt";

const { WS_URL, APP, KEY } = process.env;
const PROTO = Number(process.env.PROTO ?? 5);
const ALICE = process.env.ALICE ?? "alice";
const BOB = process.env.BOB ?? "bob";
const sign = () => { const ts = String(Date.now()); return crypto.createHash("md5").update(ts + KEY).digest("hex") + "," + ts; };
const out = (o) => console.log(JSON.stringify(o));
const fail = (msg, extra = {}) => { out({ fatal: msg, ...extra }); process.exit(1); };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
setTimeout(() => fail("timeout (whole script)"), 25000).unref();

if (!APP || !WS_URL || !KEY || (PROTO !== 4 && PROTO !== 5)) fail("need WS_URL, APP, KEY and PROTO 4 or 5");

// A device: one connection, its inbox events queued in arrival order.
const connect = (name, user, clientId) => new Promise((resolve, reject) => {
  const c = mqtt.connect(WS_URL, {
    protocolVersion: PROTO, clientId, username: user, password: sign(),
    clean: true, reconnectPeriod: 0, connectTimeout: 5000,
  });
  const dev = { name, user, c, queue: [], wake: null };
  c.on("message", (topic, payload) => {
    let data = payload.toString();
    try { data = JSON.parse(data); } catch { /* presence events carry a bare id */ }
    if (topic === `users/${user}/error`) fail("error event", { dev: name, payload: data });
    dev.queue.push({ topic, data });
    if (dev.wake) dev.wake();
  });
  c.once("connect", () => resolve(dev));
  c.once("error", (err) => reject(new Error(`${name}: ${err.message}`)));
  c.on("close", () => { if (!dev.closing) fail("connection closed", { dev: name }); });
});

// next takes the first queued event of the inbox topic users/{user}/{event},
// waiting at most ms for it.
const next = async (dev, event, ms = 5000) => {
  const topic = `users/${dev.user}/${event}`;
  const deadline = Date.now() + ms;
  for (;;) {
    const i = dev.queue.findIndex((e) => e.topic === topic);
    if (i >= 0) return dev.queue.splice(i, 1)[0].data;
    const left = deadline - Date.now();
    if (left <= 0) fail(`no ${topic}`, { dev: dev.name, queued: dev.queue.map((e) => e.topic) });
    await new Promise((resolve) => { dev.wake = resolve; setTimeout(resolve, left); });
    dev.wake = null;
  }
};

// take removes and returns every queued event of users/{user}/{event}.
const take = (dev, event) => {
  const topic = `users/${dev.user}/${event}`;
  const got = dev.queue.filter((e) => e.topic === topic).map((e) => e.data);
  dev.queue = dev.queue.filter((e) => e.topic !== topic);
  return got;
};

const publish = async (dev, topic, payload, qos = 1) => {
  try {
    await dev.c.publishAsync(topic, typeof payload === "string" ? payload : JSON.stringify(payload), { qos });
  } catch (err) {
    fail(`publish ${topic} refused`, { dev: dev.name, code: err.code ?? null, message: String(err.message) });
  }
};

const alices = [];
for (const i of [1, 2, 3]) alices.push(await connect(`alice-${i}`, ALICE, `${ALICE}-web-${i}`));
const bob = await connect("bob", BOB, `${BOB}-web`);
const everyone = [...alices, bob];
for (const d of everyone) await d.c.subscribeAsync(`users/${d.user}/#`, { qos: 1 });
out({ step: "connected", proto: PROTO, devices: everyone.map((d) => d.name) });

// bob says three things; the PUBACK means stored.
for (const body of ["m1", "m2", "m3"]) await publish(bob, `say/friend/${ALICE}`, { content: { media: 0, body } });
for (const a of alices) {
  for (let i = 0; i < 3; i++) {
    const m = await next(a, "message");
    out({ step: "message", dev: a.name, seq: m.seq, from: m.from?.id, body: m.content?.body });
  }
}

// alice reads up to 2 on device 1: all her devices hear it, bob gets a receipt.
await publish(alices[0], `read/friend/${BOB}`, { seq: 2 });
for (const a of alices) out({ step: "read", dev: a.name, payload: await next(a, "read") });
out({ step: "receipt", dev: bob.name, payload: await next(bob, "receipt") });

// A burst of ten typings: nine at QoS 0, the last at QoS 1, whose PUBACK
// comes after the server handled the nine (one connection, in order). Then
// 500 ms for stray events, under the second after which another would pass.
const t0 = Date.now();
for (let i = 0; i < 9; i++) await publish(bob, `typing/friend/${ALICE}`, "", 0);
await publish(bob, `typing/friend/${ALICE}`, "x", 1);
const burstMs = Date.now() - t0;
await sleep(500);
for (const d of everyone) {
  const got = take(d, "typing");
  out({ step: "typing", dev: d.name, count: got.length, payloads: got, burstMs });
}

// bob recalls seq 3: every session of both parties hears it.
await publish(bob, `recall/friend/${ALICE}`, { seq: 3 });
for (const d of everyone) out({ step: "recall", dev: d.name, payload: await next(d, "recall") });

// bob edits seq 1: every session of both parties hears it.
await publish(bob, `edit/friend/${ALICE}`, { seq: 1, content: { body: "edited" } });
for (const d of everyone) out({ step: "edit", dev: d.name, payload: await next(d, "edit") });

// Nothing else of these kinds arrived late.
await sleep(100);
for (const d of everyone) {
  const late = ["read", "receipt", "typing", "recall", "edit", "message"].flatMap((e) => take(d, e).map((p) => ({ event: e, payload: p })));
  out({ step: "late", dev: d.name, events: late });
}

for (const d of everyone) { d.closing = true; await d.c.endAsync(); }
out({ step: "done" });
process.exit(0);
