/**
 * The SQL a knex migration of the corpus would send, as phaseflag lint captures it (`captureKnexSql`: a knex whose
 * client records each query and runs nothing). squawk reads SQL only, so this is what it is given for a knex entry:
 * each query ended by a semicolon, one after the other.
 */
import { captureKnexSql as capture } from '@phaseflag/lint';

export async function captureKnexSql(path: string): Promise<string> {
  const { queries } = await capture(path);
  return queries.map((q) => `${q.trim().replace(/;$/, '')};\n`).join('');
}
