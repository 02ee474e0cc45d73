/**
 * `npm run conformance`: the official MCP conformance suite (@modelcontextprotocol/conformance)
 * against `cupcake-mcp serve` as a user runs it (built bin, `init --yes`, a token from
 * `tokens create`), in both eras; then the MCP Inspector's CLI over /mcp (both eras) and /sse.
 *
 * The suite sends no bearer token, so a small proxy in front of `serve` adds one to every request
 * (the server still checks it on each). The suite needs Node 22: set CONFORMANCE_NODE to a Node 22
 * binary, or the script installs the `node@22` npm package once into node_modules/.cache.
 *
 * Exit code 0 when every applicable scenario passes; the table lists the scenarios that need the
 * suite's own test tools (prompts, resources, sampling, ...) as not applicable, with the reason.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { ROOT } from './harness.js';
import type { Row } from './report.js';
import { HeadlessOAuthClientProvider } from '../test/helpers/oauth-client.js';

const run = promisify(execFile);
const BIN = join(ROOT, 'bin/cupcake-mcp.js');
const SUITE = join(ROOT, 'node_modules/@modelcontextprotocol/conformance/dist/index.js');

/** The scenarios that test the protocol itself, each run at the revisions it names (both eras where it has both). */
export const PROTOCOL_SCENARIOS: Array<{ scenario: string; versions: string[] }> = [
  { scenario: 'server-initialize', versions: ['2025-11-25'] },
  { scenario: 'ping', versions: ['2025-11-25'] },
  { scenario: 'tools-list', versions: ['2025-11-25', '2026-07-28'] },
  { scenario: 'server-sse-multiple-streams', versions: ['2025-11-25', '2026-07-28'] },
  { scenario: 'server-session-lifecycle', versions: ['2025-11-25'] },
  { scenario: 'server-stateless', versions: ['2026-07-28'] },
  { scenario: 'caching', versions: ['2026-07-28'] },
  { scenario: 'http-header-validation', versions: ['2026-07-28'] },
  { scenario: 'input-required-result-unsupported-methods', versions: ['2026-07-28'] },
  { scenario: 'dns-rebinding-protection', versions: ['2025-11-25', '2026-07-28'] },
];

/** Scenarios that call the suite's own test tools, prompts or resources, which a cupcake server does not have. */
export const NOT_APPLICABLE: Record<string, string> = {
  'logging-set-level': 'cupcake does not advertise the logging capability (deprecated in 2026-07-28, SEP-2577)',
  'completion-complete': 'needs the suite’s prompts/resource templates with completions; cupcake serves tools only',
  'tools-call-*': 'call the suite’s own test tools (test_simple_text, test_image_content, …), which are not registered here',
  'json-schema-2020-12': 'lists the suite’s test tool with a 2020-12 schema',
  'elicitation-*': 'need a test tool that elicits; cupcake’s tools never ask the user',
  'server-sse-polling': 'needs a test tool that closes its stream mid-call (SSE polling with an event store)',
  'resources-*': 'cupcake serves no MCP resources',
  'sep-2164-resource-not-found': 'cupcake serves no MCP resources',
  'prompts-*': 'cupcake serves no MCP prompts',
  'http-custom-header-server-validation': 'needs the suite’s test tool with x-mcp-header parameters',
  'input-required-result-* (others)': 'need the suite’s test tools that return input_required (multi-round-trip); cupcake’s tools never ask the client',
  'tasks-*, sep-2640-*': 'extensions cupcake does not implement',
};

/** Checks inside the protocol scenarios that need something cupcake does not serve. */
export const NOT_APPLICABLE_CHECKS: Record<string, string> = {
  'sep-2549-prompts-list-caching-hints': 'cupcake advertises no prompts capability (prompts/list is -32601, as the spec asks)',
  'sep-2549-resources-list-caching-hints': 'cupcake advertises no resources capability (resources/list is -32601)',
  'sep-2549-resources-templates-list-caching-hints': 'cupcake advertises no resources capability (resources/templates/list is -32601)',
  'sep-2575-server-sends-tools-list-changed-on-subscription':
    'mutates the tool list through the suite’s diagnostic tool test_trigger_tool_change; ' +
    'test/integration/mcp-modern.test.ts checks list_changed on a subscriptions/listen stream instead',
};

interface Outcome {
  scenario: string;
  version: string;
  passed: number;
  failed: number;
  failures: string[];
  /** Checks the suite could not run here, with the reason. */
  notApplicable: string[];
}

