// `genesis-mesh mcp serve` under the official MCP TypeScript SDK as the client (Client +
// StdioClientTransport), driven by tests/e2e_mcp.sh: lists the tools (the mesh's capabilities),
// calls one served by an agent on another node and checks the provider and the verified
// provenance, gets a tool error for a failing call, and sees notifications/tools/list_changed
// when a new capability is provided (the shell starts it once this writes STEP_FILE).
// usage: node mcp_client_check.mjs GM_BIN NODE_DIR PROVIDER_KEY STEP_FILE
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { ToolListChangedNotificationSchema } from "@modelcontextprotocol/sdk/types.js";
import { writeFileSync } from "node:fs";

const [gmBin, nodeDir, providerKey, stepFile] = process.argv.slice(2);
const fail = (msg) => { console.log(`FAIL: ${msg}`); process.exit(1); };
const pass = (msg) => console.log(`PASS ${msg}`);

const transport = new StdioClientTransport({
  command: gmBin, args: ["mcp", "serve", "--dir", nodeDir, "--refresh-ms", "300"], stderr: "inherit",
});
const client = new Client({ name: "genesis-mesh-e2e", version: "1.0.0" });
let changed = 0;
client.setNotificationHandler(ToolListChangedNotificationSchema, () => { changed++; });
await client.connect(transport);
const caps = client.getServerCapabilities();
if (!caps?.tools?.listChanged) fail(`server capabilities ${JSON.stringify(caps)}`);
const info = client.getServerVersion();
if (info?.name !== "genesis-mesh") fail(`server info ${JSON.stringify(info)}`);
pass(`initialize: ${info.name} ${info.version}, tools.listChanged`);

let { tools } = await client.listTools();
const t = tools.find((x) => x.name === "sdk__test");
if (!t) fail(`no sdk__test in ${JSON.stringify(tools.map((x) => x.name))}`);
if (t.title !== "sdk.test" || !t.description.startsWith("the Python SDK's test provider") ||
    t.inputSchema.type !== "object" || t.inputSchema.properties?.mode?.type !== "string")
  fail(`tool ${JSON.stringify(t)}`);
pass("tools/list: the capability sdk.test as the tool sdk__test, with its description and input schema");

const r = await client.callTool({ name: "sdk__test", arguments: { mode: "ok", n: 7 } });
const sc = r.structuredContent;
if (r.isError || sc?.output?.echo?.n !== 7) fail(`call result ${JSON.stringify(r)}`);
if (sc.provider.agent_id !== "py-sdk-test" || sc.provider.node_public_key !== providerKey) fail(`provider ${JSON.stringify(sc.provider)}`);
const last = sc.provenance[sc.provenance.length - 1];
if (last.signer !== providerKey || last.action !== "executed" || sc.verified !== true ||
    sc.certificates[0].node_public_key !== providerKey) fail(`provenance ${JSON.stringify(sc)}`);
if (!r.content[0].text.includes("provider: py-sdk-test") || !r.content[0].text.includes("verified")) fail(`text ${r.content[0].text}`);
pass("tools/call: answered over the mesh by py-sdk-test on another node, provenance verified");

const bad = await client.callTool({ name: "sdk__test", arguments: { mode: "refuse" } });
if (!bad.isError || !bad.content[0].text.includes("mode refuse means no") || bad.structuredContent?.error?.provider_code !== "invalid_input")
  fail(`error result ${JSON.stringify(bad)}`);
pass("tools/call: a provider's error answer is a tool error (isError) with its code and message");

try {
  await client.callTool({ name: "no__such__tool_", arguments: {} });
  fail("an unknown tool name was called");
} catch (e) {
  if (!String(e.message).includes("not a genesis-mesh tool name")) fail(`unknown tool: ${e.message}`);
}
pass("tools/call: an impossible tool name is a JSON-RPC error (invalid params)");

const before = changed;
writeFileSync(stepFile, "listed\n");
for (let i = 0; i < 600 && !(changed > before && (await client.listTools()).tools.some((x) => x.name === "exec__upper")); i++)
  await new Promise((res) => setTimeout(res, 100));
if (changed <= before) fail("no notifications/tools/list_changed after a new capability was provided");
({ tools } = await client.listTools());
if (!tools.some((x) => x.name === "exec__upper")) fail(`exec__upper not listed: ${JSON.stringify(tools.map((x) => x.name))}`);
const up = await client.callTool({ name: "exec__upper", arguments: { text: "mesh" } });
if (up.isError || up.structuredContent.output.upper !== "MESH") fail(`exec__upper ${JSON.stringify(up)}`);
pass("notifications/tools/list_changed when exec.upper was provided; its tool answers");
await client.close();
