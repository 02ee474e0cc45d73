/**
 * Copies of the client metadata documents of Claude and Claude Code, shipped with the server and
 * used only when the live document cannot be fetched (refused, HTTP 4xx/5xx, a challenge page
 * instead of JSON, timeout, no network). claude.ai's edge answers 403 with a JavaScript challenge
 * to many datacenter addresses, so a server on a VPS often cannot fetch them at all
 * (anthropics/claude-ai-mcp#650, 2026-07-20; anthropics/claude-code#84263, 2026-08-05).
 *
 * A pinned copy cannot grant more than the live document: the client is still public (`none`,
 * PKCE), and a code is only ever delivered to a redirect URI listed here. Keep them byte for byte
 * what the clients publish; a live document that can be fetched always wins over these.
 */
export const PINNED_CLIENT_DOCUMENTS: Readonly<Record<string, Readonly<Record<string, unknown>>>> = {
  // Claude (claude.ai, Claude Desktop connectors). As served on 2026-08-03, 2026-09-13 and
  // 2026-10-05 (the same seven members each time; one capture is quoted in full in
  // NicePakProducts/effect-digital-shelf#94). The jwt-bearer grant appeared in June 2026
  // (anthropics/claude-ai-mcp#487); unknown grants are ignored here.
  'https://claude.ai/oauth/mcp-oauth-client-metadata': {
    client_id: 'https://claude.ai/oauth/mcp-oauth-client-metadata',
    client_name: 'Claude',
    client_uri: 'https://claude.ai',
    redirect_uris: ['https://claude.ai/api/mcp/auth_callback'],
    grant_types: ['authorization_code', 'refresh_token', 'urn:ietf:params:oauth:grant-type:jwt-bearer'],
    response_types: ['code'],
    token_endpoint_auth_method: 'none',
  },
  // Claude Code. As served on 2026-08-20 and 2026-08-25 (sprawz/gtm-mcp-server#72 quotes it;
  // anthropics/claude-code#90370 confirms the redirect URIs on 2026-08-28). Its loopback redirect
  // URIs carry no port and Claude Code adds one at run time: they match on any port (RFC 8252 §7.3).
  'https://claude.ai/oauth/claude-code-client-metadata': {
    client_id: 'https://claude.ai/oauth/claude-code-client-metadata',
    client_name: 'Claude Code',
    client_uri: 'https://claude.ai',
    redirect_uris: ['http://localhost/callback', 'http://127.0.0.1/callback'],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'none',
  },
};
