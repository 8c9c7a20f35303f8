import type { Unleash } from 'unleash-client';

/**
 * `Unleash.destroy()`, made safe during an outage. unleash-client 6.x removes its repository's listeners on
 * destroy, but a poll still in flight (a refused connection is retried for about 3 s) then emits `error` on the
 * repository with no listener, which Node turns into an uncaught exception that ends the process. A listener that
 * ignores errors after destroy prevents that.
 */
export function destroyClient(client: Unleash): void {
  client.destroy();
  const repository = (client as unknown as { repository?: { on?: (event: string, listener: () => void) => void } })
    .repository;
  repository?.on?.('error', () => {});
}
