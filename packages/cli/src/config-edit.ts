import { CliError } from './errors.js';

/**
 * Adds one migration to a config's source: an import after the last import, and the constant at the end of the
 * `migrations: [ … ]` array. Only the shape `init` writes (or one like it) is edited; anything else is refused
 * (PF_USAGE_CONFIG_NOT_EDITABLE) before a file is written.
 */
export function addMigrationToConfig(source: string, file: string, constName: string, importPath: string): string {
  const refuse = (why: string) =>
    new CliError(
      'PF_USAGE_CONFIG_NOT_EDITABLE',
      `${file}: ${why}, so the migration cannot be added to it.`,
      `Add \`import { ${constName} } from '${importPath}';\` and ${constName} to its migrations array by hand, then rerun init with --force to write the migration file only.`,
      file,
    );
  const open = /\bmigrations\s*:\s*\[/.exec(source);
  if (!open) throw refuse('no `migrations: [ … ]` array literal');
  const close = matchingBracket(source, open.index + open[0].length - 1);
  if (close < 0) throw refuse('its `migrations` array does not close');
  const inside = source.slice(open.index + open[0].length, close);
  const trimmed = inside.trimEnd();
  const entry = trimmed.trim() === '' || trimmed.endsWith(',') ? constName : `, ${constName}`;
  const withEntry = `${source.slice(0, open.index + open[0].length)}${trimmed}${entry}${inside.slice(trimmed.length)}${source.slice(close)}`;
  const imports = [...withEntry.matchAll(/^import[\s\S]*?from\s+['"][^'"]+['"];?[^\S\n]*$/gm)];
  const line = `import { ${constName} } from '${importPath}';\n`;
  if (imports.length === 0) return `${line}${withEntry}`;
  const last = imports[imports.length - 1]!;
  const at = last.index + last[0].length + 1;
  return `${withEntry.slice(0, at)}${line}${withEntry.slice(at)}`;
}

/** Index of the `]` that closes the `[` at `start`, skipping strings and comments; -1 when none. */
function matchingBracket(s: string, start: number): number {
  let depth = 0;
  for (let i = start; i < s.length; i++) {
    const ch = s[i];
    if (ch === "'" || ch === '"' || ch === '`') {
      for (i++; i < s.length && s[i] !== ch; i++) if (s[i] === '\\') i++;
    } else if (ch === '/' && s[i + 1] === '/') {
      while (i < s.length && s[i] !== '\n') i++;
    } else if (ch === '/' && s[i + 1] === '*') {
      i = s.indexOf('*/', i + 2);
      if (i < 0) return -1;
      i++;
    } else if (ch === '[' || ch === '{' || ch === '(') depth++;
    else if (ch === ']' || ch === '}' || ch === ')') {
      depth--;
      if (depth === 0) return ch === ']' ? i : -1;
    }
  }
  return -1;
}
