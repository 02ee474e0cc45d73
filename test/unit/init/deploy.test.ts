import { spawnSync } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { runInit } from '../../../src/cli/commands/init.js';
import type { CliContext } from '../../../src/cli/context.js';
import { CliError } from '../../../src/cli/errors.js';
import { createOutput } from '../../../src/cli/output.js';
import { loadConfig } from '../../../src/config/load.js';
import {
  DEFAULT_BIN_PATH,
  DeployError,
  DeployExistsError,
  renderDeployFiles,
  renderTemplate,
  upstreamAddress,
  writeDeployFiles,
  type DeployFile,
  type DeploySource,
} from '../../../src/init/deploy.js';
import { useTmpDirs } from '../../helpers/tmp.js';

const tmp = useTmpDirs('cupcake-deploy-');

const source = (overrides: Partial<DeploySource['config']> = {}, configPath = '/srv/cupcake/cupcake.config.json'): DeploySource => ({
  config: { baseUrl: 'https://mcp.example.com', host: '127.0.0.1', port: 9123, ...overrides },
  configPath,
  nodePath: '/usr/bin/node',
  binPath: '/opt/cupcake-mcp/bin/cupcake-mcp.js',
});

const fileOf = (files: DeployFile[], name: string) => {
  const file = files.find((f) => f.path.endsWith(name));
  if (!file) throw new Error(`no ${name} among ${files.map((f) => f.path).join(', ')}`);
  return file.content;
};

/** The lines a program reads: comments and blank lines dropped. */
const directives = (text: string, comment = '#') =>
  text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith(comment));

/** Whether a program can be run here (the proxies are optional on this machine). */
function available(command: string, args: string[]): boolean {
  const result = spawnSync(command, args, { stdio: 'ignore' });
  return !result.error;
}

