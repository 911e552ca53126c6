// The REST client of the console: every call carries the app id and the
// master key the operator typed in, kept in sessionStorage (this tab only,
// never in the URL).

const storeKey = 'mqim.admin';

// base is where the REST API lives: the console is served at <base>admin/,
// so a reverse proxy that mounts mqim under a prefix keeps working.
export const base = location.pathname.replace(/admin\/.*$/, '');

export const session = {
  get() {
    try {
      const s = JSON.parse(sessionStorage.getItem(storeKey));
      return s && s.app && s.master ? s : null;
    } catch {
      return null;
    }
  },
  set(app, master) {
    sessionStorage.setItem(storeKey, JSON.stringify({ app, master }));
  },
  clear() {
    sessionStorage.removeItem(storeKey);
  },
};

// ApiError is a failed call: the MaxIM errorCode and errorMessage when the
// server sent them, the HTTP status always.
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || `HTTP ${status}`);
    this.status = status;
    this.code = code;
  }

  toString() {
    return this.code ? `Error ${this.code}: ${this.message} (HTTP ${this.status})` : `${this.message} (HTTP ${this.status})`;
  }
}

// call sends one request and returns the decoded JSON answer (null for an
// empty one). creds overrides the stored session (the login check).
export async function call(method, path, body, creds = session.get()) {
  const headers = {};
  if (creds) {
    headers['X-ML-AppId'] = creds.app;
    headers['X-ML-MasterKey'] = creds.master;
  }
  const init = { method, headers };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(base + path.replace(/^\//, ''), init);
  } catch (e) {
    throw new ApiError(0, 0, `network error: ${e.message}`);
  }
  const text = await res.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = text;
    }
  }
  if (!res.ok) {
    const code = data && typeof data === 'object' ? data.errorCode : 0;
    const msg = data && typeof data === 'object' ? data.errorMessage : res.statusText;
    throw new ApiError(res.status, code, msg);
  }
  return data;
}

// enc escapes one path segment.
export const enc = encodeURIComponent;

// qs builds a query string from an object, skipping empty values; a value
// of true is a valueless flag (?detail).
export function qs(params) {
  const parts = [];
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === '' || v === false) continue;
    parts.push(v === true ? enc(k) : `${enc(k)}=${enc(v)}`);
  }
  return parts.length ? `?${parts.join('&')}` : '';
}
