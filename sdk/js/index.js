// genesis-mesh SDK for Node.js: put a JavaScript agent on a genesis-mesh network and call the
// agents on it, through the node's local API (docs/local-api.md, protocol version 2) on its Unix
// socket. The node does all the cryptography (signs descriptors and provenance, verifies every
// answer), so this module has no dependencies and holds no key.
import net from "node:net";
import fs from "node:fs";
import path from "node:path";

export const PROTOCOL_VERSION = 2;
export const MAX_LINE = 262144;
export const ANSWER_CODES = ["invalid_input", "failed", "timeout", "unavailable", "too_big"];

/** An error of the local API: `code` is one of the protocol's fixed codes. */
export class MeshError extends Error {
  constructor(code, message, extra = {}) {
    super(`${code}: ${message}`);
    this.name = "MeshError";
    this.code = code;
    this.detail = message;
    this.providerCode = extra.providerCode ?? null;
    this.provider = extra.provider ?? null;
    this.provenance = extra.provenance ?? null;
  }
}
export class NoProvider extends MeshError { constructor(c, m, e) { super(c, m, e); this.name = "NoProvider"; } }
export class ProviderError extends MeshError {
  /** Thrown by a handler with an answer code (invalid_input, failed, ...) to choose its error answer. */
  constructor(code, message, extra = {}) {
    if (ANSWER_CODES.includes(code) && extra.providerCode === undefined) super("provider_error", message, { providerCode: code });
    else super(code, message, extra);
    this.name = "ProviderError";
  }
}
export class DeadlineExceeded extends MeshError { constructor(c, m, e) { super(c, m, e); this.name = "DeadlineExceeded"; } }
export class ConnectionLost extends MeshError { constructor(c, m, e) { super(c, m, e); this.name = "ConnectionLost"; } }

const BY_CODE = { no_provider: NoProvider, provider_error: ProviderError, deadline_exceeded: DeadlineExceeded };

function errorFrom(resp) {
  const e = resp.error || {};
  const code = e.code || "internal";
  const Cls = BY_CODE[code] || MeshError;
  return new Cls(code, e.message || "(no message)", {
    providerCode: e.provider_code ?? null, provider: resp.provider ?? null, provenance: resp.provenance ?? null,
  });
}

/** A node directory (its node.sock) or the socket's own path; default $GM_DIR or ".". */
export function socketPath(where) {
  where = where || process.env.GM_DIR || ".";
  let st;
  try { st = fs.statSync(where); } catch (e) {
    throw new ConnectionLost("unavailable", `no node directory or socket at ${where}: ${e.code}`);
  }
  return st.isDirectory() ? path.join(where, "node.sock") : where;
}

function answerFor(requestId, result, error, outputMax) {
  const msg = { op: "answer", request_id: requestId };
  if (!error) {
    const size = Buffer.byteLength(JSON.stringify(result ?? null));
    if (size > outputMax) error = new ProviderError("too_big", `the handler's output is ${size} bytes, over the limit of ${outputMax}`);
    else { msg.output = result ?? null; return msg; }
  }
  let code = "failed", text;
  if (error instanceof MeshError && ANSWER_CODES.includes(error.providerCode)) { code = error.providerCode; text = error.detail; }
  else if (error instanceof MeshError && ANSWER_CODES.includes(error.code)) { code = error.code; text = error.detail; }
  else text = `the handler threw ${error?.name ?? "an error"}: ${error?.message ?? String(error)}`;
  msg.error = { code, message: Buffer.from(text).subarray(0, 500).toString() };
  return msg;
}

/** A connection to a running node. Create it with `connect()`. */
export class Node {
  constructor(sockPath, options = {}) {
    this.path = sockPath;
    this.version = 0;
    this.nodePublicKey = "";
    this.network = "";
    this.limits = {};
    this._sock = null;
    this._buf = "";
    this._nextId = 1;
    this._waiters = new Map();
    this._handlers = new Map();
    this._lost = null;
    this._closing = false;
    this._log = options.logger ?? console;
    this._closedPromise = new Promise((resolve) => { this._resolveClosed = resolve; });
  }

  async _open(timeoutMs) {
    await new Promise((resolve, reject) => {
      const s = net.createConnection(this.path);
      const t = setTimeout(() => { s.destroy(); reject(new ConnectionLost("unavailable", `cannot connect to the node at ${this.path}: timeout`)); }, timeoutMs);
      s.once("connect", () => { clearTimeout(t); resolve(); });
      s.once("error", (e) => {
        clearTimeout(t);
        reject(new ConnectionLost("unavailable", `cannot connect to the node at ${this.path}: ${e.code || e.message} (is \`genesis-mesh node start\` running there?)`));
      });
      this._sock = s;
    });
    this._sock.setEncoding("utf8");
    this._sock.on("data", (d) => this._onData(d));
    this._sock.on("error", (e) => this._lose(`lost the node: ${e.code || e.message}`));
    this._sock.on("close", () => this._lose("the node closed the connection"));
    const hello = await this._call({ op: "hello", versions: [PROTOCOL_VERSION] }, timeoutMs);
    this.version = hello.version;
    this.nodePublicKey = hello.node_public_key ?? "";
    this.network = hello.network ?? "";
    this.limits = hello.limits ?? {};
  }

  _lose(reason) {
    if (!this._lost) this._lost = new ConnectionLost("unavailable", `${reason} (${this.path})`);
    for (const w of this._waiters.values()) w.reject(this._lost);
    this._waiters.clear();
    this._resolveClosed();
  }

