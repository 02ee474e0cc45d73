import { randomBytes } from 'node:crypto';
import {
  inputRequired,
  ProtocolError,
  ProtocolErrorCode,
  type CallToolResult,
  type ClientCapabilities,
  type InputRequiredResult,
} from '@modelcontextprotocol/server';
import type { ClientRequestOut, ToolCallContext } from './tool-registry.js';

/** The server-to-client requests a tool may make of its caller, and the capability each needs (MCP "Client Features"). */
const CAPABILITY_OF: Record<string, keyof ClientCapabilities> = {
  'elicitation/create': 'elicitation',
  'sampling/createMessage': 'sampling',
  'roots/list': 'roots',
};

/** Refuses a server-to-client request the caller did not declare the capability for. */
export function assertClientCapability(capabilities: ClientCapabilities | undefined, method: string): void {
  const capability = CAPABILITY_OF[method];
  if (!capability) throw new ProtocolError(ProtocolErrorCode.MethodNotFound, `${method} is not a request the gateway passes to its clients`);
  if (capabilities?.[capability] === undefined) {
    throw new ProtocolError(ProtocolErrorCode.InvalidRequest, `the client did not declare the "${capability}" capability, so it cannot answer ${method}`);
  }
}

/** Whether the caller declared any capability a server-to-client request needs. */
export function declaresClientFeatures(capabilities: ClientCapabilities | undefined): boolean {
  return Object.values(CAPABILITY_OF).some((capability) => capabilities?.[capability] !== undefined);
}

/** How long an `input_required` round may wait for the client's retry before the call is cancelled. */
export const INTERACTION_TTL_MS = 10 * 60_000;

interface PendingAsk {
  key: string;
  request: ClientRequestOut;
  resolve(result: Record<string, unknown>): void;
  reject(error: Error): void;
}

/** One leg of a multi-round-trip call: what it reports progress to and whether its client hung up. */
export interface InteractionLeg {
  signal: AbortSignal;
  progress?: ToolCallContext['progress'];
}

class Interaction {
  readonly abort = new AbortController();
  result: Promise<CallToolResult> | undefined;
  pending: PendingAsk | undefined;
  leg: InteractionLeg | undefined;
  private wake: (() => void) | undefined;
  private asks = 0;
  expiry: NodeJS.Timeout | undefined;

  constructor(
    readonly id: string,
    readonly owner: string,
  ) {}

  /** The tool asks its caller something: held until the client's retry carries the answer. */
  ask(request: ClientRequestOut): Promise<Record<string, unknown>> {
    if (this.pending) return Promise.reject(new ProtocolError(ProtocolErrorCode.InvalidRequest, 'one request to the client at a time'));
    return new Promise((resolve, reject) => {
      this.pending = { key: `r${++this.asks}`, request, resolve, reject };
      this.wake?.();
    });
  }

  /** Waits for the tool's result or its next request to the client, whichever comes first. */
  async next(): Promise<{ done: CallToolResult } | { ask: PendingAsk }> {
    for (;;) {
      if (this.pending) return { ask: this.pending };
      const woken = new Promise<void>((resolve) => (this.wake = resolve));
      const settled = await Promise.race([this.result!.then((done) => ({ done })), woken.then(() => undefined)]);
      this.wake = undefined;
      if (settled) return settled;
    }
  }
}

/**
 * Server-to-client requests for 2026-07-28 clients (MCP 2026-07-28 "Multi-round-trip requests"):
 * a tool call whose upstream asks the client something answers `input_required` with that
 * request; the client's retry carries the answer in `inputResponses`, which goes back to the
 * waiting upstream, and the retry then answers with the result or the next `input_required`.
 *
 * The upstream call lives here between rounds, so `requestState` is only an unguessable handle
 * (128 random bits) to it, bound to the client that started the call: MRTR server requirements 4–5
 * say state that comes back from the client is untrusted, and this one carries nothing but the
 * handle. A call whose client does not come back within INTERACTION_TTL_MS is cancelled. Held in
 * this process's memory: behind several replicas, a retry must reach the same one.
 */
export class InteractionStore {
  private readonly interactions = new Map<string, Interaction>();

  constructor(private readonly ttlMs = INTERACTION_TTL_MS) {}

  get size(): number {
    return this.interactions.size;
  }

  /**
   * Serves one leg: `requestState` and `inputResponses` of a retry, or a first call that
   * `start` begins with an `ask` of its own.
   */
  async serve(
    owner: string,
    requestState: string | undefined,
    inputResponses: Record<string, unknown> | undefined,
    leg: InteractionLeg,
    start: (context: {
      signal: AbortSignal;
      ask: (request: ClientRequestOut) => Promise<Record<string, unknown>>;
      progress: ToolCallContext['progress'];
    }) => Promise<CallToolResult>,
  ): Promise<CallToolResult | InputRequiredResult> {
    let interaction: Interaction;
    if (requestState !== undefined) {
      const found = this.interactions.get(requestState);
      // Unknown, expired or another client's: the same answer, so a handle cannot be probed.
      if (!found || found.owner !== owner) throw new ProtocolError(ProtocolErrorCode.InvalidParams, 'requestState is unknown or expired: call the tool again');
      interaction = found;
      const pending = interaction.pending;
      const answer = pending ? inputResponses?.[pending.key] : undefined;
      if (pending && answer !== undefined) {
        if (typeof answer !== 'object' || answer === null || Array.isArray(answer))
          throw new ProtocolError(ProtocolErrorCode.InvalidParams, `inputResponses.${pending.key} must be an object`);
        interaction.pending = undefined;
        pending.resolve(answer as Record<string, unknown>);
      }
    } else {
      interaction = new Interaction(randomBytes(16).toString('base64url'), owner);
      this.interactions.set(interaction.id, interaction);
      const progress: ToolCallContext['progress'] = (update) => interaction.leg?.progress?.(update) ?? Promise.resolve();
      interaction.result = start({ signal: interaction.abort.signal, ask: (request) => interaction.ask(request), progress });
      // Settled here too, so that a call abandoned between rounds never leaves an unhandled rejection.
      interaction.result.catch(() => undefined);
    }
    clearTimeout(interaction.expiry);
    interaction.leg = leg;
    // The client hanging up while the tool runs cancels it, as for any call.
    const onHangUp = () => this.end(interaction, 'the client went away');
    leg.signal.addEventListener('abort', onHangUp, { once: true });
    try {
      const next = await interaction.next();
      if ('done' in next) {
        this.end(interaction);
        return next.done;
      }
      interaction.expiry = setTimeout(() => this.end(interaction, 'the client did not answer in time'), this.ttlMs);
      interaction.expiry.unref();
      return inputRequired({ inputRequests: { [next.ask.key]: next.ask.request as never }, requestState: interaction.id });
    } finally {
      leg.signal.removeEventListener('abort', onHangUp);
      interaction.leg = undefined;
    }
  }

  /** Cancels every call waiting for a client (shutdown). */
  close(): void {
    for (const interaction of [...this.interactions.values()]) this.end(interaction, 'server shutdown');
  }

  private end(interaction: Interaction, reason?: string): void {
    clearTimeout(interaction.expiry);
    this.interactions.delete(interaction.id);
    if (reason === undefined) return;
    interaction.pending?.reject(new Error(`the client's answer never came: ${reason}`));
    interaction.pending = undefined;
    interaction.abort.abort(new Error(reason));
  }
}
