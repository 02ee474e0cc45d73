/** Traffic from many clients for the abuse and audit-log tests, bounded in count (loopback only). */

/** Sends `count` requests, 20 at a time; returns the statuses in order. */
export async function burst(count: number, send: (i: number) => Promise<Response>): Promise<number[]> {
  const statuses: number[] = new Array(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: 20 }, async () => {
      while (next < count) {
        const i = next++;
        const response = await send(i);
        await response.arrayBuffer();
        statuses[i] = response.status;
      }
    }),
  );
  return statuses;
}

/** Behind a trusted proxy the client address is X-Forwarded-For: one test server plays many clients. */
export const from = (address: string) => ({ 'x-forwarded-for': address });
