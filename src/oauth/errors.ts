import { OAuthError as SdkOAuthError } from '@modelcontextprotocol/sdk/server/auth/errors.js';

/**
 * RFC 6749 §4.1.2.1 and §5.2: `error_description` MUST NOT include characters outside
 * %x20-21 / %x23-5B / %x5D-7E. Descriptions cite sections ("§") and quote client input, so they
 * are mapped into that set here, once, for every error the server sends or redirects.
 */
export function toErrorDescription(text: string): string {
  return text
    .replace(/§\s*/g, 'section ')
    .replace(/"/g, "'")
    .replace(/\\/g, '/')
    .replace(/[^\x20-\x21\x23-\x5B\x5D-\x7E]/g, '?');
}

/**
 * An OAuth error with its HTTP status. `message` is the `error_description`, safe to send to the
 * client; `detail` is for the event log only (never sent). The wire code comes from the
 * subclass's static `errorCode`, as in the MCP SDK's errors whose base class this extends.
 */
export abstract class OAuthError extends SdkOAuthError {
  abstract readonly status: number;
  readonly detail: string | undefined;

  constructor(description: string, detail?: string) {
    super(toErrorDescription(description));
    this.detail = detail;
  }

  override toResponseObject(): { error: string; error_description: string } {
    return { error: this.errorCode, error_description: this.message };
  }
}

// RFC 6749 §5.2 (token endpoint), §4.1.2.1 (authorization endpoint).
export class InvalidRequestError extends OAuthError {
  static override errorCode = 'invalid_request';
  override readonly status = 400;
}
/**
 * RFC 6749 §5.2: 401 when the client authenticated (or should have) and failed. RFC 9110 §11.6.1:
 * every 401 carries a challenge, so it names Basic, the scheme the token endpoint accepts
 * (RFC 6749 §2.3.1), whichever way the client tried.
 */
export class InvalidClientError extends OAuthError {
  static override errorCode = 'invalid_client';
  override readonly status = 401;
  readonly challenge: string = 'Basic realm="cupcake-mcp", charset="UTF-8"';
}
export class InvalidGrantError extends OAuthError {
  static override errorCode = 'invalid_grant';
  override readonly status = 400;
}
export class UnauthorizedClientError extends OAuthError {
  static override errorCode = 'unauthorized_client';
  override readonly status = 400;
}
export class UnsupportedGrantTypeError extends OAuthError {
  static override errorCode = 'unsupported_grant_type';
  override readonly status = 400;
}
export class UnsupportedResponseTypeError extends OAuthError {
  static override errorCode = 'unsupported_response_type';
  override readonly status = 400;
}
export class InvalidScopeError extends OAuthError {
  static override errorCode = 'invalid_scope';
  override readonly status = 400;
}
/** RFC 8707 §2: a `resource` this server does not serve. */
export class InvalidTargetError extends OAuthError {
  static override errorCode = 'invalid_target';
  override readonly status = 400;
}
export class AccessDeniedError extends OAuthError {
  static override errorCode = 'access_denied';
  override readonly status = 403;
}
/** RFC 7591 §3.2.2 */
export class InvalidClientMetadataError extends OAuthError {
  static override errorCode = 'invalid_client_metadata';
  override readonly status = 400;
}
/** RFC 7591 §3.2.2 */
export class InvalidRedirectUriError extends OAuthError {
  static override errorCode = 'invalid_redirect_uri';
  override readonly status = 400;
}
/** RFC 6750 §3.1 */
export class InvalidTokenError extends OAuthError {
  static override errorCode = 'invalid_token';
  override readonly status = 401;
}
/** RFC 6750 §3.1 */
export class InsufficientScopeError extends OAuthError {
  static override errorCode = 'insufficient_scope';
  override readonly status = 403;
}
export class UnsupportedTokenTypeError extends OAuthError {
  static override errorCode = 'unsupported_token_type';
  override readonly status = 400;
}
export class TooManyRequestsError extends OAuthError {
  static override errorCode = 'too_many_requests';
  override readonly status = 429;
}
export class ServerError extends OAuthError {
  static override errorCode = 'server_error';
  override readonly status = 500;
}
export class TemporarilyUnavailableError extends OAuthError {
  static override errorCode = 'temporarily_unavailable';
  override readonly status = 503;
}