describe('deployment templates', () => {
  it('Caddyfile: the public host, reverse_proxy to host:port with flush_interval -1, and no compression', async () => {
    const caddy = fileOf(await renderDeployFiles(source(), ['caddy']), 'Caddyfile');
    const lines = directives(caddy);
    expect(lines).toContain('mcp.example.com {');
    expect(lines).toContain('reverse_proxy 127.0.0.1:9123 {');
    expect(lines).toContain('flush_interval -1');
    // Compressing text/event-stream holds SSE events back: no active encode directive.
    expect(lines.filter((l) => l.startsWith('encode'))).toEqual([]);
    expect(caddy).toContain('/srv/cupcake/cupcake.config.json');
    expect(caddy).not.toContain('{{');
  });

  it('nginx: server_name, proxy_pass to host:port, no buffering, long reads, HTTP/1.1, forwarded headers', async () => {
    const nginx = fileOf(await renderDeployFiles(source(), ['nginx']), 'nginx-cupcake-mcp.conf');
    const lines = directives(nginx);
    expect(lines).toContain('server_name mcp.example.com;');
    expect(lines).toContain('listen 443 ssl;');
    expect(lines).toContain('proxy_pass http://127.0.0.1:9123;');
    for (const directive of [
      'proxy_buffering off;',
      'proxy_read_timeout 3600s;',
      'proxy_http_version 1.1;',
      'proxy_set_header Connection "";',
      'proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;',
      'proxy_set_header X-Forwarded-Proto $scheme;',
      'gzip off;',
    ]) {
      expect(lines).toContain(directive);
    }
    expect(lines).toContain('ssl_certificate     /etc/letsencrypt/live/mcp.example.com/fullchain.pem;');
    expect(nginx).not.toContain('{{');
  });

  it('systemd: dynamic user, restart on failure, state directory, hardening, env file, and the config’s paths', async () => {
    const files = await renderDeployFiles(source(), ['systemd']);
    const unit = fileOf(files, 'cupcake-mcp.service');
    const lines = directives(unit);
    for (const directive of [
      'DynamicUser=yes',
      'Restart=on-failure',
      'StateDirectory=cupcake-mcp',
      'NoNewPrivileges=yes',
      'ProtectSystem=strict',
      'EnvironmentFile=-/etc/cupcake-mcp/cupcake-mcp.env',
      'WorkingDirectory=/srv/cupcake',
      'Environment=CUPCAKE_CONFIG=/srv/cupcake/cupcake.config.json',
      'Environment=CUPCAKE_DATA_DIR=/var/lib/cupcake-mcp',
      'ExecStart=/usr/bin/node /opt/cupcake-mcp/bin/cupcake-mcp.js serve',
    ]) {
      expect(lines).toContain(directive);
    }
    const env = fileOf(files, 'cupcake-mcp.env');
    expect(env).toContain('#CUPCAKE_HOST=127.0.0.1');
    expect(env).toContain('#CUPCAKE_PORT=9123');
    expect(files.find((f) => f.path.endsWith('.env'))?.mode).toBe(0o600);
    expect(unit + env).not.toContain('{{');
  });

  it('a base URL with a path: the prefix is stripped and discovery is answered at the RFC 8414 locations', async () => {
    const files = await renderDeployFiles(source({ baseUrl: 'https://example.com/team/docs.mcp' }), ['caddy', 'nginx']);
    const caddy = directives(fileOf(files, 'Caddyfile'));
    expect(caddy).toContain('example.com {');
    expect(caddy).toContain('handle_path /team/docs.mcp/* {');
    expect(caddy.join('\n')).toContain('(oauth-authorization-server|openid-configuration|oauth-protected-resource)/team/docs\\.mcp(/mcp|/sse)?$');
    const nginx = directives(fileOf(files, 'nginx-cupcake-mcp.conf'));
    expect(nginx).toContain('location /team/docs.mcp/ {');
    expect(nginx).toContain('proxy_pass http://127.0.0.1:9123/;');
    expect(nginx).toContain('proxy_pass http://127.0.0.1:9123/.well-known/$1$2;');
  });

  it('a proxy on this machine reaches a wildcard or IPv6 listen address through loopback', () => {
    expect(upstreamAddress('0.0.0.0', 8787)).toBe('127.0.0.1:8787');
    expect(upstreamAddress('::', 8787)).toBe('[::1]:8787');
    expect(upstreamAddress('::1', 8787)).toBe('[::1]:8787');
    expect(upstreamAddress('[::1]', 8787)).toBe('[::1]:8787');
    expect(upstreamAddress('10.0.0.5', 80)).toBe('10.0.0.5:80');
  });

  it('systemd quotes paths with spaces and escapes % (systemd.syntax(7))', async () => {
    const unit = fileOf(
      await renderDeployFiles({ ...source({}, '/srv/my mcp/100%/cupcake.config.json'), binPath: '/opt/a b/cupcake-mcp.js' }, ['systemd']),
      'cupcake-mcp.service',
    );
    expect(unit).toContain('Environment="CUPCAKE_CONFIG=/srv/my mcp/100%%/cupcake.config.json"');
    expect(unit).toContain('ExecStart=/usr/bin/node "/opt/a b/cupcake-mcp.js" serve');
    expect(unit).toContain('WorkingDirectory=/srv/my mcp/100%%');
  });

  it('refuses what a proxy cannot serve: a local http base URL, port 0, an unsafe path', async () => {
    await expect(renderDeployFiles(source({ baseUrl: 'http://localhost:8787' }), ['nginx'])).rejects.toMatchObject({ name: 'DeployError', setting: 'baseUrl' });
    await expect(renderDeployFiles(source({ baseUrl: 'https://localhost' }), ['caddy'])).rejects.toBeInstanceOf(DeployError);
    await expect(renderDeployFiles(source({ port: 0 }), ['caddy'])).rejects.toMatchObject({ setting: 'port' });
    await expect(renderDeployFiles(source({ baseUrl: 'https://example.com/a;b' }), ['nginx'])).rejects.toBeInstanceOf(DeployError);
    // A unit alone needs no public URL.
    expect(await renderDeployFiles(source({ baseUrl: 'http://localhost:8787' }), ['systemd'])).toHaveLength(2);
  });

  it('a template naming an unknown value fails instead of shipping a hole', () => {
    expect(() => renderTemplate('listen {{port}};\n', {})).toThrow(/"port"/);
    expect(() => renderTemplate('{{#if nope}}\nx\n{{/if}}\n', {})).toThrow(/"nope"/);
    expect(renderTemplate('a\n{{#if p}}\nwith {{p}}\n{{/if}}\n{{#unless p}}\nwithout\n{{/unless}}\nz\n', { p: '/x' })).toBe('a\nwith /x\nz\n');
    expect(renderTemplate('a\n{{#if p}}\nwith {{p}}\n{{/if}}\n{{#unless p}}\nwithout\n{{/unless}}\nz\n', { p: '' })).toBe('a\nwithout\nz\n');
  });

  it('writing: modes 0644/0600, never over an existing file without force (and then nothing is written)', async () => {
    const dir = await tmp();
    const files = await renderDeployFiles(source(), ['caddy', 'systemd']);
    const written = await writeDeployFiles(dir, files, { force: false });
    expect(written.map((p) => p.slice(dir.length + 1)).sort()).toEqual(['deploy/Caddyfile', 'deploy/cupcake-mcp.env', 'deploy/cupcake-mcp.service']);
    expect((await stat(join(dir, 'deploy/cupcake-mcp.env'))).mode & 0o777).toBe(0o600);
    expect((await stat(join(dir, 'deploy/Caddyfile'))).mode & 0o777).toBe(0o644);

    await writeFile(join(dir, 'deploy/Caddyfile'), 'mine\n');
    const more = await renderDeployFiles(source(), ['nginx', 'caddy']);
    await expect(writeDeployFiles(dir, more, { force: false })).rejects.toBeInstanceOf(DeployExistsError);
    expect(await readFile(join(dir, 'deploy/Caddyfile'), 'utf8')).toBe('mine\n');
    expect(existsSync(join(dir, 'deploy/nginx-cupcake-mcp.conf'))).toBe(false);

    await writeDeployFiles(dir, more, { force: true });
    expect(await readFile(join(dir, 'deploy/Caddyfile'), 'utf8')).toContain('reverse_proxy 127.0.0.1:9123');
  });

  it('the default ExecStart is this package’s bin, which exists', () => {
    expect(existsSync(DEFAULT_BIN_PATH)).toBe(true);
  });
});

