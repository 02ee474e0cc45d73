// The bench's tool as a user adds one to `cupcake-mcp serve`: a small stdio MCP server written with
// the MCP SDK, named in the config's `tools.servers` (exposed as `bench__add`). The peers serve the
// same tool (name, schema, answer) in their own process.
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { z } from 'zod';

const server = new McpServer({ name: 'bench-tools', version: '1.0.0' });
server.registerTool('add', { description: 'Adds two numbers', inputSchema: { a: z.number(), b: z.number() } }, async ({ a, b }) => ({
  content: [{ type: 'text', text: String(a + b) }],
}));
await server.connect(new StdioServerTransport());
