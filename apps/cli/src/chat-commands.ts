/**
 * The chat commands — `register`, `login`, `link-device`, `add-device`,
 * `devices`, `remove-device`, `sign-out-everywhere`, `chat`, `history`,
 * `send-file`, `download`, `delete-file`, `verify`, `backup`, `restore` — as commander
 * commands. This file declares options and help; the work is in
 * `register.ts`, `chat.ts`, `history.ts`, `files.ts`, `verify.ts` and
 * `backup.ts`.
 *
 * @module
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { FILE_BYTES_MAX } from '@parley/sdk';
import type { StoreOptions } from './account.ts';
import { backup, restore, type BackupOptions, type RestoreOptions } from './backup.ts';
import { chat, CHAT_HISTORY_DEFAULT, type ChatOptions } from './chat.ts';
import { exitOnCommanderError, formatCommanderError, runAction } from './cli-error.ts';
import { addDevice, linkDevice, listDevices, removeDevice, signOutEverywhere, type LinkOptions } from './devices.ts';
import { deleteFile, download, sendFile, type DownloadOptions, type SendFileOptions } from './files.ts';
import { history, HISTORY_LIMIT_DEFAULT, HISTORY_LIMIT_MAX, type HistoryOptions } from './history.ts';
import { formatSize } from './limits.ts';
import { DEFAULT_SERVER } from './profile.ts';
import { login, register, type AccountOptions } from './register.ts';
import { verify, type VerifyOptions } from './verify.ts';

function count(max: number, min = 1): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < min || n > max) throw new InvalidArgumentError(`must be an integer ${min}..${max}`);
    return n;
  };
}

/**
 * The help every chat command ends with. `account`: the command takes
 * `--user` (the others name the user as an argument and refuse it).
 */
function commonHelp(account: boolean): string {
  const user = `
  --user <user>    act as this account of the profile (env PARLEY_USER; default:
                   the last one registered, logged in or restored)`;
  return `
Where${account ? ' and who' : ''}:
  --server <url>   the Parley server (env PARLEY_SERVER; else the account's, from
                   register/login/restore; else ${DEFAULT_SERVER})
  --profile <dir>  where accounts are kept (env PARLEY_HOME; default ~/.parley):
                   <dir>/accounts/<user>.parley, the device's keys, sessions and
                   messages sealed under your passphrase; <dir>/config.json, the
                   default account, its device id and server (nothing secret)${account ? user : ''}

The store's passphrase comes from --passphrase-env VAR, --passphrase-file FILE
or, on a terminal, a prompt without echo -- never from the command line (other
users can see it, e.g. with ps).`;
}

function base(name: string, description: string, options: { account: boolean }): Command {
  const cmd = new Command(name)
    .description(description)
    .exitOverride(exitOnCommanderError)
    .configureOutput({ outputError: (text, write) => write(formatCommanderError(text, `parley ${name}`)) })
    .option('--server <url>', `server URL (env PARLEY_SERVER; default: the account's, else ${DEFAULT_SERVER})`)
    .option('--profile <dir>', 'profile directory (env PARLEY_HOME; default ~/.parley)');
  if (options.account) cmd.option('--user <user>', "act as this account of the profile (env PARLEY_USER; default: the profile's)");
  return cmd
    .addOption(new Option('--passphrase-env <var>', "read the store's passphrase from environment variable <var>").conflicts('passphraseFile'))
    .option('--passphrase-file <file>', "read the store's passphrase from <file> (minus one trailing newline)")
    .addOption(new Option('--passphrase [text]').hideHelp())
    .addOption(new Option('--password [text]').hideHelp());
}

function backupPassphraseOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--backup-passphrase-env <var>', "read the backup's passphrase from environment variable <var>").conflicts('backupPassphraseFile'))
    .option('--backup-passphrase-file <file>', "read the backup's passphrase from <file>");
}