describe('the generated files parse (when the programs are installed)', () => {
  it('nginx -t accepts the server block inside a minimal http config', async () => {
    const dir = await tmp();
    const nginx = fileOf(await renderDeployFiles(source(), ['nginx']), 'nginx-cupcake-mcp.conf');
    const prefixed = fileOf(await renderDeployFiles(source({ baseUrl: 'https://example.com/team/docs' }), ['nginx']), 'nginx-cupcake-mcp.conf');
    expect(nginx).toContain('server_name mcp.example.com;');
    if (!available('nginx', ['-v'])) return; // nginx is optional; the content checks above still ran.
    // nginx -t loads the certificate: give it a throwaway self-signed one.
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
        '-days',
        '1',
        '-subj',
        '/CN=mcp.example.com',
      ],
      { stdio: 'ignore' },
    );
    for (const [name, block] of [
      ['root', nginx],
      ['prefixed', prefixed],
    ] as const) {
      const site = block
        .replace(/\/etc\/letsencrypt\/live\/[^/]+\/fullchain\.pem/, join(dir, 'cert.pem'))
        .replace(/\/etc\/letsencrypt\/live\/[^/]+\/privkey\.pem/, join(dir, 'key.pem'));
      await mkdir(join(dir, name, 'logs'), { recursive: true });
      await writeFile(join(dir, name, 'site.conf'), site);
      await writeFile(
        join(dir, name, 'nginx.conf'),
        `pid ${join(dir, name, 'nginx.pid')};\nerror_log stderr;\nevents {}\nhttp {\n  include ${join(dir, name, 'site.conf')};\n}\n`,
      );
      const result = spawnSync('nginx', ['-t', '-p', join(dir, name), '-c', join(dir, name, 'nginx.conf')], { encoding: 'utf8' });
      expect(result.stderr).toContain('test is successful');
      expect(result.status).toBe(0);
    }
  });

  it('caddy validate accepts the Caddyfile', async () => {
    const dir = await tmp();
    const files = [
      ...(await renderDeployFiles(source(), ['caddy'])),
      ...(await renderDeployFiles(source({ baseUrl: 'https://example.com/team/docs' }), ['caddy'])),
    ];
    expect(files).toHaveLength(2);
    if (!available('caddy', ['version'])) return; // caddy is optional
    for (const [i, file] of files.entries()) {
      const path = join(dir, `Caddyfile-${i}`);
      await writeFile(path, file.content);
      const result = spawnSync('caddy', ['validate', '--adapter', 'caddyfile', '--config', path], {
        encoding: 'utf8',
        env: { ...process.env, HOME: dir, XDG_DATA_HOME: dir, XDG_CONFIG_HOME: dir },
      });
      expect(`${result.stdout}${result.stderr}`).toContain('Valid configuration');
      expect(result.status).toBe(0);
    }
  });

  it('systemd-analyze verify finds no unknown setting in the unit', async () => {
    const dir = await tmp();
    const unit = fileOf(
      await renderDeployFiles({ config: { baseUrl: 'https://mcp.example.com', host: '127.0.0.1', port: 9123 }, configPath: join(dir, 'cupcake.config.json') }, [
        'systemd',
      ]),
      'cupcake-mcp.service',
    );
    expect(unit).toContain(`ExecStart=${process.execPath} ${DEFAULT_BIN_PATH} serve`);
    if (!available('systemd-analyze', ['--version'])) return; // optional
    const path = join(dir, 'cupcake-mcp.service');
    await writeFile(path, unit);
    const result = spawnSync('systemd-analyze', ['verify', path], { encoding: 'utf8' });
    expect(result.stderr).not.toMatch(/Unknown key|Unknown section|Failed to parse|Invalid/i);
    expect(result.status).toBe(0);
  });
});

