import { createHash } from 'node:crypto';

/**
 * Advisory lock keys are 64-bit integers; we derive them from a purpose and a name so that phaseflag's locks do
 * not collide with each other (or, in practice, with an application's own small-integer keys).
 */
export function advisoryKey(purpose: string, name: string): string {
  const digest = createHash('sha256').update(`phaseflag:${purpose}:${name}`).digest();
  return digest.readBigInt64BE(0).toString();
}
