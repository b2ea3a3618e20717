/**
 * A service URL (Redis, PostgreSQL) as errors and logs may show it: with
 * any password replaced. Settings never echo a URL whole (config.ts).
 *
 * @module
 */
export function redactedUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = '***';
    return u.toString();
  } catch {
    return '(unparsable URL)';
  }
}