async function node22(): Promise<string> {
  if (process.env.CONFORMANCE_NODE) return process.env.CONFORMANCE_NODE;
  const cache = join(ROOT, 'node_modules/.cache/conformance-node22');
  const binary = join(cache, 'node_modules/node/bin/node');
  if (!existsSync(binary)) {
    console.log('installing the node@22 npm package for the conformance suite (once) …');
    await run('npm', ['install', '--no-save', '--no-package-lock', '--prefix', cache, 'node@22'], { cwd: ROOT });
  }
  const { stdout } = await run(binary, ['--version']);
  if (!stdout.startsWith('v22')) throw new Error(`the conformance suite needs Node 22; ${binary} is ${stdout.trim()}`);
  return binary;
}

const INSPECTOR_VERSION = '2.12.0';

/** The MCP Inspector (2.x needs Node 22), installed once next to the Node 22 of the suite. */
async function inspectorLauncher(): Promise<string> {
  const cache = join(ROOT, 'node_modules/.cache/conformance-inspector');
  const launcher = join(cache, 'node_modules/@modelcontextprotocol/inspector/clients/launcher/build/index.js');
  if (!existsSync(launcher)) {
    console.log(`installing @modelcontextprotocol/inspector@${INSPECTOR_VERSION} for the CLI check (once) …`);
    await run('npm', ['install', '--no-save', '--no-package-lock', '--prefix', cache, `@modelcontextprotocol/inspector@${INSPECTOR_VERSION}`], { cwd: ROOT });
  }
  return launcher;
}

/**
 * The MCP Inspector's CLI lists and calls the tools over /mcp in both eras (2026-07-28: no
 * session; 2025: a session) and over /sse, with the token as a header, as the README shows.
 */
async function runInspectorChecks(node: string, url: string, token: string): Promise<Outcome> {
  const launcher = await inspectorLauncher();
  type Check = { label: string; args: string[]; expect: (result: Record<string, any>) => string | undefined };
  const names = (result: Record<string, any>) =>
    ((result.tools ?? []) as Array<{ name: string }>)
      .map((t) => t.name)
      .sort()
      .join(',');
  const listsTools = (result: Record<string, any>) => (names(result) === 'fetch,search,whoami' ? undefined : `listed ${names(result) || 'nothing'}`);
  const session = (wanted: 'none' | 'some') => (result: Record<string, any>) => {
    const id = result.structuredContent?.session_id as unknown;
    if (wanted === 'none' ? id === null : typeof id === 'string' && id.length > 0) return undefined;
    return `whoami said session_id ${JSON.stringify(id)}`;
  };
  const checks: Check[] = [
    { label: '/mcp 2026-07-28 tools/list', args: [`${url}/mcp`, '--protocol-era', 'modern', '--method', 'tools/list'], expect: listsTools },
    {
      label: '/mcp 2026-07-28 tools/call',
      args: [`${url}/mcp`, '--protocol-era', 'modern', '--method', 'tools/call', '--tool-name', 'whoami'],
      expect: session('none'),
    },
    {
      label: '/mcp auto negotiation tools/call',
      args: [`${url}/mcp`, '--protocol-era', 'auto', '--method', 'tools/call', '--tool-name', 'whoami'],
      expect: session('none'),
    },
    { label: '/mcp 2025 tools/list', args: [`${url}/mcp`, '--protocol-era', 'legacy', '--method', 'tools/list'], expect: listsTools },
    {
      label: '/mcp 2025 tools/call',
      args: [`${url}/mcp`, '--protocol-era', 'legacy', '--method', 'tools/call', '--tool-name', 'whoami'],
      expect: session('some'),
    },
    { label: '/sse tools/list', args: [`${url}/sse`, '--transport', 'sse', '--method', 'tools/list'], expect: listsTools },
    { label: '/sse tools/call', args: [`${url}/sse`, '--transport', 'sse', '--method', 'tools/call', '--tool-name', 'whoami'], expect: session('some') },
  ];
  const failures: string[] = [];
  for (const check of checks) {
    try {
      const { stdout } = await run(node, [launcher, '--cli', ...check.args, '--header', `Authorization: Bearer ${token}`], { cwd: ROOT, timeout: 60_000 });
      const problem = check.expect(JSON.parse(stdout) as Record<string, any>);
      if (problem) failures.push(`${check.label}: ${problem}`);
    } catch (error) {
      failures.push(`${check.label}: ${String((error as { stderr?: string }).stderr || error).slice(0, 300)}`);
    }
  }
  return {
    scenario: 'MCP Inspector CLI',
    version: 'both eras and /sse',
    passed: checks.length - failures.length,
    failed: failures.length,
    failures,
    notApplicable: [],
  };
}

