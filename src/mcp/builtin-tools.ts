import { VERSION } from '../shared/version.js';
import { jsonResult, type ToolRegistry } from './tool-registry.js';

/** A harmless tool that shows a client who it is connected as: useful to check a connection. */
export function registerWhoamiTool(registry: ToolRegistry, serverName: string): () => void {
  return registry.registerTool(
    'whoami',
    {
      title: 'Who am I',
      description: `Shows which OAuth client and token this connection to ${serverName} uses.`,
      annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
    },
    (_args, { caller }) =>
      jsonResult({
        server: serverName,
        version: VERSION,
        client_id: caller.clientId,
        token_id: caller.tokenId,
        scopes: caller.scopes,
        session_id: caller.sessionId ?? null,
      }),
  );
}
