/**
 * `parley verify <user>`: the safety number of you and another user, over
 * every device's identity key of both as the server's key directory lists
 * them, to compare with the other user's out of band.
 *
 * With a secret (`--secret`, `--secret-env`, `--secret-file`): "verify with
 * a secret we both know" — Secure Comparator inside the encrypted
 * conversation (the SDK's `verify`). It answers the other user's open
 * request, or asks and waits (up to 5 minutes) for them to run the same
 * command; exit 0 when verified, 1 when the secrets differ (or someone is in
 * the middle) or the attempt ended without a result; Ctrl-C while it runs
 * cancels it, tells the other side, and exits 130.
 *
 * @module
 */
import type { SafetyNumberDevice, VerificationOutcome } from '@parley/sdk';
import { withSession, type StoreOptions } from './account.ts';
import { CliError, EXIT_INTERRUPTED, failure, usageError } from './cli-error.ts';
import { formatSize, MAX_PASSPHRASE_BYTES } from './limits.ts';
import { note, writeLines } from './output.ts';
import { canPrompt, passphraseFromOptions, promptPassphraseAs } from './passphrase.ts';
import { checkUserId } from './profile.ts';

export interface VerifyOptions extends StoreOptions {
  secret?: boolean;
  secretEnv?: string;
  secretFile?: string;
}

/** The shared secret, as text when it is UTF-8 (so the SDK normalises it like the other side's), else bytes. */
async function sharedSecret(options: VerifyOptions, peer: string): Promise<string | Uint8Array> {
  let bytes = await passphraseFromOptions({ passphraseEnv: options.secretEnv, passphraseFile: options.secretFile }, { env: '--secret-env', file: '--secret-file' });
  if (bytes === undefined) {
    if (!canPrompt()) throw usageError('no shared secret: give --secret-env VAR or --secret-file FILE (stdin is not a terminal)');
    process.stderr.write(`Type the secret you and ${peer} agreed on (a phrase said on a call, in person…). It is never sent: only whether both are equal is learnt.\n`);
    bytes = await promptPassphraseAs('Shared secret', false);
  }
  if (bytes.length > MAX_PASSPHRASE_BYTES) throw usageError(`the secret is longer than ${formatSize(MAX_PASSPHRASE_BYTES)}`);
  try {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    bytes.fill(0);
    return text;
  } catch {
    return bytes;
  }
}

function describeOutcome(o: VerificationOutcome, peer: string): string {
  if (o.state === 'failed') return `${peer} is NOT verified: the secrets differ, or someone between you changed keys. Agree on the secret again over a channel you trust and retry; repeated failures suggest an attack.`;
  const why: Record<string, string> = {
    timeout: `${peer} did not answer in time`,
    'peer-aborted': `${peer} declined or gave up${o.peerReason !== null && o.peerReason !== 'cancelled' ? ` (${o.peerReason})` : ''}`,
    'answered-elsewhere': `${peer}'s request was answered on another of your devices`,
    replaced: `${peer} started another attempt`,
    'send-failed': 'a message could not be sent',
    'crowded-out': `too many verification requests were open at once; ask ${peer} to start again`,
  };
  return `no result: ${why[o.reason ?? ''] ?? `the attempt ended (${o.reason ?? 'unknown'})`}`;
}

async function verifyWithSecret(peer: string, options: VerifyOptions): Promise<void> {
  await withSession(options, async (s) => {
    if (peer === s.user) throw usageError(`${peer} is you: give the user to verify`);
    s.ctx.peer = peer;
    const secret = await sharedSecret(options, peer);
    // Caught up first: a request sent while this device was away is open by then.
    await s.client.synced();
    const request = s.client.verificationRequest(peer);
    if (request !== null) note(`Answering ${peer}'s request (from device ${request.from.deviceId})…`);
    else {
      // An unknown user fails here (`not_found`, explained), before anything says it was asked.
      await s.client.safetyNumber(peer);
      note(`Asked ${peer} to verify. Waiting for them to run 'parley verify ${s.user} --secret' (up to 5 minutes; Ctrl-C gives up)…`);
    }
    // Ctrl-C gives up: the peer is told now (verify() settles once the abort
    // is stored), not when its own 5 minutes run out.
    let interrupted = false;
    const onInterrupt = (): void => {
      interrupted = true;
      note('Giving up; telling the other side…');
      s.client.cancelVerification(peer);
    };
    process.once('SIGINT', onInterrupt);
    let outcome: VerificationOutcome;
    try {
      outcome = await s.client.verify(peer, secret);
    } finally {
      process.off('SIGINT', onInterrupt);
    }
    if (interrupted && outcome.state === 'aborted') throw new CliError(`interrupted: the verification with ${peer} was cancelled, and ${peer} was told`, EXIT_INTERRUPTED);
    if (outcome.state !== 'verified') throw failure(describeOutcome(outcome, peer));
    const status = s.client.verificationStatus(peer);
    await writeLines([`${peer} is verified: you typed the same secret and see the same device keys (${status.devices.map((d) => d.deviceId).join(', ')}).`]);
    note(`If ${peer} adds a device, the verification ends and 'parley chat' warns you.`);
  });
}

function devices(userId: string, list: readonly SafetyNumberDevice[]): string {
  return `${userId}: ${list.length} device${list.length === 1 ? '' : 's'} (${list.map((d) => d.deviceId).join(', ')})`;
}

export async function verify(peerArg: string, options: VerifyOptions): Promise<void> {
  const peer = checkUserId(peerArg);
  if (options.secret === true || options.secretEnv !== undefined || options.secretFile !== undefined) return verifyWithSecret(peer, options);
  await withSession(options, async (s) => {
    if (peer === s.user) throw usageError(`${peer} is you: give the user to verify`);
    s.ctx.peer = peer;
    const r = await s.client.safetyNumber(peer);
    const groups = r.formatted.split(' ');
    const rows = [0, 4, 8].map((i) => `    ${groups.slice(i, i + 4).join(' ')}`);
    await writeLines([
      `Safety number of ${s.user} and ${peer}:`,
      '',
      ...rows,
      '',
      devices(r.local.userId, r.local.devices),
      devices(r.remote.userId, r.remote.devices),
    ]);
    note(
      `Compare it with the number '${'parley verify ' + s.user}' shows ${peer}, in person or over a channel you trust. ` +
        'The same number on both sides means no one substituted keys; it changes when either of you adds or removes a device, or a device gets a new identity key — a restore from a key backup too (the restored machine is a new device that replaces the backed-up one).',
    );
    for (const d of [...r.local.devices.map((x) => ({ user: r.local.userId, d: x })), ...r.remote.devices.map((x) => ({ user: r.remote.userId, d: x }))]) {
      if (!d.d.trusted) {
        note(
          `warning: the key directory lists a different identity key for ${d.user}/${d.d.deviceId} than the one this device trusted at first contact; messages to and from it are refused. Compare safety numbers before anything else.`,
        );
      }
    }
  });
}
