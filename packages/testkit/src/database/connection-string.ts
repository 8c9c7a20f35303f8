/** Hides the password so a connection string can be logged. */
export function redactPassword(connectionString: string): string {
  try {
    const url = new URL(connectionString);
    if (url.password) url.password = '***';
    return url.toString();
  } catch {
    return '<unparseable connection string>';
  }
}

/**
 * Adds `-c search_path=<schema>` to the URL's `options` parameter, which pg sends in the startup packet.
 * A startup option becomes the session default, so it also survives `RESET ALL` / `DISCARD ALL` that code under
 * test may issue, and any client built from the URL (a second pool, a CLI child) lands in the same schema.
 * The schema name is checked to be a plain lower-case identifier, so the GUC value needs no quoting.
 */
export function withSearchPath(connectionString: string, schema: string): string {
  if (!/^[a-z_][a-z0-9_]*$/.test(schema)) {
    throw new Error(`withSearchPath expects a plain lower-case schema name, got ${JSON.stringify(schema)}`);
  }
  const url = new URL(connectionString);
  const existing = url.searchParams.get('options');
  const option = `-c search_path=${schema}`;
  url.searchParams.set('options', existing ? `${existing} ${option}` : option);
  return url.toString();
}
