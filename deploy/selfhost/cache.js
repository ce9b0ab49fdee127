// The self-hosted relay's Cache API (docs/selfhost.md): the service workerd sends the edge
// Worker's `caches.default` operations to (`cacheApiOutbound`), as HTTP requests:
//
//   match  GET <key URL>, `Cache-Control: only-if-cached` → `CF-Cache-Status: HIT` with the stored
//          response, or `CF-Cache-Status: MISS` (504)
//   put    PUT <key URL>, the body is the response to store serialised as HTTP/1.1 (its body is
//          never chunk-encoded, even under `Transfer-Encoding: chunked`) → 204, or 413 refused
//   delete PURGE <key URL> → 200 found, 404 not
//
// (workerd's src/workerd/api/cache.c++ is the other side of this contract.)
//
// An in-memory LRU bounded in entries and bytes, in this Worker's one isolate: per VPS, lost when
// workerd restarts. Like Cloudflare's cache it stores only what the response's Cache-Control lets a
// shared cache keep (`s-maxage`, else `max-age`, else `Expires`), never `no-store`, `no-cache`,
// `private` or a `Set-Cookie` response, and forgets it when that lifetime ends.

const latin1 = new TextDecoder("latin1");

// Hop-by-hop and framing headers: the stored body is whole, workerd frames the answer itself.
const NOT_STORED = new Set(["connection", "content-length", "keep-alive", "transfer-encoding"]);

/** The entries, least recently used first (a Map keeps insertion order). */
const entries = new Map();
let storedBytes = 0;

function limit(env, name, fallback) {
  const n = Number.parseInt(env[name] ?? "", 10);
  return Number.isSafeInteger(n) && n > 0 ? n : fallback;
}

/** The cache key: the URL, within the named cache (`caches.open(name)`) if there is one. */
function keyOf(request) {
  const ns = request.headers.get("cf-cache-namespace") ?? "";
  return `${ns}\n${request.url}`;
}

/** Seconds a shared cache may keep the response for, or null when it must not store it. */
function lifetimeSecs(headers, nowMs) {
  if (headers.has("set-cookie")) return null;
  const directives = new Map();
  for (const part of (headers.get("cache-control") ?? "").split(",")) {
    const [name, value] = part.trim().split("=", 2);
    if (name) directives.set(name.toLowerCase(), value?.replace(/^"|"$/g, ""));
  }
  for (const refused of ["no-store", "no-cache", "private"]) {
    if (directives.has(refused)) return null;
  }
  for (const name of ["s-maxage", "max-age"]) {
    if (directives.has(name)) {
      const secs = Number.parseInt(directives.get(name) ?? "", 10);
      return Number.isSafeInteger(secs) && secs > 0 ? secs : null;
    }
  }
  const expires = Date.parse(headers.get("expires") ?? "");
  if (!Number.isNaN(expires) && expires > nowMs) return Math.floor((expires - nowMs) / 1000);
  return null;
}

/** The status, status text, headers and body of a serialised HTTP/1.1 response. */
function parseResponse(bytes) {
  let end = -1;
  for (let i = 0; i + 3 < bytes.length; i++) {
    if (bytes[i] === 13 && bytes[i + 1] === 10 && bytes[i + 2] === 13 && bytes[i + 3] === 10) {
      end = i;
      break;
    }
  }
  if (end < 0) return null;
  const [statusLine, ...lines] = latin1.decode(bytes.subarray(0, end)).split("\r\n");
  const status = /^HTTP\/1\.[01] (\d{3})(?: (.*))?$/.exec(statusLine);
  if (!status) return null;
  const headers = new Headers();
  for (const line of lines) {
    const colon = line.indexOf(":");
    if (colon <= 0) return null;
    const name = line.slice(0, colon).trim();
    if (!NOT_STORED.has(name.toLowerCase())) headers.append(name, line.slice(colon + 1).trim());
  }
  return {
    status: Number(status[1]),
    statusText: status[2] ?? "",
    headers,
    body: bytes.slice(end + 4),
  };
}

function remove(key) {
  const entry = entries.get(key);
  if (!entry) return false;
  entries.delete(key);
  storedBytes -= entry.size;
  return true;
}

function lookup(key, nowMs) {
  const entry = entries.get(key);
  if (!entry) return null;
  remove(key);
  if (entry.expiresMs <= nowMs) return null;
  entries.set(key, entry); // now the most recently used
  storedBytes += entry.size;
  return entry;
}

function miss() {
  return new Response(null, { status: 504, headers: { "cf-cache-status": "MISS" } });
}

async function put(request, env, nowMs) {
  const bytes = new Uint8Array(await request.arrayBuffer());
  const maxBytes = limit(env, "CACHE_MAX_BYTES", 64 * 1024 * 1024);
  const maxEntries = limit(env, "CACHE_MAX_ENTRIES", 4096);
  const maxEntryBytes = Math.min(limit(env, "CACHE_MAX_ENTRY_BYTES", 8 * 1024 * 1024), maxBytes);
  const parsed = parseResponse(bytes);
  if (!parsed) return new Response("not an HTTP/1.1 response", { status: 400 });
  const lifetime = lifetimeSecs(parsed.headers, nowMs);
  const key = keyOf(request);
  if (lifetime === null || bytes.length > maxEntryBytes || parsed.status === 206) {
    remove(key);
    return new Response(null, { status: 413 });
  }
  remove(key);
  entries.set(key, { ...parsed, storedMs: nowMs, expiresMs: nowMs + lifetime * 1000, size: bytes.length });
  storedBytes += bytes.length;
  // Evict the least recently used until both bounds hold.
  for (const oldest of entries.keys()) {
    if (entries.size <= maxEntries && storedBytes <= maxBytes) break;
    remove(oldest);
  }
  return new Response(null, { status: 204 });
}

export default {
  async fetch(request, env) {
    const nowMs = Date.now();
    const key = keyOf(request);
    switch (request.method) {
      case "GET": {
        const entry = lookup(key, nowMs);
        if (!entry) return miss();
        const headers = new Headers(entry.headers);
        headers.set("cf-cache-status", "HIT");
        headers.set("age", String(Math.floor((nowMs - entry.storedMs) / 1000)));
        return new Response(entry.status === 204 || entry.status === 304 ? null : entry.body, {
          status: entry.status,
          statusText: entry.statusText,
          headers,
        });
      }
      case "PUT":
        return put(request, env, nowMs);
      case "PURGE":
        return new Response(null, { status: remove(key) ? 200 : 404 });
      default:
        return new Response(null, { status: 405, headers: { allow: "GET, PUT, PURGE" } });
    }
  },
};

