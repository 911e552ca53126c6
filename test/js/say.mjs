// MQTT.js end-to-end check, driven by cmd/mqim's TestMain_MQTTJS: alice
// (MQTT 5 over WebSocket, auth JSON password) says hi to bob (MQTT 3.1.1
// over WebSocket, signature password), then tries a non-friend. Prints one
// JSON line per observation; the Go test asserts on them.
import crypto from "node:crypto";
import mqtt from "mqtt";

const { WS_URL, APP, KEY } = process.env;
const sign = () => { const ts = String(Date.now()); return crypto.createHash("md5").update(ts + KEY).digest("hex") + "," + ts; };
const out = (o) => console.log(JSON.stringify(o));
const fail = (msg) => { out({ fatal: msg }); process.exit(1); };
setTimeout(() => fail("timeout"), 15000).unref();

const connect = (opts) => new Promise((resolve, reject) => {
  const c = mqtt.connect(WS_URL, { reconnectPeriod: 0, connectTimeout: 5000, ...opts });
  c.once("connect", () => resolve(c));
  c.once("error", reject);
});

const bob = await connect({ protocolVersion: 4, clientId: "bob-web", username: "bob", password: sign(), clean: true });
const alice = await connect({
  protocolVersion: 5, clientId: "alice-web", username: "alice", clean: true,
  password: JSON.stringify({ app: APP, sign: sign(), client: "alice", notifyAll: false }),
});

const bobGot = new Promise((resolve) => bob.on("message", (topic, payload) => {
  if (topic === "users/bob/message") resolve(JSON.parse(payload.toString()));
}));
const aliceEvents = [];
const aliceAck = new Promise((resolve) => alice.on("message", (topic, payload) => {
  aliceEvents.push(topic);
  if (topic === "users/alice/ack") resolve(JSON.parse(payload.toString()));
}));
await bob.subscribeAsync("users/bob/#", { qos: 1 });
await alice.subscribeAsync("users/alice/#", { qos: 1 });

await alice.publishAsync("say/friend/bob", JSON.stringify({ content: { media: 0, body: "hi bob" }, ack: 7 }), { qos: 1 });
out({ event: "bob.message", payload: await bobGot });
out({ event: "alice.ack", payload: await aliceAck });

// Not a friend: MQTT 5 PUBACK carries 0x87 (not authorized).
try {
  await alice.publishAsync("say/friend/carol", JSON.stringify({ content: { body: "psst" } }), { qos: 1 });
  out({ event: "nonfriend", refused: false });
} catch (err) {
  out({ event: "nonfriend", refused: true, code: err.code ?? null, message: String(err.message) });
}
await alice.endAsync();
await bob.endAsync();
out({ event: "done" });
process.exit(0);
