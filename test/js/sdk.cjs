// The real MaxIM JS SDK (maxleap-im 3.0.17, socket.io-client 1.3.7, files
// untouched) against mqim, run by cmd/mqim's TestMain_MaxIMSDK. The SDK
// hard-codes http://im.maxleap.cn (REST) and http://im.maxleap.cn/chat
// (socket.io, websocket transport, port 80); this script wraps http.request
// and http.get, which the SDK's ws 0.8 and xmlhttprequest modules call, so
// connections to those hosts go to BASE instead. Every socket.io handshake
// to them is counted per auth client.
//
// alice logs in through the SDK (im({appId, clientId: key, userId})) and
// exchanges friend messages both ways with bob (socket.io-client 1.4.8); a
// passenger logs in through the SDK; a login signed with a wrong key fails
// and the SDK's handshakes for it are counted over HOLD_MS.
//
// MODE=restart checks the SDK's reconnect across a server restart (below).
//
// Prints one JSON line per event: {"who","event","payload"}.
// env: BASE, APP, KEY, HOLD_MS (default 10000).
'use strict';
const crypto = require('crypto');
const http = require('http');

const { BASE, APP, KEY } = process.env;
const HOLD_MS = Number(process.env.HOLD_MS || 10000);
const base = new URL(BASE);
const out = (who, event, payload) => process.stdout.write(JSON.stringify({ who, event, payload: payload === undefined ? null : payload }) + '\n');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const sign = () => { const ts = Date.now(); return crypto.createHash('md5').update(ts + KEY).digest('hex') + ',' + ts; };

// Redirect the SDK's hosts to the server under test.
const HOSTS = new Set(['im.maxleap.cn', 'im.maxleap.com']);
const handshakes = {};
function redirect(orig) {
  return function (options, ...rest) {
    if (typeof options === 'string' || options instanceof URL) options = Object.assign({}, urlToOptions(new URL(options)));
    else options = Object.assign({}, options);
    const host = options.hostname || (options.host || '').split(':')[0];
    if (HOSTS.has(host)) {
      options.hostname = base.hostname;
      delete options.host;
      options.port = Number(base.port);
      const path = options.path || '/';
      if (path.startsWith('/socket.io/')) {
        const auth = new URLSearchParams(path.split('?')[1] || '').get('auth');
        let who = '?';
        try { const a = JSON.parse(auth); who = a.client || (a.passenger && 'passenger') || '?'; } catch (e) { /* counted as ? */ }
        handshakes[who] = (handshakes[who] || 0) + 1;
      }
    }
    return orig.call(this, options, ...rest);
  };
}
function urlToOptions(u) {
  return { protocol: u.protocol, hostname: u.hostname, port: u.port, path: u.pathname + u.search };
}
http.request = redirect(http.request);
http.get = redirect(http.get);

// A fresh copy of the SDK per user, as each app process has one: the
// SDK's socket.io-client 1.3.7 caches one Manager per host, and its /chat
// socket, so a second im() in the same module instance would get the first
// user's socket back.
function loadSDK() {
  const dir = require('path').dirname(require.resolve('maxleap-im/package.json'));
  for (const k of Object.keys(require.cache)) if (k.startsWith(dir)) delete require.cache[k];
  delete global.ML;
  require('maxleap-im'); // lib/ML.im.js sets global.ML
  return global.ML.im;
}
const io = require('socket.io-client'); // 1.4.8, for bob

// logins counts each login event the SDK's callback gets (it is called again
// on every reconnect).
const logins = {};

function sdkLogin(who, options) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(who + ': no login')), 10000);
    let client;
    const im = loadSDK();
    client = im(Object.assign({ appId: APP }, options), (res) => {
      clearTimeout(timer);
      out(who, 'login', res);
      logins[who] = (logins[who] || 0) + 1;
      resolve(client);
    });
    client.onMessage((m) => out(who, 'message', m));
    client.yourself((m) => out(who, 'yourself', m));
    client.sys((m) => out(who, 'sys', m));
    client.online((m) => out(who, 'online', m));
    client.offline((m) => out(who, 'offline', m));
  });
}

function rawLogin(who, auth) {
  const sock = io.connect(BASE + '/chat', { query: 'auth=' + JSON.stringify(auth), transports: ['websocket'], forceNew: true, reconnection: false });
  for (const ev of ['message', 'yourself', 'ack', 'sys', 'online', 'offline']) sock.on(ev, (p) => out(who, ev, p));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(who + ': no login')), 5000);
    sock.once('login', (p) => { clearTimeout(timer); out(who, 'login', p); resolve(sock); });
  });
}

// waitFor resolves when pred is true, polling; fails after ms.
async function waitFor(what, pred, ms = 10000) {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error('timed out waiting for ' + what);
    await sleep(20);
  }
}

async function main() {
  if (process.env.MODE === 'restart') return restart();
  const bob = await rawLogin('bob', { app: APP, sign: sign(), client: 'bob' });
  let bobGot = 0;
  bob.on('message', () => { bobGot++; });

  const alice = await sdkLogin('alice', { clientId: KEY, userId: 'alice' });
  let aliceGot = 0;
  alice.onMessage(() => { aliceGot++; });

  // alice -> bob through the SDK's builder API
  alice.toFriend('bob').text('hi bob from the sdk').ok();
  await waitFor('bob to get alice\'s message', () => bobGot === 1);
  // bob -> alice
  bob.emit('say', { to: { id: 'alice', type: 0 }, content: { media: 0, body: 'hi alice from bob' }, ack: 1 });
  await waitFor('alice to get bob\'s message', () => aliceGot === 1);
  // alice's REST through the SDK (GET /ctx/alice/friends)
  await new Promise((resolve) => alice.listFriends('alice', (err, res) => { out('alice', 'friends', err ? { err: String(err) } : res); resolve(); }));

  // a passenger through the SDK
  const pas = await sdkLogin('passenger', { clientId: KEY, passenger: { id: 'p1', name: 'Pat' } });
  void pas;

  // a wrong key: login fails; count the SDK's handshakes for it
  await sdkLogin('mallory', { clientId: 'not-the-key', userId: 'mallory' });
  await sleep(HOLD_MS);
  out('script', 'handshakes', handshakes);

  bob.close();
  out('script', 'done', null);
}

// MODE=restart: alice logs in through the SDK and prints "restart-me"; the
// Go test restarts the server on the same ports and data directory. The SDK
// reconnects by itself (its socket.io-client sends the same auth again and
// the server answers login anew); bob then logs in on the new server and
// sends to alice, who must receive it on the reconnected SDK session.
async function restart() {
  const alice = await sdkLogin('alice', { clientId: KEY, userId: 'alice' });
  let got = null;
  alice.onMessage((m) => { got = m; });
  out('script', 'restart-me', null);
  await waitFor('alice to log in again after the restart', () => logins.alice >= 2, 30000);
  const bob = await rawLogin('bob', { app: APP, sign: sign(), client: 'bob' });
  bob.emit('say', { to: { id: 'alice', type: 0 }, content: { media: 0, body: 'after the restart' } });
  await waitFor('alice to get bob\'s message after the restart', () => got !== null);
  out('script', 'handshakes', handshakes);
  bob.close();
  out('script', 'done', null);
}

main().then(() => process.exit(0), (e) => { process.stderr.write(String(e && e.stack || e) + '\n'); process.exit(1); });
