import { createServer } from 'node:net';

/**
 * Asks the kernel for a free TCP port by listening on port 0 and closing again. Another process could take the
 * port before the caller binds it; callers that start servers retry on a bind failure rather than assume.
 */
export function findFreePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ host, port: 0 }, () => {
      const address = server.address();
      server.close(() => {
        if (address && typeof address === 'object') resolve(address.port);
        else reject(new Error('listening on port 0 returned no port'));
      });
    });
  });
}
