import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'vitest';
import { runCli, startServe, type ServeProcess } from './cli.js';
import { OWNER_PASSWORD } from './server.js';

/**
 * A plain round-robin load balancer, as nginx or Caddy without sticky sessions: each request
 * goes to the next replica, with `X-Forwarded-For` appended. A replica that refuses the
 * connection is skipped (the request never reached it, as nginx's `proxy_next_upstream error`);
 * one that dies mid-request answers 502. Responses stream through (SSE).
 */
export interface RoundRobinProxy {
  url: string;
  /** Replica base URLs (`http://127.0.0.1:port`), in turn order; set before traffic starts. */
  targets: string[];
  /** Which target served each request: `METHOD path → target index`. */
  log: Array<{ method: string; path: string; target: number }>;
  close(): Promise<void>;
}

export async function startRoundRobinProxy(): Promise<RoundRobinProxy> {
  let turn = 0;
  const state: RoundRobinProxy = { url: '', targets: [], log: [], close: async () => undefined };
  const forward = (req: IncomingMessage, res: import('node:http').ServerResponse, body: Buffer, tries: number) => {
    const index = turn++ % state.targets.length;
    const target = new URL(state.targets[index]!);
    // The address the balancer saw; a test may stand for many clients with `x-test-client-ip`.
    const { 'x-test-client-ip': clientIp, ...headers } = req.headers;
    const forwardedFor = [req.headers['x-forwarded-for'], clientIp ?? req.socket.remoteAddress].filter(Boolean).join(', ');
    const upstream = request(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: { ...headers, 'x-forwarded-for': forwardedFor } },
      (reply) => {
        state.log.push({ method: req.method ?? 'GET', path: req.url ?? '/', target: index });
        res.writeHead(reply.statusCode ?? 502, reply.headers);
        reply.pipe(res);
        res.on('close', () => reply.destroy());
      },
    );
    upstream.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ECONNREFUSED' && tries < state.targets.length) return forward(req, res, body, tries + 1);
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
      res.end('bad gateway');
    });
    upstream.end(body);
  };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => forward(req, res, Buffer.concat(chunks), 1));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  state.close = () =>
    new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return state;
}

export interface ReplicaDeployment {
  dir: string;
  proxy: RoundRobinProxy;
  replicas: ServeProcess[];
  /** Environment of a CLI on any machine of the deployment. */
  env: Record<string, string>;
  start(): Promise<ServeProcess>;
}

/** `init`, then `n` serve processes of the built bin on one Redis behind the proxy (same baseUrl, trustProxy). */
export async function startReplicaDeployment(options: { dir: string; redisUrl: string; n: number }): Promise<ReplicaDeployment> {
  const { dir } = options;
  const proxy = await startRoundRobinProxy();
  const init = await runCli(['init', '--yes', '--port', '0', '--password-stdin'], { cwd: dir, input: `${OWNER_PASSWORD}\n` });
  expect(init.code, init.stderr).toBe(0);
  const path = join(dir, 'cupcake.config.json');
  const config = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
  await writeFile(path, JSON.stringify({ ...config, baseUrl: proxy.url, trustProxy: true, store: options.redisUrl }, null, 2));
  const env = { CUPCAKE_OWNER_PASSWORD: OWNER_PASSWORD };
  const deployment: ReplicaDeployment = {
    dir,
    proxy,
    replicas: [],
    env: { CUPCAKE_STORE: options.redisUrl, CUPCAKE_BASE_URL: proxy.url },
    async start() {
      const replica = await startServe(['--port', '0'], { cwd: dir, env, timeoutMs: 30_000 });
      deployment.replicas.push(replica);
      proxy.targets.push(replica.url);
      return replica;
    },
  };
  // Started together: they must agree on the owner password and on one first-party client.
  await Promise.all(Array.from({ length: options.n }, () => deployment.start()));
  return deployment;
}