class Capture extends Writable {
  text = '';
  override _write(chunk: Buffer, _encoding: string, callback: () => void) {
    this.text += chunk.toString();
    callback();
  }
}

function context(cwd: string): { ctx: CliContext; out: Capture } {
  const out = new Capture();
  const env = { CUPCAKE_OWNER_PASSWORD: 'correct horse battery staple' };
  const ctx: CliContext = {
    env,
    cwd,
    stdin: process.stdin,
    output: createOutput(out, new Capture(), env),
    prompts: {
      input: () => Promise.reject(new Error('no prompt expected')),
      password: () => Promise.reject(new Error('no prompt expected')),
      confirm: () => Promise.reject(new Error('no prompt expected')),
    },
    interactive: false,
    configPath: undefined,
  };
  return { ctx, out };
}

describe('init --deploy', () => {
  it('with a new config: writes config and templates from the same values, and trusts the proxy', async () => {
    const dir = await tmp();
    const { ctx, out } = context(dir);
    await runInit(ctx, undefined, { yes: true, baseUrl: 'https://mcp.example.org/', port: '9400', host: '127.0.0.1', deploy: ['nginx', 'systemd', 'nginx'] });
    const { config } = loadConfig({ cwd: dir, env: {} });
    expect(config).toMatchObject({ baseUrl: 'https://mcp.example.org', port: 9400, trustProxy: true });
    expect((await readdir(join(dir, 'deploy'))).sort()).toEqual(['cupcake-mcp.env', 'cupcake-mcp.service', 'nginx-cupcake-mcp.conf']);
    const nginx = await readFile(join(dir, 'deploy/nginx-cupcake-mcp.conf'), 'utf8');
    expect(nginx).toContain('server_name mcp.example.org;');
    expect(nginx).toContain('proxy_pass http://127.0.0.1:9400;');
    expect(await readFile(join(dir, 'deploy/cupcake-mcp.service'), 'utf8')).toContain(`Environment=CUPCAKE_CONFIG=${join(dir, 'cupcake.config.json')}`);
    expect(out.text).toContain('deploy/nginx-cupcake-mcp.conf');
  });

  it('with a new config and no public URL: refuses before writing anything (usage error)', async () => {
    const dir = await tmp();
    const { ctx } = context(dir);
    const error = await runInit(ctx, undefined, { yes: true, deploy: ['caddy'] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CliError);
    expect((error as CliError).exitCode).toBe(2);
    expect((error as CliError).message).toContain('--base-url');
    expect(await readdir(dir)).toEqual([]);
  });

  it('with an existing config: writes only the templates, from the file, and never over a template without --force', async () => {
    const dir = await tmp();
    const configText = `${JSON.stringify({ baseUrl: 'https://docs.example.net/mcp', host: '0.0.0.0', port: 9500 }, null, 2)}\n`;
    await writeFile(join(dir, 'cupcake.config.json'), configText);
    const { ctx, out } = context(dir);
    await runInit(ctx, undefined, { deploy: ['caddy'] });
    expect(await readFile(join(dir, 'cupcake.config.json'), 'utf8')).toBe(configText);
    expect((await readdir(dir)).sort()).toEqual(['cupcake.config.json', 'deploy']);
    const caddy = await readFile(join(dir, 'deploy/Caddyfile'), 'utf8');
    expect(caddy).toContain('handle_path /mcp/* {');
    expect(caddy).toContain('reverse_proxy 127.0.0.1:9500');
    expect(out.text).toContain('"trustProxy": true');

    await writeFile(join(dir, 'deploy/Caddyfile'), 'edited by hand\n');
    await expect(runInit(ctx, undefined, { deploy: ['caddy'] })).rejects.toThrow(/already exists.*--force/);
    expect(await readFile(join(dir, 'deploy/Caddyfile'), 'utf8')).toBe('edited by hand\n');
    await runInit(ctx, undefined, { deploy: ['caddy'], force: true });
    expect(await readFile(join(dir, 'deploy/Caddyfile'), 'utf8')).toContain('reverse_proxy 127.0.0.1:9500');
    // --force with --deploy replaces templates, never the config.
    expect(await readFile(join(dir, 'cupcake.config.json'), 'utf8')).toBe(configText);
  });

  it('with an existing config: flags that would change the config are a usage error, not silently ignored', async () => {
    const dir = await tmp();
    await writeFile(join(dir, 'cupcake.config.json'), '{"baseUrl":"https://a.example.com"}\n');
    const { ctx } = context(dir);
    await expect(runInit(ctx, undefined, { deploy: ['nginx'], port: '9000' })).rejects.toMatchObject({
      exitCode: 2,
      message: expect.stringContaining('--port'),
    });
    expect(existsSync(join(dir, 'deploy'))).toBe(false);
  });
});