/** `cupcake-mcp init --yes` in a temp folder, `serve` on a free port, and a token from `tokens create`. */
const OWNER_PASSWORD = 'conformance owner password';

async function startServe(): Promise<{ url: string; token: string; dir: string; child: ChildProcess }> {
  const dir = await mkdtemp(join(tmpdir(), 'cupcake-conformance-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const init = spawn(process.execPath, [BIN, 'init', '--yes', '--password-stdin', '--base-url', url, '--port', String(port), '--host', '127.0.0.1'], {
    cwd: dir,
    stdio: ['pipe', 'ignore', 'inherit'],
  });
  init.stdin!.end(`${OWNER_PASSWORD}\n`);
  await new Promise((resolve, reject) => init.once('exit', (code) => (code === 0 ? resolve(undefined) : reject(new Error(`init exited with ${code}`)))));
  const child = spawn(process.execPath, [BIN, 'serve'], { cwd: dir, stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      if (line.includes('/mcp')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`serve exited with ${code}`)));
  });
  const { stdout } = await run(process.execPath, [BIN, 'tokens', 'create', '--json', '--name', 'conformance suite'], { cwd: dir });
  return { url, token: (JSON.parse(stdout) as { token: string }).token, dir, child };
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

/**
 * Forwards every request to `target`, adding the bearer token the suite does not send; streams both
 * ways. The Host header is passed on as the suite sent it (dns-rebinding-protection sends foreign ones).
 */
async function startTokenProxy(target: string, token: string): Promise<{ url: string; server: Server }> {
  const upstream = new URL(target);
  const server = createServer((req, res) => {
    const forwarded = httpRequest(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: req.headers.host ?? upstream.host, authorization: `Bearer ${token}` },
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.statusMessage, answer.headers);
        answer.pipe(res);
      },
    );
    forwarded.on('error', () => res.destroy());
    res.on('close', () => forwarded.destroy());
    req.pipe(forwarded);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

/** Reads the checks of one scenario run from the suite's output directory. */
async function readChecks(dir: string): Promise<Array<{ id?: string; name?: string; status?: string; errorMessage?: string; description?: string }>> {
  const checks = [];
  for (const entry of await readdir(dir, { recursive: true })) {
    if (!String(entry).endsWith('checks.json')) continue;
    checks.push(...(JSON.parse(await readFile(join(dir, String(entry)), 'utf8')) as Array<Record<string, string>>));
  }
  return checks;
}

async function runScenario(node: string, args: string[], label: { scenario: string; version: string }): Promise<Outcome> {
  const out = await mkdtemp(join(tmpdir(), 'conformance-out-'));
  try {
    await run(node, [SUITE, ...args, '--output-dir', out], { cwd: ROOT, timeout: 120_000, maxBuffer: 16 * 1024 * 1024 }).catch(
      (error: { stdout?: string }) => error,
    );
    const checks = await readChecks(out);
    const failures: string[] = [];
    const notApplicable: string[] = [];
    for (const check of checks) {
      if (check.status !== 'FAILURE' && check.status !== 'WARNING') continue;
      const id = check.id ?? check.name ?? '(unnamed check)';
      const message = (check.errorMessage ?? check.description ?? '').slice(0, 200);
      // The suite says so itself when a check needs one of its diagnostic test tools.
      if (message.startsWith('Not testable:')) notApplicable.push(`${id}: ${message}`);
      else if (NOT_APPLICABLE_CHECKS[id]) notApplicable.push(`${id}: ${NOT_APPLICABLE_CHECKS[id]}`);
      else failures.push(`${check.status === 'WARNING' ? 'warning ' : ''}${id}: ${message}`);
    }
    const passed = checks.filter((c) => c.status === 'SUCCESS').length;
    if (checks.length === 0) failures.push('the suite recorded no checks');
    return { ...label, passed, failed: failures.length, failures, notApplicable };
  } finally {
    await rm(out, { recursive: true, force: true });
  }
}

/**
 * The authorization server scenarios (metadata, authorization code grant) talk to the issuer
 * itself, no proxy. The grant scenario prints an authorization URL for a person to open; the
 * person here is the headless consent of the test helpers (owner password, approve), and the
 * redirect is delivered to the suite's own callback listener.
 */
