import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, killChildrenAfterEach, runCli, startServe, type ServeProcess } from '../helpers/cli.js';
import { useTmpDirs } from '../helpers/tmp.js';

const tmp = useTmpDirs('cupcake-bounds-');
killChildrenAfterEach();
beforeAll(assertBuilt);

const MB = 1024 * 1024;

/** Resident memory of a process (Linux /proc), in bytes. */
function rss(pid: number): number {
  const kb = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return Number(kb) * 1024;
}

/** The highest RSS of `pid` over `samples` samples 100 ms apart: a bounded, self-stopping loop. */
async function peakRss(pid: number, samples: number): Promise<number> {
  let peak = rss(pid);
  for (let i = 0; i < samples; i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    peak = Math.max(peak, rss(pid));
  }
  return peak;
}

/** `cupcake-mcp serve` as shipped (init --yes, default config, loopback, port 0). */
async function serveAsShipped(): Promise<ServeProcess & { port: number }> {
  const dir = await tmp();
  const init = await runCli(['init', '--yes', '--password-stdin'], { cwd: dir, input: 'the owner password\n' });
  expect(init.code, init.stderr).toBe(0);
  const serve = await startServe(['--port', '0'], { cwd: dir });
  return Object.assign(serve, { port: Number(new URL(serve.url).port) });
}

describe('what an internet client can make serve hold (SECURITY.md: memory is bounded)', () => {
  it('HTTP pipelining: 10 connections that each pipeline 64 KB of GET / and never read do not grow serve by more than a few tens of MB', async () => {
    const serve = await serveAsShipped();
    const pid = serve.child.pid!;
    // Warm up (JIT, the home page) so that the baseline is a running server.
    for (let i = 0; i < 20; i++) await (await fetch(`http://127.0.0.1:${serve.port}/`)).text();
    const before = rss(pid);
    const request = `GET / HTTP/1.1\r\nHost: localhost:${serve.port}\r\n\r\n`;
    const chunk = request.repeat(Math.ceil((64 * 1024) / request.length));
    const sockets: Socket[] = [];
    for (let i = 0; i < 10; i++) {
      const socket = connect(serve.port, '127.0.0.1');
      socket.on('error', () => undefined);
      socket.pause(); // never reads an answer
      socket.write(chunk);
      sockets.push(socket);
    }
    const peak = await peakRss(pid, 30);
    for (const socket of sockets) socket.destroy();
    // Unbounded, this grew serve by about 400 MB (each request answered into memory).
    expect((peak - before) / MB).toBeLessThan(150);
    expect((await fetch(`http://127.0.0.1:${serve.port}/healthz`)).status).toBe(200);
    expect(await serve.stop()).toEqual({ code: 0, signal: null });
  });
});
