import type { Output } from './output.js';
import type { Prompts } from './prompts.js';

/** What every command receives from the process edge; nothing below cli/ touches process.*. */
export interface CliContext {
  env: Record<string, string | undefined>;
  cwd: string;
  stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  output: Output;
  prompts: Prompts;
  /** Both stdin and stdout are terminals: prompts may be shown. */
  interactive: boolean;
  /** The global `--config` option. */
  configPath: string | undefined;
}

/** Reads all of stdin (for --password-stdin), dropping one trailing newline. */
export async function readStdin(stdin: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stdin) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
}
