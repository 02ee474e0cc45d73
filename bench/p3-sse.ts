import { Agent, request } from 'node:http';
import { readFileSync } from 'node:fs';
import { BENCH_CALL, percentile, spawnTarget, type TargetProcess } from './harness.js';
import type { Row } from './report.js';

function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
  return kb / 1024;
}

interface Stream {
  endpoint: Promise<string>;
  waiting: Map<number, number>;
  close(): void;
}

/** Opens GET /sse and resolves the message endpoint; records reply latencies by request id. */
function openStream(url: string, token: string, agent: Agent, latencies: number[]): Stream {
  const waiting = new Map<number, number>();
  let resolveEndpoint!: (value: string) => void;
  let rejectEndpoint!: (error: Error) => void;
  const endpoint = new Promise<string>((resolve, reject) => {
    resolveEndpoint = resolve;
    rejectEndpoint = reject;
  });
  const req = request(`${url}/sse`, { agent, headers: { Authorization: `Bearer ${token}`, Accept: 'text/event-stream' } }, (res) => {
    if (res.statusCode !== 200) return rejectEndpoint(new Error(`GET /sse answered ${res.statusCode}`));
    res.setEncoding('utf8');
    let buffer = '';
    res.on('data', (chunk: string) => {
      buffer += chunk;
      for (let index = buffer.indexOf('\n\n'); index >= 0; index = buffer.indexOf('\n\n')) {
        const block = buffer.slice(0, index);
        buffer = buffer.slice(index + 2);
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (!data) continue;
        if (block.startsWith('event: endpoint')) resolveEndpoint(data);
        else {
          const id = (JSON.parse(data) as { id?: number }).id;
          const sent = id === undefined ? undefined : waiting.get(id);
          if (sent !== undefined) {
            latencies.push(performance.now() - sent);
            waiting.delete(id!);
          }
        }
      }
    });
  });
  req.on('error', (error) => rejectEndpoint(error));
  req.end();
  return { endpoint, waiting, close: () => req.destroy() };
}

function post(url: string, path: string, token: string, agent: Agent, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${url}${path}`,
      { method: 'POST', agent, headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

interface SseResult {
  p99: number;
  p50: number;
  replies: number;
  accepted: number;
  total: number;
  rssMb: number;
}

/** Holds `sessions` SSE streams on `target` and sends `rate` tools/call messages per second over them for `seconds`. */
async function measure(target: TargetProcess, sessions: number, rate: number, seconds: number): Promise<SseResult> {
  const streamAgent = new Agent({ keepAlive: true, maxSockets: Infinity });
  const postAgent = new Agent({ keepAlive: true, maxSockets: 64 });
  const latencies: number[] = [];
  const streams: Stream[] = [];
  try {
    for (let i = 0; i < sessions; i++) streams.push(openStream(target.url, target.token, streamAgent, latencies));
    const endpoints = await Promise.all(streams.map((s) => s.endpoint));
    const init = JSON.stringify({
      jsonrpc: '2.0',
      id: 0,
      method: 'initialize',
      params: { protocolVersion: '2024-11-05', capabilities: {}, clientInfo: { name: 'bench', version: '1' } },
    });
    for (let i = 0; i < endpoints.length; i += 100) {
      await Promise.all(endpoints.slice(i, i + 100).map((e) => post(target.url, e, target.token, postAgent, init)));
    }
    await Promise.all(
      endpoints.map((e) => post(target.url, e, target.token, postAgent, JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }))),
    );
    latencies.length = 0;
    const rss = rssMb(target.child.pid!);

    let id = 1;
    const total = rate * seconds;
    const started = performance.now();
    const sends: Array<Promise<number>> = [];
    for (let n = 0; n < total; n++) {
      const due = started + (n * 1000) / rate;
      const wait = due - performance.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      const session = n % sessions;
      const messageId = id++;
      streams[session]!.waiting.set(messageId, performance.now());
      sends.push(
        post(
          target.url,
          endpoints[session]!,
          target.token,
          postAgent,
          JSON.stringify({ jsonrpc: '2.0', id: messageId, method: 'tools/call', params: { name: BENCH_CALL.name, arguments: BENCH_CALL.arguments } }),
        ),
      );
    }
    const statuses = await Promise.all(sends);
    const deadline = performance.now() + 5_000;
    while (latencies.length < total && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const accepted = statuses.filter((s) => s === 202).length;
    const rssAfter = rssMb(target.child.pid!);
    const p99 = latencies.length === total ? percentile(latencies, 99) : Infinity;
    return { p99, p50: percentile(latencies, 50), replies: latencies.length, accepted, total, rssMb: Math.max(rss, rssAfter) };
  } finally {
    for (const s of streams) s.close();
    streamAgent.destroy();
    postAgent.destroy();
  }
}

/**
 * P3 — legacy SSE at scale: `sessions` GET /sse streams held open (each initialized), then
 * `rate` tools/call messages per second spread round-robin over them for `seconds`; latency is
 * from sending POST /messages to the reply event arriving on that session's stream. RSS of the
 * server process is read from /proc while every stream is open. The in-process app runs the same
 * load after serve, for the note (what serve adds to the app).
 */
export async function runP3(quick: boolean): Promise<Row[]> {
  const sessions = quick ? 50 : 1_000;
  const rate = quick ? 100 : 500;
  const seconds = quick ? 1 : 8;
  // 1,000 sessions on one token: a deployment raises the documented per-client cap (default 100) in its config.
  const serve = await spawnTarget('cupcake', { sessionsPerClient: sessions });
  let result: SseResult;
  try {
    result = await measure(serve, sessions, rate, seconds);
  } finally {
    await serve.stop();
  }
  // The in-process app (the same tool and documented limit, without serve's process), for the
  // note; a quick run only proves the bench works and leaves it out.
  let inProcess: SseResult | undefined;
  if (!quick) {
    const app = await spawnTarget('cupcake-app');
    try {
      inProcess = await measure(app, sessions, rate, seconds);
    } finally {
      await app.stop();
    }
  }
  return [
    {
      figure: `P3 SSE ${sessions} sessions, ${rate} msg/s: reply p99 ms`,
      cupcake: result.p99,
      peer: null,
      ratio: null,
      target: '≤ 50 ms',
      pass: result.p99 <= 50 && result.accepted === result.total,
      note:
        `${result.replies}/${result.total} replies, ${result.accepted} accepted; p50 ${result.p50.toFixed(1)} ms` +
        `${inProcess ? `; in-process createApp p99 ${inProcess.p99.toFixed(1)} ms, p50 ${inProcess.p50.toFixed(1)} ms` : ''}`,
    },
    {
      figure: `P3 server RSS with ${sessions} SSE sessions (MB)`,
      cupcake: result.rssMb,
      peer: null,
      ratio: null,
      target: '≤ 250 MB',
      pass: result.rssMb <= 250,
    },
  ];
}
