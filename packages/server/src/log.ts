/**
 * Structured JSON logs (pino). Log calls pass explicit, small fields; the
 * server never logs payloads, ciphertexts, tokens or keys (public keys are
 * logged only as fingerprints), and a redaction list catches mistakes.
 *
 * @module
 */
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  return pino(
    {
      level,
      base: { service: 'parley' },
      redact: { paths: ['token', 'accessToken', 'refreshToken', 'payload', 'ciphertext', 'privateKey', '*.token', '*.payload'], censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination ?? pino.destination({ sync: true }),
  );
}
