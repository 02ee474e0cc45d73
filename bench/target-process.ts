/** Child process entry: starts one bench target, prints {url, token} as one JSON line, runs until SIGTERM. */
import { startTarget, type PeerName } from './targets.js';

const target = await startTarget(process.argv[2] as PeerName);
process.stdout.write(`${JSON.stringify({ url: target.url, token: target.token })}\n`);
const stop = async () => {
  await target.close();
  process.exit(0);
};
process.once('SIGTERM', () => void stop());
process.once('SIGINT', () => void stop());