/** The chat commands, ready for `program.addCommand()`. */
export function chatCommands(): Command[] {
  const registerCmd = base('register', 'create an account: a new user on the server with this machine as its first device', { account: false })
    .argument('<user>', 'the user id to register (a-z, 0-9, ".", "_", "-")')
    .option('--device <id>', "this device's id (default: from the host name)")
    .addHelpText(
      'after',
      `
Creates <profile>/accounts/<user>.parley (the device's identity key and, later,
its sessions and messages, sealed under the passphrase you choose; asked twice
at the prompt), registers the user and device, and publishes the device's
prekeys. The account becomes the profile's default.
${commonHelp(false)}

Examples:
  parley register alice --server wss://chat.example.org
  PASS=... parley register alice --device laptop --passphrase-env PASS`,
    )
    .action(runAction((user: string, options: AccountOptions) => register(user, options)));

  const loginCmd = base('login', "log an account's device in: check its passphrase and the server's acceptance, and make it the default", { account: false })
    .argument('<user>', 'an account of this profile')
    .option('--device <id>', 'the device id (default: the one in the store)')
    .addHelpText('after', commonHelp(false))
    .action(runAction((user: string, options: AccountOptions) => login(user, options)));

  const chatCmd = base('chat', 'chat with a user: recent history, then live messages; each line you type is sent', { account: true })
    .argument('<user>', 'who to chat with')
    .option('-n, --limit <n>', `messages of history shown first (default ${CHAT_HISTORY_DEFAULT}; 0 for none)`, count(HISTORY_LIMIT_MAX, 0))
    .addHelpText(
      'after',
      `
On a terminal: type a message and press Enter. Incoming messages appear above
the prompt; "<user> is typing…" shows in it while they type. /quit, Ctrl-D or
Ctrl-C leave; /help lists the commands; //text sends a line starting with "/".

Not on a terminal (a pipe, a script): every input line is sent, in order; the
conversation goes to stdout and notes to stderr; at the end of the input it
waits for the server to store the messages, and exits 0 (all stored) or 1.

Messages are end-to-end encrypted for each of the user's devices (and your
other devices). Text from others is shown with control characters escaped.
${commonHelp(true)}

Examples:
  parley chat bob
  printf 'hello\\nsee you at 5\\n' | parley chat bob --passphrase-file ~/.parley-pass`,
    )
    .action(runAction((user: string, options: ChatOptions) => chat(user, options)));

  const historyCmd = base('history', 'print the conversation with a user, or (--search) the messages matching words', { account: true })
    .argument('<user>', 'the other user of the conversation')
    .option('-s, --search <words>', 'only messages containing every word (case, accents and Unicode forms aside; a word matches the start of a word)')
    .option('-n, --limit <n>', `at most the newest <n> messages (default ${HISTORY_LIMIT_DEFAULT}; with --search at most 1000)`, count(HISTORY_LIMIT_MAX))
    .option('--json', 'one JSON object per line (seq, time, sentAt, from, device, outgoing, text)')
    .addHelpText(
      'after',
      `
Oldest first; times are the server's, in local time. Messages sent before this
device existed, or before it was restored from a backup, are listed as not
decryptable. --search scans the messages this device keeps (up to 10,000),
decrypting them here: nothing is sent to the server, and no search index is
written to disk.
${commonHelp(true)}

Examples:
  parley history bob --limit 200 > bob.txt
  parley history bob --search "dinner friday"`,
    )
    .action(runAction((user: string, options: HistoryOptions) => history(user, options)));

  const sendFileCmd = base('send-file', 'send a file to a user, end-to-end encrypted', { account: true })
    .argument('<user>', 'who to send it to')
    .argument('<path>', 'the file')
    .option('--name <name>', 'the name the file is sent under (default: the last component of <path>)')
    .option('--type <media-type>', 'its media type, e.g. image/png (default: guessed from the extension, else none)')
    .addHelpText(
      'after',
      `
The file is sealed here (Themis Secure Cell, a new key for every file) and
uploaded in chunks; the key, the name, the media type and a SHA-256 of the
sealed bytes travel inside an end-to-end encrypted message. The server stores
the sealed bytes and learns their size, not the name or the content. At most
${formatSize(FILE_BYTES_MAX)} (the server may allow less). Prints the message number;
the recipient saves the file with 'parley download <you> <number>'.
${commonHelp(true)}

Examples:
  parley send-file bob ./photo.jpg
  parley send-file bob report-final-v3.pdf --name report.pdf`,
    )
    .action(runAction((user: string, path: string, options: SendFileOptions) => sendFile(user, path, options)));

  const downloadCmd = base('download', 'save a file a conversation carries', { account: true })
    .argument('<user>', 'the other user of the conversation')
    .argument('<seq>', "the file message's number (shown in 'parley chat' and 'parley history')")
    .option('-o, --output <path>', 'where to write it ("-" for standard output; default: the file\'s name, in the current directory)')
    .option('-f, --force', 'overwrite an existing file (with --output only)')
    .addHelpText(
      'after',
      `
Downloads the sealed bytes, checks them against the SHA-256 the encrypted
message carries (a server that altered or swapped them is caught), and opens
them. Without --output the file gets the name it was sent with: only its last
path component, without control characters, leading dots or names Windows
reserves; an existing file is never overwritten (--force overwrites only the
file --output names). The file is created readable by you only (mode 0600).
${commonHelp(true)}

Examples:
  parley download bob 42
  parley download bob 42 -o - | less`,
    )
    .action(runAction((user: string, seq: string, options: DownloadOptions) => download(user, seq, options)));

  const deleteFileCmd = base('delete-file', 'remove from the server a file you sent', { account: true })
    .argument('<user>', 'the other user of the conversation')
    .argument('<seq>', "the file message's number")
    .addHelpText(
      'after',
      `
Deletes the sealed bytes of a file you sent (from any of your devices) and
frees their space in your quota on the server. The message stays in the
conversation; whoever has not downloaded the file can no longer. The server
also removes files by itself after its retention period (30 days unless its
operator set another).
${commonHelp(true)}

Example:
  parley delete-file bob 42`,
    )
    .action(runAction((user: string, seq: string, options: StoreOptions) => deleteFile(user, seq, options)));

  const verifyCmd = base('verify', 'compare safety numbers with a user, or verify them with a secret you both know', { account: true })
    .argument('<user>', 'the user to verify')
    .option('--secret', 'verify with a shared secret typed at a prompt (Secure Comparator)')
    .addOption(new Option('--secret-env <var>', 'the shared secret from an environment variable').conflicts(['secretFile', 'secret']))
    .addOption(new Option('--secret-file <file>', 'the shared secret from a file (one trailing newline ignored)').conflicts('secret'))
    .addHelpText(
      'after',
      `
Without a secret: prints the safety number, over the identity keys of every
device of both users as the server's key directory lists them. Compare it with
the one 'parley verify <you>' shows the other user, in person or over a channel
you trust: if it is the same, no one (the server included) substituted keys. It
changes when either of you adds or removes a device, or a device gets a new
identity key -- a restore from a key backup too, since the restored machine is
a new device that replaces the backed-up one.

With a secret: both of you run 'parley verify <the other> --secret' within 5
minutes and type a secret you agreed on (a phrase said on a call). Themis Secure
Comparator, inside your encrypted conversation, tells each side whether both
typed the same secret AND see the same device keys — without revealing the
secret. The result is kept: 'parley chat' warns when a verified user's devices
change. Exit status 0 when verified, 1 otherwise.
${commonHelp(true)}

Examples:
  parley verify bob
  parley verify bob --secret`,
    )
    .action(runAction((user: string, options: VerifyOptions) => verify(user, options)));

  const backupCmd = backupPassphraseOptions(base('backup', "keep a key backup of this device on the server, sealed under a backup passphrase", { account: true }))
    .addHelpText(
      'after',
      `
The backup holds the device's identity key, sealed (Themis Secure Cell,
PBKDF2) under a backup passphrase -- choose a different, long one: the server
keeps the backup and could try to guess it offline. It is asked twice at the
prompt, or read from --backup-passphrase-env / --backup-passphrase-file. The
server keeps one backup per user (a new one replaces it). Restore it on a new
machine with 'parley restore <user>'.
${commonHelp(true)}`,
    )
    .action(runAction((options: BackupOptions) => backup(options)));

  const restoreCmd = backupPassphraseOptions(base('restore', "on a new machine: fetch a user's key backup from the server; this machine replaces the backed-up device", { account: false }))
    .argument('<user>', 'whose backup to restore')
    .option('--device <id>', "this machine's new device id (default: the backed-up one's with -r2, -r3, …)")
    .option('--replaces <id>', 'confirm which device the restore removes: the backup must be of it')
    .option('--yes', 'remove the backed-up device, whichever it is, without asking')
    .addHelpText(
      'after',
      `
Asks for the backup passphrase (or reads --backup-passphrase-env / -file),
downloads the backup (the server hands it only to whoever derives the right
secret from that passphrase), opens it, and creates the account's store under
a new store passphrase (asked twice). This machine becomes a new device with
keys of its own: the backed-up key approves it, the backup on the server is
renewed for it (same passphrase), then the backed-up key removes its own
device, so no earlier copy of it (the old machine, stolen or still running, or
an earlier restore) can log in again. Since that device may still be in use
(the backup is of whichever device last ran 'parley backup'), the restore asks
first; without a terminal, confirm with --replaces <that device> (or --yes).
It then lists the account's other devices: remove any that are not yours.
Your contacts see a new device of yours and encrypt to it from their next
message; your safety numbers with them change. Messages sent before the
restore cannot be read on this machine: the backup holds no sessions (forward
secrecy).
${commonHelp(false)}

Example:
  parley restore alice --server wss://chat.example.org --replaces laptop`,
    )
    .action(runAction((user: string, options: RestoreOptions) => restore(user, options)));

  const linkDeviceCmd = base('link-device', "on a new machine: make a device for an existing account and print the request that adds it", { account: false })
    .argument('<user>', 'the account to join')
    .option('--device <id>', "this device's id (default: from the host name; must differ from the account's other devices)")
    .option('--replace', "discard this profile's device of the account that has not logged in yet (a wrong id), and make a new one")
    .addHelpText(
      'after',
      `
Creates <profile>/accounts/<user>.parley with this device's own keys (sealed
under the passphrase you choose; asked twice) and prints one line, the link
request (the new key, signed by it: nothing secret), on stdout. Run
'parley add-device <that line>' on a machine that has the account, check that
both show the same fingerprint, then 'parley login <user>' here. Unlike
'parley restore', which replaces the backed-up device, both machines stay:
each has its own keys, and messages are encrypted to both.
${commonHelp(false)}

Example:
  parley link-device alice --device phone --server wss://chat.example.org`,
    )
    .action(runAction((user: string, options: LinkOptions) => linkDevice(user, options)));

  const addDeviceCmd = base('add-device', "add the device a 'parley link-device' request names to this account", { account: true })
    .argument('<request>', "the line 'parley link-device' printed (parley-link-v1:…)")
    .addHelpText(
      'after',
      `
Shows the new device's key fingerprint: compare it with the one the new
machine showed (whoever could change the request on its way could add a
device of their own). Your peers are told of the new device (a key-change
warning) and encrypt to it from then on.
${commonHelp(true)}`,
    )
    .action(runAction((request: string, options: StoreOptions) => addDevice(request, options)));

  const devicesCmd = base('devices', "list the account's devices as the server has them, with key fingerprints", { account: true })
    .addHelpText('after', commonHelp(true))
    .action(runAction((options: StoreOptions) => listDevices(options)));

  const removeDeviceCmd = base('remove-device', 'remove a device from the account: a lost or stolen one, or this one', { account: true })
    .argument('<device>', "the device id (see 'parley devices')")
    .option('--yes', 'confirm removing the device you are on')
    .addHelpText(
      'after',
      `
The server deletes the device with its keys and tokens and ends its sessions:
it cannot log in again, and your peers stop encrypting to it. Its id is not
given to another key (link a new device under a new id). What the removed
device already holds stays readable to whoever has it and its passphrase.
The account's last device cannot be removed.
${commonHelp(true)}`,
    )
    .action(runAction((device: string, options: StoreOptions & { yes?: boolean }) => removeDevice(device, options)));

  const signOutCmd = base('sign-out-everywhere', "end every session of the account but this command's own: copied tokens stop working", { account: true })
    .addHelpText(
      'after',
      `
Every token issued before stops working at once and every other connection is
closed. The account's devices hold their keys and simply log in again; what
ends is anyone using a copy of a token. To shut out a device itself, use
'parley remove-device'.
${commonHelp(true)}`,
    )
    .action(runAction((options: StoreOptions) => signOutEverywhere(options)));

  return [registerCmd, loginCmd, linkDeviceCmd, addDeviceCmd, devicesCmd, removeDeviceCmd, signOutCmd, chatCmd, historyCmd, sendFileCmd, downloadCmd, deleteFileCmd, verifyCmd, backupCmd, restoreCmd];
}
