// The JavaScript SDK against real node processes (driven by tests/e2e_sdk_js.sh). Subcommands:
//   provide NODE_DIR READY_FILE   a provider of sdk.js (modes: ok, throw, refuse, slow, big)
//   check NODE_DIR PROVIDER_KEY   asks it, asserts every behaviour, prints one PASS line each
//   lost NODE_DIR READY GO        connects, waits for GO (the node is stopped meanwhile), asks
import { writeFileSync, renameSync, existsSync } from "node:fs";
import * as gm from "../index.js";

const fail = (msg) => { console.log(`FAIL: ${msg}`); process.exit(1); };
const pass = (msg) => console.log(`PASS ${msg}`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let served = 0;

async function provide(dir, ready) {
  const node = await gm.connect(dir);
  const r = await node.provide("sdk.js", async (input, req) => {
    served++;
    if (input.mode === "throw") throw new TypeError("the handler broke on purpose");
    if (input.mode === "refuse") throw new gm.ProviderError("invalid_input", "mode refuse means no");
    if (input.mode === "slow") { await sleep(input.sleep ?? 4000); return { late: true }; }
    if (input.mode === "big") return { x: "y".repeat(40000) };
    return { echo: input, requester: req.requester, served };
  }, { description: "the JS SDK's test provider", inputSchema: { type: "object" }, agentId: "js-sdk-test" });
  writeFileSync(ready + ".tmp", JSON.stringify(r));
  renameSync(ready + ".tmp", ready);
  try { await node.serve(); } catch (e) {
    if (e instanceof gm.ConnectionLost) { console.log(`ConnectionLost: ${e.code}: ${e.detail}`); process.exit(3); }
    throw e;
  }
}

async function expectError(p, codes, providerCode, text) {
  try { const a = await p; fail(`expected an error, got ${JSON.stringify(a.output)}`); } catch (e) {
    if (!(e instanceof gm.MeshError)) fail(`not a MeshError: ${e}`);
    if (!codes.includes(e.code) || (providerCode && e.code === "provider_error" && e.providerCode !== providerCode) ||
        (text && !e.detail.includes(text))) fail(`expected ${codes}/${providerCode}/${text}, got ${e.code}/${e.providerCode}: ${e.detail}`);
    return e;
  }
}

async function check(dir, provKey) {
  const node = await gm.connect(dir);
  if (node.version !== 2) fail(`version ${node.version}`);
  let a = await node.ask("sdk.js", { mode: "ok", n: 1 }, { timeoutMs: 15000 });
  if (a.output.echo.n !== 1 || a.output.requester !== node.nodePublicKey) fail(`output ${JSON.stringify(a.output)}`);
  if (a.provider.agent_id !== "js-sdk-test" || a.provider.node_public_key !== provKey) fail(`provider ${JSON.stringify(a.provider)}`);
  if (a.provenance.at(-1).signer !== provKey || a.provenance.at(-1).action !== "executed" ||
      a.certificates.map((c) => c.node_public_key).join() !== provKey) fail(`provenance ${JSON.stringify(a.provenance)}`);
  pass("provide + ask by capability alone, provenance signed by the provider's node");

  // the node fails over on a provider's "failed"/"too_big" answer: with no other provider the
  // requester gets no_provider naming that last failure
  await expectError(node.ask("sdk.js", { mode: "throw" }, { timeoutMs: 15000 }), ["provider_error", "no_provider"], "failed",
    "TypeError: the handler broke on purpose");
  await expectError(node.ask("sdk.js", { mode: "refuse" }, { timeoutMs: 15000 }), ["provider_error"], "invalid_input", "mode refuse means no");
  a = await node.ask("sdk.js", { mode: "ok" }, { timeoutMs: 15000 });
  if (a.provider.agent_id !== "js-sdk-test") fail("the provider stopped serving after its handler threw");
  pass("a throwing handler is an error answer; the provider keeps serving");

  const e = await expectError(node.ask("sdk.js", { mode: "slow", sleep: 5000 }, { timeoutMs: 2000 }), ["deadline_exceeded", "provider_error"]);
  a = await node.ask("sdk.js", { mode: "ok" }, { timeoutMs: 15000 });
  pass(`a handler slower than the deadline: ${e.code} (${e.detail}); the provider still serves`);

  await expectError(node.ask("sdk.js", { mode: "big" }, { timeoutMs: 15000 }), ["provider_error", "no_provider"], "too_big", "over the limit of 32768");
  pass("an oversized answer is refused with too_big and a clear message");

  await expectError(node.ask("nobody.serves.this", {}, { timeoutMs: 5000 }), ["no_provider"]);
  await expectError(node.provide("Bad Name!", () => 1), ["invalid_request"]);
  const [x, y] = await Promise.all([node.ask("sdk.js", { n: 2 }, { timeoutMs: 15000 }), node.ask("sdk.js", { n: 3 }, { timeoutMs: 15000 })]);
  if (x.output.echo.n !== 2 || y.output.echo.n !== 3) fail("concurrent asks mixed up");
  pass("errors with the protocol's codes (no_provider, invalid_request); concurrent asks");
  node.close();
}

async function lost(dir, ready, go) {
  const node = await gm.connect(dir);
  writeFileSync(ready, "connected\n");
  for (let i = 0; i < 600 && !existsSync(go); i++) await sleep(100);
  try { await node.ask("sdk.js", {}, { timeoutMs: 5000 }); fail("ask answered with the node gone"); } catch (e) {
    if (!(e instanceof gm.ConnectionLost)) fail(`expected ConnectionLost, got ${e}`);
    pass(`the node going away: ${e.code}: ${e.detail}`);
  }
  try { await gm.connect(dir); fail("connected to a stopped node"); } catch (e) {
    if (!(e instanceof gm.ConnectionLost)) fail(`expected ConnectionLost, got ${e}`);
    pass(`connecting to a stopped node: ${e.detail}`);
  }
}

const [cmd, ...args] = process.argv.slice(2);
if (cmd === "provide") await provide(...args);
else if (cmd === "check") await check(...args);
else if (cmd === "lost") await lost(...args);
else fail(`unknown subcommand ${cmd}`);
