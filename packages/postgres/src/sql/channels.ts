import { createHash } from 'node:crypto';

/** What a channel carries: phase changes (every router and controller), or the backfill's runtime knobs. */
export type ChannelKind = 'phase' | 'knobs';

const MAX_BYTES = 63; // NAMEDATALEN - 1: a longer channel name is an error in LISTEN and cut by pg_notify.
const DIGEST_CHARS = 12;

/**
 * The NOTIFY channel of one kind for one state schema. A channel name is an identifier of 63 bytes at most, and a
 * quoted schema name may hold anything, so a readable prefix alone cannot keep two channels apart
 * (`phaseflag_` + `knobs_x` is `phaseflag_knobs_` + `x`, and two long names cut at 63 bytes meet): the name ends
 * with a digest of the kind and the whole schema name, and its readable head is cut, by whole characters, to leave
 * room for it.
 */
export function channelName(kind: ChannelKind, stateSchema: string): string {
  const digest = createHash('sha256').update(`${kind}\u0000${stateSchema}`).digest('hex').slice(0, DIGEST_CHARS);
  const room = MAX_BYTES - DIGEST_CHARS - 1;
  let head = '';
  for (const ch of `phaseflag_${kind}_${stateSchema}`) {
    if (Buffer.byteLength(head + ch, 'utf8') > room) break;
    head += ch;
  }
  return `${head}_${digest}`;
}
