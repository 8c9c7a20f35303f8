/**
 * Secrets out of what we show. Every URL, response body or driver message that reaches an error message, a log
 * line, a span attribute or the CLI's output goes through these first: a password in a URL's userinfo, a
 * credential-like query parameter, an Authorization header value and any secret the caller names become `***`.
 */
export const REDACTED = '***';

/** Query parameters whose value is a credential (compared case-insensitively). */
const SECRET_PARAM =
  'token|access_token|accesstoken|api_key|apikey|api-key|key|secret|client_secret|password|passwd|pwd|auth|authorization|signature|sig|x-amz-signature|x-amz-credential|x-amz-security-token|x-goog-signature';
const SECRET_PARAM_NAME = new RegExp(`^(?:${SECRET_PARAM})$`, 'i');
/** `scheme://user:password@` anywhere in a text. */
const USERINFO_IN_TEXT = /\b([a-z][a-z0-9+.-]*:\/\/[^\s/?#@:]*):([^\s/?#@]*)@/gi;
/** `?token=…` / `&api_key=…` anywhere in a text. */
const PARAM_IN_TEXT = new RegExp(`([?&](?:${SECRET_PARAM})=)[^&#\\s"'<>]*`, 'gi');
/** An Authorization header as text or JSON: `authorization: Bearer x`, `"authorization":"x"`. */
const AUTH_HEADER_IN_TEXT = /((?:proxy-)?authorization["']?\s*[:=]\s*["']?)[^"'\r\n,}]+/gi;

/**
 * The URL with a userinfo password and credential-like query parameters replaced by `***`; the user name, host,
 * path and other parameters stay, as written, so that the reader can tell which server it was. A string that is not
 * a URL is scrubbed as text (`redactUrls`).
 */
export function redactUrl(url: string): string {
  const scrubbed = redactUrls(url);
  if (!URL.canParse(url) || isClean(scrubbed)) return scrubbed;
  // A password the text pattern cannot delimit (a space, an unencoded character): rebuild the URL instead.
  const parsed = new URL(url);
  if (parsed.password !== '') parsed.password = REDACTED;
  for (const name of new Set(parsed.searchParams.keys()))
    if (SECRET_PARAM_NAME.test(name)) parsed.searchParams.set(name, REDACTED);
  return parsed.toString();
}

function isClean(url: string): boolean {
  if (!URL.canParse(url)) return false;
  const parsed = new URL(url);
  if (parsed.password !== '' && parsed.password !== REDACTED) return false;
  return [...parsed.searchParams].every(([name, value]) => !SECRET_PARAM_NAME.test(name) || value === REDACTED);
}

/** Every URL inside a free text (a driver's or a client library's message) with its password and credential parameters as `***`. */
export function redactUrls(text: string): string {
  return text.replace(USERINFO_IN_TEXT, `$1:${REDACTED}@`).replace(PARAM_IN_TEXT, `$1${REDACTED}`);
}

export interface RedactOptions {
  /** Values to remove wherever they appear (tokens, passwords); empty and very short ones (< 4 characters) are ignored. */
  secrets?: ReadonlyArray<string | undefined | null>;
  /** Longer texts are cut to this many characters, with a note of how many were left out. Default: no cap. */
  maxLength?: number;
}

/**
 * A text from outside (a response body, a client library's message) fit to show: the named secrets, Authorization
 * header values, URL passwords and credential parameters replaced by `***`, then cut to `maxLength`.
 */
export function redactSecrets(text: string, options: RedactOptions = {}): string {
  let out = text;
  const secrets = [...new Set(options.secrets ?? [])]
    .filter((s): s is string => typeof s === 'string' && s.length >= 4)
    .sort((a, b) => b.length - a.length);
  for (const secret of secrets) {
    out = out.split(secret).join(REDACTED);
    // A body may echo the secret JSON- or URL-encoded.
    for (const encoded of [JSON.stringify(secret).slice(1, -1), encodeURIComponent(secret)])
      if (encoded !== secret) out = out.split(encoded).join(REDACTED);
  }
  out = redactUrls(out.replace(AUTH_HEADER_IN_TEXT, `$1${REDACTED}`));
  const max = options.maxLength;
  if (max !== undefined && out.length > max) out = `${out.slice(0, max)}… (${out.length - max} more characters)`;
  return out;
}
