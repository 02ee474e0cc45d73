/**
 * Where each MCP session lives, and the way to reach it from another replica (DESIGN.md §6: no
 * sticky routing). A request for a session held elsewhere is sent to its replica, handled there
 * exactly as if it had arrived there, and the answer comes back to be sent as the HTTP response.
 */
export interface RelayRequest {
  /** Which handler on the holding replica (e.g. "sse-message"). */
  kind: string;
  sessionId: string;
  /** JSON: what the handler needs (the verified token, the body). */
  payload: unknown;
}

export interface RelayReply {
  status: number;
  headers?: Record<string, string>;
  body: string;
}

export interface SessionRelay {
  /** Records that this replica holds `sessionId`. */
  claim(sessionId: string): Promise<void>;
  release(sessionId: string): Promise<void>;
  /**
   * Sends a request to the replica that holds the session; undefined when no live replica holds
   * it (the caller answers 404 as for an unknown session).
   */
  forward(request: RelayRequest): Promise<RelayReply | undefined>;
  /** The handler for requests of `kind` relayed to this replica. */
  handle(kind: string, handler: (request: RelayRequest) => Promise<RelayReply>): void;
  close(): Promise<void>;
}