  _onData(chunk) {
    this._buf += chunk;
    if (this._buf.length > 16 * MAX_LINE) { this._sock.destroy(); return this._lose("the node sent an over-long line"); }
    let nl;
    while ((nl = this._buf.indexOf("\n")) >= 0) {
      const line = this._buf.slice(0, nl);
      this._buf = this._buf.slice(nl + 1);
      if (!line.trim()) continue;
      let m;
      try { m = JSON.parse(line); } catch { this._log.warn?.("genesis-mesh: the node sent a line that is not JSON"); continue; }
      this._dispatch(m);
    }
  }

  _dispatch(m) {
    if ("ok" in m) {
      const w = this._waiters.get(String(m.id));
      if (w) { this._waiters.delete(String(m.id)); w.resolve(m); }
      else if (!m.ok) this._log.warn?.(`genesis-mesh: the node refused ${m.id}: ${m.error?.message}`);
      return;
    }
    if (m.event === "request") this._handle(m);
    else if (m.event === "cancel") this._log.warn?.(`genesis-mesh: request ${m.request_id}: its deadline passed; the node answered timeout`);
    else if (m.event === "withdrawn") { this._log.error?.(`genesis-mesh: the node withdrew ${m.capability}: ${m.reason}`); this._handlers.delete(m.capability); }
  }

  async _handle(ev) {
    const handler = this._handlers.get(ev.capability);
    const request = {
      requestId: ev.request_id, capability: ev.capability, input: ev.input, requester: ev.requester,
      deadline: ev.deadline, deadlineMs: ev.deadline_ms, authorized: ev.authorized ?? null,
    };
    let msg;
    try {
      if (!handler) throw new MeshError("unavailable", `no handler for ${ev.capability} here`);
      const result = await handler(ev.input, request);
      msg = answerFor(ev.request_id, result, null, this.limits.output_max ?? 32768);
    } catch (e) { // a handler's failure is an error answer, never a dead provider
      this._log.warn?.(`genesis-mesh: request ${ev.request_id} (${ev.capability}): ${e?.stack ?? e}`);
      msg = answerFor(ev.request_id, null, e ?? new Error("undefined"), 0);
    }
    try { await this._call(msg, 15000); } catch (e) {
      this._log.warn?.(`genesis-mesh: request ${ev.request_id}: the answer was not taken: ${e.message}`);
    }
  }

  _call(msg, timeoutMs) {
    if (this._lost) return Promise.reject(this._lost);
    const id = `js-${this._nextId++}`;
    const line = JSON.stringify({ ...msg, id });
    if (Buffer.byteLength(line) > MAX_LINE)
      return Promise.reject(new MeshError("too_big", `the request is ${Buffer.byteLength(line)} bytes, over the local API's line limit of ${MAX_LINE}`));
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this._waiters.delete(id);
        reject(new DeadlineExceeded("deadline_exceeded", `the node did not answer ${msg.op} within ${timeoutMs} ms`));
      }, timeoutMs);
      this._waiters.set(id, {
        resolve: (r) => { clearTimeout(t); r.ok ? resolve(r) : reject(errorFrom(r)); },
        reject: (e) => { clearTimeout(t); reject(e); },
      });
      this._sock.write(line + "\n");
    });
  }

  /** Offer `capability`, served by `handler(input, request)` (may be async). */
  async provide(capability, handler, options = {}) {
    const key = capability.replaceAll(":", ".");
    this._handlers.set(key, handler);
    const req = { op: "provide", capability };
    if (options.description !== undefined) req.description = options.description;
    if (options.inputSchema !== undefined) req.input_schema = options.inputSchema;
    if (options.agentId !== undefined) req.agent_id = options.agentId;
    if (options.ttlS !== undefined) req.ttl_s = options.ttlS;
    try {
      const resp = await this._call(req, options.timeoutMs ?? 15000);
      this._handlers.set(resp.capability ?? key, handler);
      return { capability: resp.capability, agentId: resp.agent_id, expiresAt: resp.expires_at };
    } catch (e) { this._handlers.delete(key); throw e; }
  }

  /** Stop offering `capability`: the node deletes the registration at the NA. */
  async withdraw(capability, options = {}) {
    await this._call({ op: "withdraw", capability }, options.timeoutMs ?? 15000);
    this._handlers.delete(capability.replaceAll(":", "."));
  }

  /** Invoke `capability` by name alone; resolves to a verified answer. */
  async ask(capability, input = {}, options = {}) {
    const timeoutMs = Math.max(1, Math.min(600000, options.timeoutMs ?? 10000));
    const r = await this._call({ op: "ask", capability, input, deadline_ms: timeoutMs }, timeoutMs + 5000);
    return { output: r.output, provider: r.provider, provenance: r.provenance ?? [], certificates: r.certificates ?? [], raw: r };
  }

  async status() { return this._call({ op: "status" }, 10000); }

  /** Resolves after close(); rejects with ConnectionLost when the node goes away. */
  async serve() {
    await this._closedPromise;
    if (this._lost && !this._closing) throw this._lost;
  }

  /** Close the connection: the node withdraws every capability it provided at once. */
  close() {
    this._closing = true;
    this._sock?.destroy();
    this._resolveClosed();
  }
}

/** Connect to the node in directory `where` (or at socket path `where`), negotiate version 2. */
export async function connect(where, options = {}) {
  const node = new Node(socketPath(where), options);
  try {
    await node._open(options.timeoutMs ?? 10000);
  } catch (e) {
    node.close();
    throw e;
  }
  return node;
}