async function runAuthorizationScenarios(node: string, issuer: string): Promise<Outcome> {
  const port = await freePort();
  const registered = await fetch(`${issuer}/register`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ client_name: 'MCP conformance suite', redirect_uris: [`http://127.0.0.1:${port}/callback`], token_endpoint_auth_method: 'none' }),
  });
  const { client_id: clientId } = (await registered.json()) as { client_id: string };
  const out = await mkdtemp(join(tmpdir(), 'conformance-out-'));
  try {
    const suite = spawn(
      node,
      [SUITE, 'authorization', '--url', issuer, '--client-id', clientId, '--port', String(port), '--resource', `${issuer}/mcp`, '--output-dir', out],
      {
        cwd: ROOT,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const consent = new HeadlessOAuthClientProvider({ authMethod: 'none', password: OWNER_PASSWORD });
    const approvals: Array<Promise<void>> = [];
    createInterface({ input: suite.stdout! }).on('line', (line) => {
      if (!line.startsWith(`${issuer}/authorize?`)) return;
      approvals.push(
        (async () => {
          await consent.redirectToAuthorization(new URL(line));
          // The suite's callback listener starts right after it prints the URL.
          for (let attempt = 0; attempt < 20; attempt++) {
            const delivered = await fetch(consent.outcomes.at(-1)!.redirect).catch(() => undefined);
            if (delivered?.ok) return;
            await new Promise((resolve) => setTimeout(resolve, 100));
          }
        })(),
      );
    });
    suite.stderr!.resume();
    await new Promise((resolve) => suite.once('exit', resolve));
    await Promise.all(approvals);
    const checks = await readChecks(out);
    const failures = checks
      .filter((c) => c.status === 'FAILURE' || c.status === 'SKIPPED')
      .map((c) => `${c.id ?? c.name}: ${(c.errorMessage ?? '').slice(0, 200)}`);
    if (checks.length === 0) failures.push('the suite recorded no checks');
    return {
      scenario: 'authorization server (metadata, authorization code grant)',
      version: 'OAuth 2.1',
      passed: checks.filter((c) => c.status === 'SUCCESS').length,
      failed: failures.length,
      failures,
      notApplicable: [],
    };
  } finally {
    await rm(out, { recursive: true, force: true });
  }
}

export async function runConformance(): Promise<Outcome[]> {
  const node = await node22();
  const serve = await startServe();
  const proxy = await startTokenProxy(serve.url, serve.token);
  try {
    const outcomes: Outcome[] = [];
    for (const { scenario, versions } of PROTOCOL_SCENARIOS) {
      for (const version of versions) {
        outcomes.push(
          await runScenario(node, ['server', '--url', `${proxy.url}/mcp`, '--scenario', scenario, '--spec-version', version, '--force'], { scenario, version }),
        );
      }
    }
    outcomes.push(await runAuthorizationScenarios(node, serve.url));
    outcomes.push(await runInspectorChecks(node, serve.url, serve.token));
    return outcomes;
  } finally {
    proxy.server.close();
    serve.child.kill('SIGTERM');
    await new Promise((resolve) => serve.child.once('exit', resolve));
    await rm(serve.dir, { recursive: true, force: true });
  }
}

/** One bench row: every applicable scenario of both eras passes. */
export async function runConformanceRow(): Promise<Row> {
  const outcomes = await runConformance();
  printOutcomes(outcomes);
  const failed = outcomes.filter((o) => o.failed > 0);
  const checks = outcomes.reduce((sum, o) => sum + o.passed, 0);
  return {
    figure: 'MCP conformance suite (both eras)',
    cupcake: outcomes.length - failed.length,
    peer: outcomes.length,
    peerName: 'scenario runs',
    ratio: null,
    target: 'all pass',
    pass: failed.length === 0,
    note:
      `${checks} checks passed; ${failed.length === 0 ? 'no failures' : `failing: ${failed.map((o) => `${o.scenario} @ ${o.version}`).join(', ')}`}; ` +
      `not applicable: ${Object.keys(NOT_APPLICABLE).join(', ')}`,
  };
}

function printOutcomes(outcomes: Outcome[]): void {
  for (const o of outcomes) {
    console.log(`${o.failed === 0 ? 'pass' : 'FAIL'}  ${o.scenario} @ ${o.version}: ${o.passed} checks passed, ${o.failed} failed`);
    for (const failure of o.failures) console.log(`        ${failure}`);
    for (const skipped of o.notApplicable) console.log(`        not applicable: ${skipped}`);
  }
  console.log('\nnot applicable (need the suite’s own test tools or capabilities cupcake does not have):');
  for (const [scenario, reason] of Object.entries(NOT_APPLICABLE)) console.log(`  ${scenario}: ${reason}`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const outcomes = await runConformance();
  printOutcomes(outcomes);
  process.exit(outcomes.every((o) => o.failed === 0) ? 0 : 1);
}
