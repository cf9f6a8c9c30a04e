/** A URL fit for logs: the password (if any) replaced. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = 'redacted';
    return parsed.toString();
  } catch {
    return '[unparseable url]';
  }
}

/**
 * `scheme://user:password@` anywhere in a text. The password runs to the last `@` before a space or
 * quote: in a URL that does not parse (a mistyped DATABASE_URL) it may itself hold `@` or `/`.
 */
const URL_CREDENTIALS = /\b([a-z][a-z0-9+.-]*:\/\/[^\s:/@]*:)[^\s"'<>]*@/gi;

/**
 * A free text (an error message, a stack trace) fit for logs and answers: the password of every URL
 * in it replaced. Drivers put the URL they were given into their errors, and that URL may not even
 * parse (a bad DATABASE_URL), so this works on the text rather than on parsed URLs.
 */
export function redactUrlsIn(text: string): string {
  return text.replace(URL_CREDENTIALS, '$1redacted@');
}
