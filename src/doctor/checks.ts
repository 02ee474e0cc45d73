import { createDoctorContext, type DoctorCheck, type DoctorOptions } from './context.js';
import { DOCTOR_STEPS, type DoctorStep } from './steps.js';

/**
 * `cupcake-mcp doctor`: checks a deployment from the outside, over HTTP only, the way ChatGPT and
 * Claude meet it — discovery documents, 401 challenges, dynamic registration with their redirect
 * URIs, CORS preflight, a real sign-in and a stream through whatever proxy sits in front. Each
 * check says what it saw and, when it fails, the fix to apply. Nothing here knows about the CLI;
 * removing the test clients and checking the password are capabilities the caller may pass in.
 */

export {
  CHATGPT_REDIRECT_URI,
  CLAUDE_REDIRECT_URI,
  DOCTOR_CLIENT_NAME,
  nullPaths,
  PREFLIGHT_ORIGIN,
  type CheckStatus,
  type DoctorCheck,
  type DoctorOptions,
} from './context.js';
export { DOCTOR_STEPS, type DoctorStep } from './steps.js';

/** Runs the steps against `options.baseUrl` and returns their checks in order. */
export async function runDoctor(options: DoctorOptions, steps: readonly DoctorStep[] = DOCTOR_STEPS): Promise<DoctorCheck[]> {
  const ctx = createDoctorContext(options);
  if ('problem' in ctx) {
    const check: DoctorCheck = { check: 'base URL', ok: false, status: 'fail', detail: ctx.problem, fix: ctx.fix };
    options.onCheck?.(check);
    return [check];
  }
  for (const step of steps) {
    if (ctx.stopped) break;
    await step.run(ctx);
  }
  return ctx.results;
}
