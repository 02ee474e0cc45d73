import { ownerPasswordProblem } from '../oauth/secrets.js';
import { CliError } from './errors.js';
import { readStdin, type CliContext } from './context.js';

export function checkPassword(password: string): string | true {
  return ownerPasswordProblem(password) ?? true;
}

/**
 * The owner password from, in order: --password-stdin, $CUPCAKE_OWNER_PASSWORD, a prompt asked
 * twice on a TTY. Returns undefined when none is available and prompting is not allowed.
 */
export async function obtainPassword(ctx: CliContext, options: { fromStdin?: boolean; mayPrompt: boolean }): Promise<string | undefined> {
  let password: string | undefined;
  if (options.fromStdin) {
    password = await readStdin(ctx.stdin);
    if (!password) throw new CliError('--password-stdin: nothing was read from standard input');
  } else if (ctx.env.CUPCAKE_OWNER_PASSWORD) {
    password = ctx.env.CUPCAKE_OWNER_PASSWORD;
  } else if (options.mayPrompt) {
    for (;;) {
      const first = await ctx.prompts.password('Owner password (approves every connection)', checkPassword);
      const second = await ctx.prompts.password('Repeat the owner password');
      if (first === second) {
        password = first;
        break;
      }
      ctx.output.err.write('The two passwords differ; try again.\n');
    }
  }
  if (password !== undefined) {
    const ok = checkPassword(password);
    if (ok !== true) throw new CliError(ok);
  }
  return password;
}
