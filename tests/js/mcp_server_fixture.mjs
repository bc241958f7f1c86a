// An MCP server on the official TypeScript SDK (McpServer + StdioServerTransport), run by
// tests/e2e_mcp.sh under `genesis-mesh agent run --mcp`: the tool `shout` upper-cases text
// (with structured content), `crash` makes the process exit (a crashing MCP server), `refuse`
// answers a tool error (isError).
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import { z } from "zod";

const server = new McpServer({ name: "gm-fixture", version: "1.0.0" });
server.registerTool("shout", {
  description: "Upper-cases a text",
  inputSchema: { text: z.string() },
  outputSchema: { shout: z.string(), pid: z.number() },
}, async ({ text }) => {
  const out = { shout: text.toUpperCase(), pid: process.pid };
  return { content: [{ type: "text", text: JSON.stringify(out) }], structuredContent: out };
});
server.registerTool("crash", { description: "Exits the server (for tests)", inputSchema: {} }, async () => {
  process.stderr.write("fixture: crashing on purpose\n");
  process.exit(7);
});
server.registerTool("refuse", { description: "Always a tool error", inputSchema: {} }, async () => ({
  content: [{ type: "text", text: "the fixture refuses politely" }], isError: true,
}));
await server.connect(new StdioServerTransport());
