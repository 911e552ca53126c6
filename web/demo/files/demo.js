// mqim browser chat demo: two users chat as friends over MQTT.js (MQTT 5
// over WebSocket), with presence, typing, read cursors and the stored
// history. The REST calls (make friends, presence, history) go to the
// server that serves this page. docs/demo.md describes it.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const idPattern = /^[A-Za-z0-9_-]{1,128}$/;

  // md5 returns the hex MD5 of the UTF-8 bytes of s: the MaxIM signature is
  // md5hex(TS + KEY) + "," + TS, and browsers have no MD5 of their own.
  function md5(s) {
    const msg = new TextEncoder().encode(s);
    const n = msg.length;
    const blocks = ((n + 8) >>> 6) + 1;
    const w = new Uint32Array(blocks * 16);
    for (let i = 0; i < n; i++) w[i >> 2] |= msg[i] << ((i % 4) * 8);
    w[n >> 2] |= 0x80 << ((n % 4) * 8);
    w[blocks * 16 - 2] = (n * 8) >>> 0;
    w[blocks * 16 - 1] = Math.floor(n / 0x20000000);
    const S = [7, 12, 17, 22, 5, 9, 14, 20, 4, 11, 16, 23, 6, 10, 15, 21];
    const K = [];
    for (let i = 0; i < 64; i++) K.push(Math.floor(Math.abs(Math.sin(i + 1)) * 0x100000000));
    let h0 = 0x67452301, h1 = 0xefcdab89, h2 = 0x98badcfe, h3 = 0x10325476;
    for (let b = 0; b < w.length; b += 16) {
      let a = h0, bb = h1, c = h2, d = h3;
      for (let i = 0; i < 64; i++) {
        let f, g;
        if (i < 16) { f = (bb & c) | (~bb & d); g = i; }
        else if (i < 32) { f = (d & bb) | (~d & c); g = (5 * i + 1) % 16; }
        else if (i < 48) { f = bb ^ c ^ d; g = (3 * i + 5) % 16; }
        else { f = c ^ (bb | ~d); g = (7 * i) % 16; }
        const x = (a + f + K[i] + w[b + g]) | 0;
        const r = S[(i >> 4) * 4 + (i % 4)];
        a = d; d = c; c = bb;
        bb = (bb + ((x << r) | (x >>> (32 - r)))) | 0;
      }
      h0 = (h0 + a) | 0; h1 = (h1 + bb) | 0; h2 = (h2 + c) | 0; h3 = (h3 + d) | 0;
    }
    let hex = "";
    for (const h of [h0, h1, h2, h3]) {
      for (let i = 0; i < 4; i++) hex += ((h >>> (i * 8)) & 0xff).toString(16).padStart(2, "0");
    }
    return hex;
  }

  // A login token is a JWT (three base64url parts); anything else is taken
  // for the client key.
  const isToken = (k) => /^eyJ[\w-]*\.[\w-]+\.[\w-]+$/.test(k);

  const defaultWS = () =>
    (location.protocol === "https:" ? "wss" : "ws") + "://" + location.hostname + ":8083/mqtt";

  // state is read by the browser test (cmd/mqim/demo_browser_test.go).
  const state = {
    status: "login", peerOnline: null, typingSeen: 0,
    messages: [], // {speaker, content, ts, seq?, id?, recalled?, edited?, el}
  };
  window.demo = { md5, state };

  let cfg = null;        // {app, key, user, peer, ws}
  let client = null;
  let ack = 0;
  const pending = new Map(); // ack number -> message waiting for its ack
  let presenceEvents = 0;    // bumped by online/offline events
  let lastTyping = 0;
  let readSent = 0;          // the read cursor this tab last published
  let typingTimer = 0;

  function showError(text) {
    const e = $("error");
    e.textContent = text;
    e.hidden = !text;
  }

  function setStatus(s, text) {
    state.status = s;
    document.body.dataset.state = s;
    $("status").textContent = text || s;
    const live = s === "connected";
    $("text").disabled = !live;
    $("send").disabled = !live;
  }

  function setPresence(online) {
    state.peerOnline = online;
    const p = $("presence");
    p.dataset.state = online ? "online" : "offline";
    p.textContent = online ? "online" : "offline";
    if (!online) hideTyping();
  }

  function hideTyping() {
    clearTimeout(typingTimer);
    $("typing").hidden = true;
  }

  // rest calls the MaxIM REST API of the server that served this page.
  async function rest(method, path) {
    const headers = isToken(cfg.key)
      ? { Authorization: "Bearer " + cfg.key }
      : { "X-ML-AppId": cfg.app, "X-ML-APIKey": cfg.key };
    const res = await fetch(path, { method, headers });
    const text = await res.text();
    let body = null;
    try { body = text ? JSON.parse(text) : null; } catch (_) { body = text; }
    if (!res.ok) {
      const msg = body && body.errorMessage ? `${body.errorMessage} (${body.errorCode})` : `HTTP ${res.status}`;
      throw new Error(`${method} ${path}: ${msg}`);
    }
    return body;
  }

  // password is a fresh MQTT password: the token, or a MaxIM auth object
  // with a new signature (signatures expire, so every reconnect signs again).
  function password() {
    if (isToken(cfg.key)) return cfg.key;
    const ts = String(Date.now());
    return JSON.stringify({ app: cfg.app, sign: md5(ts + cfg.key) + "," + ts, client: cfg.user });
  }

  // ---- messages ----

  function render(m) {
    const li = m.el || document.createElement("li");
    m.el = li;
    const mine = m.speaker === cfg.user;
    li.className = "msg " + (mine ? "mine" : "theirs") + (m.failed ? " failed" : "") + (m.ts ? "" : " pending");
    li.dataset.speaker = m.speaker;
    if (m.ts) li.dataset.ts = m.ts;
    if (m.seq) li.dataset.seq = m.seq;
    li.replaceChildren();
    const body = document.createElement("div");
    body.className = "body";
    if (m.recalled) {
      body.classList.add("recalled");
      body.textContent = "message recalled";
    } else {
      const c = m.content || {};
      const text = typeof c.body === "string" ? c.body : JSON.stringify(c.body);
      if (c.media && /^https?:\/\//.test(text)) {
        const a = document.createElement("a");
        a.href = text;
        a.target = "_blank";
        a.rel = "noopener";
        a.textContent = ["", "image", "audio", "video"][c.media] || "file";
        body.append(a);
      } else {
        body.textContent = text;
      }
    }
    const meta = document.createElement("div");
    meta.className = "meta";
    const when = m.ts ? new Date(m.ts).toLocaleTimeString() : "sending…";
    meta.textContent = (mine ? "me" : m.speaker) + " · " + (m.failed ? "not sent: " + m.failed : when) + (m.edited ? " · edited" : "");
    li.append(body, meta);
    return li;
  }

  // place keeps the list in ts order (ts is strictly increasing within a
  // conversation, so it also tells one message from another); messages
  // still waiting for their ack stay at the end.
  function place(m) {
    const list = $("messages");
    render(m);
    const i = state.messages.indexOf(m);
    if (i >= 0) state.messages.splice(i, 1);
    let at = state.messages.length;
    if (m.ts) {
      at = state.messages.findIndex((o) => !o.ts || o.ts > m.ts);
      if (at < 0) at = state.messages.length;
    }
    state.messages.splice(at, 0, m);
    const next = state.messages[at + 1];
    list.insertBefore(m.el, next ? next.el : null);
    $("empty").hidden = state.messages.length > 0;
    list.scrollTop = list.scrollHeight;
  }

  // add merges a history record or a live message.
  function add(rec) {
    const old = rec.ts && state.messages.find((o) => o.ts === rec.ts);
    if (old) {
      Object.assign(old, rec);
      render(old);
      return;
    }
    place(Object.assign({}, rec));
  }

  function bySeq(seq) {
    return state.messages.find((m) => m.seq === seq);
  }

  async function loadHistory() {
    const recs = await rest("GET", `/ctx/${cfg.user}/friends/${cfg.peer}/chats?limit=50`);
    for (const r of recs || []) add(r);
    markRead();
  }

  // markRead moves my read cursor to the latest message shown, while the
  // page is visible: other clients' unread counts (GET /ctx/{me}/conversations)
  // and the friend's receipt events follow it.
  function markRead() {
    if (!client || !client.connected || document.visibilityState !== "visible") return;
    let top = 0;
    for (const m of state.messages) if (m.seq > top) top = m.seq;
    if (top > readSent) {
      readSent = top;
      client.publish(`read/friend/${cfg.peer}`, JSON.stringify({ seq: top }), { qos: 1 });
    }
  }

  async function loadPresence() {
    const before = presenceEvents;
    const f = await rest("GET", `/ctx/${cfg.user}/friends/${cfg.peer}`);
    if (presenceEvents === before) setPresence(!!f.online); // no event overtook the answer
  }

  // ---- MQTT ----

  function onEvent(topic, payload) {
    const name = topic.slice(topic.lastIndexOf("/") + 1);
    let d;
    try { d = JSON.parse(payload.toString()); } catch (_) { return; }
    const peer = cfg.peer;
    const friendChat = (kind, id) => kind === "friend" && id === peer;
    switch (name) {
      case "online":
      case "offline":
        if (d === peer) { presenceEvents++; setPresence(name === "online"); }
        break;
      case "message":
        if (d.from && d.from.id === peer && d.from.type === 0 && !d.from.gid) {
          hideTyping();
          add({ speaker: peer, content: d.content, ts: d.ts, seq: d.seq, id: d.id });
          markRead();
        }
        break;
      case "yourself": // sent from another of my tabs
        if (d.to && d.to.id === peer && d.to.type === 0) {
          add({ speaker: cfg.user, content: d.content, ts: d.ts, seq: d.seq, id: d.id });
        }
        break;
      case "ack": {
        const m = pending.get(d.ack);
        if (!m) break;
        pending.delete(d.ack);
        const dup = state.messages.find((o) => o.ts === d.ts);
        if (dup) { // history got there first
          state.messages.splice(state.messages.indexOf(m), 1);
          m.el.remove();
          break;
        }
        m.ts = d.ts;
        place(m);
        break;
      }
      case "error": {
        const m = pending.get(d.ack);
        if (m) { pending.delete(d.ack); m.failed = d.errorMessage || "refused"; render(m); }
        showError(`refused: ${d.errorMessage} (${d.errorCode})`);
        break;
      }
      case "typing":
        if (friendChat(d.kind, d.id)) {
          state.typingSeen++;
          const t = $("typing");
          t.textContent = peer + " is typing…";
          t.hidden = false;
          clearTimeout(typingTimer);
          typingTimer = setTimeout(hideTyping, 4000);
        }
        break;
      case "recall":
        if (friendChat(d.kind, d.id) && bySeq(d.seq)) {
          const m = bySeq(d.seq);
          m.recalled = true;
          render(m);
        }
        break;
      case "edit":
        if (friendChat(d.kind, d.id) && bySeq(d.seq)) {
          const m = bySeq(d.seq);
          m.content = d.content;
          m.edited = d.edited;
          render(m);
        }
        break;
    }
  }

  // MQTT 5 CONNACK codes after which retrying cannot help.
  const fatalConnack = { 134: "bad user name or password", 135: "not authorized", 138: "banned", 151: "too many failed logins or connections" };

  function connect() {
    const clientId = `${cfg.user}-demo-${Math.random().toString(16).slice(2, 10)}`;
    setStatus("connecting", "connecting to " + cfg.ws + "…");
    client = mqtt.connect(cfg.ws, {
      protocolVersion: 5,
      clientId,
      username: cfg.user,
      password: password(),
      clean: true,
      keepalive: 30,
      reconnectPeriod: 2000,
      connectTimeout: 10000,
    });
    client.on("reconnect", () => {
      client.options.password = password();
      setStatus("reconnecting", "reconnecting…");
    });
    client.on("connect", async () => {
      try {
        await client.subscribeAsync(`users/${cfg.user}/#`, { qos: 1 });
        // After the subscription: no presence event or message can fall
        // between the REST answers and the live events.
        await Promise.all([loadPresence(), loadHistory()]);
        showError("");
        setStatus("connected", `${cfg.user} · connected to ${cfg.ws}`);
      } catch (err) {
        showError(err.message);
      }
    });
    client.on("close", () => {
      if (state.status !== "refused") setStatus("disconnected", "disconnected; retrying…");
    });
    client.on("error", (err) => {
      const why = fatalConnack[err.code];
      if (why) {
        setStatus("refused", "login refused");
        showError(`login refused: ${why} (check the app id, key or token)`);
        client.end(true);
        return;
      }
      showError(err.message);
    });
    client.on("message", onEvent);
  }

  function send(body) {
    const n = ++ack;
    const m = { speaker: cfg.user, content: { media: 0, body } };
    pending.set(n, m);
    place(m);
    client.publish(`say/friend/${cfg.peer}`, JSON.stringify({ content: m.content, ack: n }), { qos: 1 }, (err) => {
      // MQTT 5: a failing PUBACK (0x87 not friends, 0x97 rate...); the
      // error event says the same with the MaxIM code.
      if (err && pending.has(n)) { pending.delete(n); m.failed = err.message; render(m); }
    });
  }

  async function start(c) {
    cfg = c;
    if (typeof mqtt === "undefined") {
      showError("MQTT.js is missing from this build of mqim: run `make build` (its `make web` step copies MQTT.js from npm into web/demo/files/vendor) and start the new binary.");
      return;
    }
    if (!idPattern.test(c.user) || !idPattern.test(c.peer) || c.user === c.peer) {
      showError("user ids are 1-128 letters, digits, _ or -, and me and friend must differ");
      return;
    }
    $("login").hidden = true;
    $("chat").hidden = false;
    $("leave").hidden = false;
    $("peername").textContent = c.peer;
    const who = $("whoami");
    who.textContent = "signed in as " + c.user;
    who.hidden = false;
    document.title = `${c.user} ↔ ${c.peer} · mqim demo`;
    // A reload keeps the session (the URL carries the settings, as a link to
    // this page may).
    history.replaceState(null, "", "?" + new URLSearchParams(c).toString());
    try {
      // Friendship is what allows a friend chat; making friends is idempotent.
      await rest("POST", `/ctx/${c.user}/friends/${c.peer}`);
    } catch (err) {
      showError(err.message);
      return;
    }
    connect();
  }

  // ---- page ----

  const q = new URLSearchParams(location.search);
  const fields = ["app", "key", "user", "peer", "ws"];
  for (const f of fields) $(f).value = q.get(f) || "";
  if (!$("ws").value) $("ws").value = defaultWS();

  $("login").addEventListener("submit", (e) => {
    e.preventDefault();
    const c = {};
    for (const f of fields) c[f] = $(f).value.trim();
    start(c);
  });

  $("compose").addEventListener("submit", (e) => {
    e.preventDefault();
    const body = $("text").value.trim();
    if (!body || !client || !client.connected) return;
    $("text").value = "";
    send(body);
  });

  document.addEventListener("visibilitychange", markRead);

  $("text").addEventListener("input", () => {
    // typing/ is QoS 0 and forwarded at most once a second anyway.
    const now = Date.now();
    if (client && client.connected && now - lastTyping > 1000) {
      lastTyping = now;
      client.publish(`typing/friend/${cfg.peer}`, "1", { qos: 0 });
    }
  });

  if (typeof mqtt === "undefined") {
    showError("MQTT.js is missing from this build of mqim: run `make build` (its `make web` step copies MQTT.js from npm into web/demo/files/vendor) and start the new binary.");
  }
  if (["app", "key", "user", "peer"].every((f) => q.get(f))) {
    $("login").requestSubmit();
  }
})();
