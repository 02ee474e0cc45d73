import { createOutput } from './output.js';
import { runCli } from './program.js';
import { createPrompts } from './prompts.js';

// The process edge: the only place that reads process.* and decides the exit code.
const code = await runCli(process.argv, {
  env: process.env,
  cwd: process.cwd(),
  stdin: process.stdin,
  output: createOutput(process.stdout, process.stderr, process.env),
  prompts: createPrompts(),
  interactive: Boolean(process.stdin.isTTY && process.stdout.isTTY),
});
process.exitCode = code;
// Whatever a library left open (a watcher, a prompt) must not keep a finished command alive.
setTimeout(() => process.exit(code), 100).unref();
