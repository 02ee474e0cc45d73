/** One server-sent event as the stream delivered it. */
export interface SseEvent {
  event: string;
  data: string;
}

/**
 * Reads a text/event-stream response incrementally. `next()` resolves with the next event (comments
 * such as keep-alives are skipped) or rejects after `timeoutMs`; `closed` resolves when the server
 * ends the stream.
 */
export class SseReader {
  private buffer = '';
  private readonly queue: SseEvent[] = [];
  private waiters: Array<(event: SseEvent | undefined) => void> = [];
  private ended = false;
  readonly closed: Promise<void>;

  constructor(response: Response) {
    if (!response.body) throw new Error('response has no body');
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    this.closed = (async () => {
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          this.push(value);
        }
      } catch {
        /* aborted or reset: the stream is over either way */
      } finally {
        this.ended = true;
        for (const w of this.waiters.splice(0)) w(undefined);
      }
    })();
  }

  async next(timeoutMs = 5_000): Promise<SseEvent> {
    const ready = this.queue.shift();
    if (ready) return ready;
    if (this.ended) throw new Error('the SSE stream has ended');
    return new Promise<SseEvent>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`no SSE event within ${timeoutMs} ms`));
      }, timeoutMs);
      const waiter = (event: SseEvent | undefined) => {
        clearTimeout(timer);
        if (event) resolve(event);
        else reject(new Error('the SSE stream has ended'));
      };
      this.waiters.push(waiter);
    });
  }

  private push(chunk: string): void {
    this.buffer += chunk.replace(/\r\n/g, '\n');
    for (let index = this.buffer.indexOf('\n\n'); index >= 0; index = this.buffer.indexOf('\n\n')) {
      const block = this.buffer.slice(0, index);
      this.buffer = this.buffer.slice(index + 2);
      let event = 'message';
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'event') event = value;
        else if (field === 'data') data.push(value);
      }
      if (data.length === 0) continue;
      const parsed = { event, data: data.join('\n') };
      const waiter = this.waiters.shift();
      if (waiter) waiter(parsed);
      else this.queue.push(parsed);
    }
  }
}
