import { ASSERTION_SIGNING_ALGS } from './client-keys.js';
import { TOKEN_ENDPOINT_AUTH_METHODS } from './registration.js';
import { supportedScopes, type OAuthSettings } from './settings.js';

/** RFC 8414 §2 authorization server metadata. Every member has a value: no nulls. */
export function authorizationServerMetadata(settings: OAuthSettings) {
  const { issuer } = settings;
  return {
    issuer,
    authorization_endpoint: `${issuer}/authorize`,
    token_endpoint: `${issuer}/token`,
    registration_endpoint: `${issuer}/register`,
    revocation_endpoint: `${issuer}/revoke`,
    response_types_supported: ['code'],
    response_modes_supported: ['query'],
    grant_types_supported: settings.refreshTokens ? ['authorization_code', 'refresh_token'] : ['authorization_code'],
    code_challenge_methods_supported: ['S256'],
    token_endpoint_auth_methods_supported: [...TOKEN_ENDPOINT_AUTH_METHODS],
    // RFC 8414 §2: required when private_key_jwt is listed (RFC 7523 §2.2 client assertions).
    token_endpoint_auth_signing_alg_values_supported: [...ASSERTION_SIGNING_ALGS],
    revocation_endpoint_auth_methods_supported: [...TOKEN_ENDPOINT_AUTH_METHODS],
    revocation_endpoint_auth_signing_alg_values_supported: [...ASSERTION_SIGNING_ALGS],
    scopes_supported: supportedScopes(settings),
    // RFC 9207 §3: every authorization response carries `iss`.
    authorization_response_iss_parameter_supported: true,
    // draft-ietf-oauth-client-id-metadata-document-01 §5; MCP 2025-11-25 prefers it to registration.
    client_id_metadata_document_supported: true,
  };
}

/** RFC 9728 §2 protected resource metadata for one of our resources. */
export function protectedResourceMetadata(settings: OAuthSettings, resource: string, resourceName: string) {
  return {
    resource,
    authorization_servers: [settings.issuer],
    scopes_supported: supportedScopes(settings),
    bearer_methods_supported: ['header'],
    resource_name: resourceName,
  };
}
