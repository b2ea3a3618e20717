/**
 * The conversation of `parley chat` on screen, and its input loop (chat.ts
 * opens the session and hands over): history and what arrived meanwhile
 * first, then live messages, decryption failures, presence, typing and
 * connection notes; every line typed is sent (or, from `/`, run as a
 * command: `/file`, `/download`, `/help`, `/quit`), and at the end the
 * sends still under way are waited for, boundedly. Where it is shown —
 * a terminal or plain lines — is chat-screen.ts's; which entries were
 * shown already, shown-entries.ts's.
 *
 * @module
 */
import { createInterface, type Interface } from 'node:readline';
import { CONTENT_BYTES_MAX, type ChatMessage, type ConnectionEvent, type DecryptionFailure, type PresenceEvent, type SdkError, type TypingEvent } from '@parley/sdk';
import { explain, type Session } from './account.ts';
import { CliError } from './cli-error.ts';
import { downloadTo, sendFileAt } from './files.ts';
import type { lastMessages } from './history.ts';
import { LineScreen, PROMPT, TerminalScreen, type Screen } from './chat-screen.ts';
import { chatLine, failureLine, inert, shortTime, textLine } from './render.ts';
import { ShownEntries } from './shown-entries.ts';

/** A line that is, so far, a command (`/`, `/qu`, `/file x`); `//text` and `/usr/bin` are text. */
const COMMAND_PREFIX = /^\/[A-Za-z]*(?:\s|$)/;

/** How long "is typing…" stays after the last typing frame (senders repeat it every 3 s while typing). */
const TYPING_SHOWN_MS = 6_000;
/** A lost connection is mentioned only if it stays lost this long. */
const OFFLINE_NOTICE_MS = 4_000;
/** At the end, how long to wait for messages still being sent. */
const SEND_WAIT_MS = 15_000;

const HELP = [
  'Commands:',
  '  /quit, /exit   leave (Ctrl-D and Ctrl-C too)',
  '  /file <path>   send a file (end-to-end encrypted, like messages)',
  '  /download <n> [path]   save the file of message #n (default: its name, here)',
  '  /help          this list',
  '  //text         send "/text" (a line starting with one /word is a command)',
];

/** A message or failure the client reported before the conversation was on screen. */
export type Early = { kind: 'message'; m: ChatMessage } | { kind: 'failure'; f: DecryptionFailure };

/** The start of a line, for a note about it. */
function excerpt(text: string): string {
  return inert(text.length > 40 ? `${text.slice(0, 40)}…` : text);
}

/** A one-line reason for a failed send, without the SDK's prefix. */
function sendFailure(e: unknown, session: Session, peer: string): string {
  const explained = explain(e, { ...session.ctx, peer });
  if (explained instanceof CliError) return explained.message;
  return explained instanceof Error ? explained.message : String(explained);
}

/** The conversation on screen, and the input loop. */
export class View {
  readonly #s: Session;
  readonly #peer: string;
  readonly #roomId: string;
  readonly #terminal: boolean;
  #screen: Screen = new LineScreen();
  #rl: Interface | null = null;
  /** Which entries are on screen, so none shows twice (history, early events and live ones overlap). */
  readonly #shown = new ShownEntries();
  #typingTimer: ReturnType<typeof setTimeout> | null = null;
  #offlineTimer: ReturnType<typeof setTimeout> | null = null;
  #offlineShown = false;
  /** Whether the connection is down now (lines typed meanwhile are queued, and shown so). */
  #down = false;
  readonly #sends = new Set<Promise<void>>();
  /** Downloads under way (waited for at the end, like sends, but not counted as unsent). */
  readonly #downloads = new Set<Promise<void>>();
  failedSends = 0;
  #quit: (() => void) | null = null;
  #quitting = false;
  #endedFor: SdkError | null = null;
  #settled = false;
  #hungUp = false;
  /** The signal that ended the chat (not a terminal's Ctrl-C, which is how one leaves it). */
  #signal: 'SIGTERM' | 'SIGINT' | null = null;

  constructor(session: Session, peer: string, roomId: string, terminal: boolean) {
    this.#s = session;
    this.#peer = peer;
    this.#roomId = roomId;
    this.#terminal = terminal;
  }

  /** Shows history and what arrived meanwhile, then reads lines until the end. */
  async run(history: Awaited<ReturnType<typeof lastMessages>>, early: readonly Early[], notices: readonly string[], online: boolean | null): Promise<void> {
    const done = new Promise<void>((resolve) => (this.#quit = resolve));
    if (this.#terminal) this.#guardRawMode();
    const rl = createInterface({ input: process.stdin, output: this.#terminal ? process.stdout : undefined, terminal: this.#terminal, prompt: PROMPT, crlfDelay: Infinity });
    this.#rl = rl;
    if (this.#terminal) this.#screen = new TerminalScreen(rl);
    // A reader that went away (`parley chat bob | head`) ends the chat instead of crashing it.
    process.stdout.on('error', () => this.#end());

    const s = this.#s;
    this.#screen.status(`· Chat with ${this.#peer} as ${s.user} on ${s.server}. ${this.#terminal ? 'Type a message and press Enter; /quit to leave, /help for more.' : 'Sending each input line.'}`);
    for (const item of history) {
      if (item.type === 'message') this.#screen.line(chatLine(item, shortTime(item.serverTs)));
      else this.#screen.line(failureLine(item, shortTime(item.serverTs)));
      this.#shown.history(item.seq);
    }
    const elsewhere = new Set<string>();
    let elsewhereCount = 0;
    for (const e of early) {
      const roomId = e.kind === 'message' ? e.m.roomId : e.f.roomId;
      if (roomId !== this.#roomId) {
        elsewhereCount++;
        elsewhere.add(e.kind === 'message' ? e.m.sender.userId : e.f.from.userId);
      } else if (e.kind === 'message') this.message(e.m);
      else this.failure(e.f);
    }
    if (online !== null) this.#screen.status(`· ${this.#peer} is ${online ? 'online' : 'offline'}.`);
    for (const n of notices) this.notice(n);
    if (elsewhereCount > 0) this.#screen.status(`· ${elsewhereCount} new message${elsewhereCount === 1 ? '' : 's'} in other conversations (from ${[...elsewhere].join(', ')}).`);

    rl.on('line', (line) => this.#onLine(line));
    rl.on('close', () => this.#end());
    rl.on('SIGINT', () => rl.close());
    process.once('SIGTERM', () => {
      this.#signal = 'SIGTERM';
      this.#end();
    });
    process.once('SIGHUP', () => {
      // The terminal hung up: nothing more can be written to it or restored.
      this.#hungUp = true;
      this.#end(true);
    });
    if (!this.#terminal) {
      process.once('SIGINT', () => {
        this.#signal = 'SIGINT';
        this.#end();
      });
    }
    if (this.#terminal) {
      process.stdin.on('keypress', this.#onKeypress);
      rl.prompt();
    }
    await done;
    await this.#settleSends();
  }

  readonly #onKeypress = (_text: string | undefined, key: { name?: string; ctrl?: boolean; meta?: boolean } | undefined): void => {
    if (this.#quitting || key === undefined || key.ctrl === true || key.meta === true) return;
    if (key.name === 'return' || key.name === 'enter') return;
    const line = this.#rl?.line ?? '';
    if (line.length === 0 && key.name === 'backspace') return;
    // A command being typed (/quit, /file …) is never sent: not typing a message.
    if (COMMAND_PREFIX.test(line)) return;
    try {
      this.#s.client.typing(this.#roomId);
    } catch {
      // Typing is a courtesy: a closed client simply sends none.
    }
  };

  #onLine(raw: string): void {
    if (this.#quitting) return;
    const line = raw.replace(/\r$/, '');
    const command = /^\/([A-Za-z]+)(?:\s|$)/.exec(line);
    if (command !== null) {
      const name = (command[1] ?? '').toLowerCase();
      if (name === 'quit' || name === 'exit' || name === 'q') {
        this.#end(true);
        return;
      }
      if (name === 'help') {
        for (const h of HELP) this.#screen.status(h);
        return;
      }
      const rest = line.slice(command[0].length).trim();
      if (name === 'file') {
        if (rest === '') this.#screen.status('· /file <path>: which file?');
        else this.#sendFile(rest);
        return;
      }
      if (name === 'download') {
        const m = /^(\d+)(?:\s+(.+))?$/.exec(rest);
        if (m === null) this.#screen.status('· /download <n> [path]: n is the number shown with the file');
        else this.#download(Number(m[1]), m[2]);
        return;
      }
      this.#screen.status(`· unknown command /${inert(command[1] ?? '')}: /help lists them; //${inert(command[1] ?? '')} sends the text`);
      return;
    }
    const text = line.startsWith('//') ? line.slice(1) : line;
    if (text.trim() === '') {
      if (this.#terminal) this.#rl?.prompt();
      return;
    }
    this.#send(text, line);
  }

  #send(text: string, typed: string): void {
    if (Buffer.byteLength(text, 'utf8') > CONTENT_BYTES_MAX) {
      // Said before anything is sent, with the way that works for long text.
      this.failedSends++;
      this.#screen.status(`! not sent: ${excerpt(text)} — a message holds at most ${CONTENT_BYTES_MAX} bytes of text; put it in a file and send that (/file <path>)`);
      return;
    }
    const client = this.#s.client;
    const me = this.#s.user;
    // Shown at once in a terminal; while the connection is down, marked as waiting in the queue.
    const queued = this.#terminal && this.#down;
    if (this.#terminal) this.#screen.entered(typed, `${textLine(me, text, shortTime(Date.now()))}${queued ? '  (queued)' : ''}`);
    const p = client.send(this.#roomId, text).then(
      (r) => {
        if (!this.#terminal) this.#screen.line(textLine(me, text, shortTime(r.serverTs)));
        else if (queued && !this.#settled) this.#screen.status(`· sent: ${excerpt(text)}`);
        this.#shown.add(r.seq);
        const others = r.skipped.filter((d) => d.userId !== me);
        if (others.length > 0) this.#screen.status(`· not delivered to ${others.map((d) => `${d.userId}/${d.deviceId}`).join(', ')} (no usable keys, or an identity key that changed: see 'parley verify ${this.#peer}')`);
      },
      (e: unknown) => {
        if (this.#settled) return; // counted and reported by #settleSends
        this.failedSends++;
        this.#screen.status(`! not sent: ${excerpt(text)} — ${sendFailure(e, this.#s, this.#peer)}`);
      },
    );
    this.#sends.add(p);
    void p.finally(() => this.#sends.delete(p));
  }

  #sendFile(path: string): void {
    const me = this.#s.user;
    this.#screen.status(`· sending ${inert(path)}…`);
    const p = sendFileAt(this.#s.client, this.#roomId, path).then(
      ({ result, name, bytes }) => {
        this.#shown.add(result.seq);
        this.#screen.line(`[${shortTime(result.serverTs)}] ${me}: (file #${result.seq} "${inert(name)}", ${bytes} bytes)`);
      },
      (e: unknown) => {
        if (this.#settled) return;
        this.failedSends++;
        this.#screen.status(`! file not sent: ${inert(path)} — ${sendFailure(e, this.#s, this.#peer)}`);
      },
    );
    this.#sends.add(p);
    void p.finally(() => this.#sends.delete(p));
  }

  #download(seq: number, dest: string | undefined): void {
    const p = downloadTo(this.#s.client, this.#roomId, seq, dest, false, `save it under another name: /download ${seq} <path> (a path that does not exist yet)`).then(
      (saved) => {
        if (!this.#settled) this.#screen.status(`· saved file #${seq} (${saved.bytes} bytes) to ${inert(saved.path)}`);
      },
      (e: unknown) => {
        if (!this.#settled) this.#screen.status(`! file #${seq} not saved — ${sendFailure(e, this.#s, this.#peer)}`);
      },
    );
    this.#downloads.add(p);
    void p.finally(() => this.#downloads.delete(p));
  }

  /** A warning or request from the client (key changes, verification). */
  notice(text: string): void {
    this.#screen.status(`! ${text}`);
  }

  /** A live message (any room). */
  message(m: ChatMessage): void {
    if (m.roomId !== this.#roomId) {
      this.#screen.status(`· new message from ${m.sender.userId} in another conversation ('parley chat ${m.sender.userId}')`);
      return;
    }
    if (!this.#shown.add(m.seq)) return;
    if (m.sender.userId === this.#peer) this.#setTyping(false);
    this.#screen.line(chatLine(m, shortTime(m.serverTs)));
  }

  failure(f: DecryptionFailure): void {
    if (f.roomId !== this.#roomId || !this.#shown.add(f.seq)) return;
    this.#screen.line(failureLine(f, shortTime(f.serverTs)));
  }

  presence(p: PresenceEvent): void {
    if (p.userId !== this.#peer || this.#quitting) return;
    // Gone: no longer typing either (its last frame would otherwise show for TYPING_SHOWN_MS).
    if (!p.online && this.#typingTimer !== null) this.#setTyping(false);
    this.#screen.status(p.online ? `· ${this.#peer} is online.` : `· ${this.#peer} went offline.`);
  }

  typingFrame(t: TypingEvent): void {
    if (t.roomId !== this.#roomId || t.from.userId !== this.#peer || this.#quitting) return;
    this.#setTyping(true);
  }

  #setTyping(on: boolean): void {
    if (this.#typingTimer !== null) clearTimeout(this.#typingTimer);
    this.#typingTimer = null;
    if (on) this.#typingTimer = setTimeout(() => this.#setTyping(false), TYPING_SHOWN_MS);
    this.#screen.typing(on ? this.#peer : null);
  }

  /** Why the client stopped for good under the chat (this device was removed, …), or null. */
  get endedFor(): SdkError | null {
    return this.#endedFor;
  }

  connection(c: ConnectionEvent): void {
    if (c.state === 'ended') {
      // The client stopped for good (this device removed, say): nothing typed could be sent.
      this.#endedFor = c.error;
      if (this.#offlineTimer !== null) clearTimeout(this.#offlineTimer);
      this.#offlineTimer = null;
      this.#screen.status(`· ${c.error.code === 'DEVICE_REMOVED' ? 'this device was removed from the account; it cannot log in again' : `disconnected for good (${c.error.message})`}`);
      this.#end();
      return;
    }
    if (c.state === 'disconnected') this.#down = true;
    else if (c.state === 'connected') this.#down = false;
    if (c.state === 'disconnected' && this.#offlineTimer === null && !this.#quitting) {
      this.#offlineTimer = setTimeout(() => {
        this.#offlineShown = true;
        this.#screen.status('· connection lost; reconnecting… (messages you type are queued)');
      }, OFFLINE_NOTICE_MS);
    } else if (c.state === 'connected') {
      if (this.#offlineTimer !== null) clearTimeout(this.#offlineTimer);
      this.#offlineTimer = null;
      if (this.#offlineShown) this.#screen.status('· reconnected');
      this.#offlineShown = false;
    }
  }

  /** Stops reading; `atLineStart` when the cursor is already on a fresh line (after Enter). */
  #end(atLineStart = false): void {
    if (this.#quitting) return;
    this.#quitting = true;
    // Ctrl-D or Ctrl-C leave the cursor after the prompt: end that line.
    if (this.#terminal && !atLineStart) process.stdout.write('\n');
    this.#closeInput();
    this.#quit?.();
  }

  /**
   * When the terminal goes away, readline (closing on the input's end)
   * restores cooked mode on it, and that throws EIO from inside readline. A
   * terminal that is gone has no mode to restore: note the hangup instead.
   */
  #guardRawMode(): void {
    const stdin = process.stdin;
    const setRawMode = stdin.setRawMode.bind(stdin);
    stdin.setRawMode = (mode: boolean): typeof stdin => {
      try {
        return setRawMode(mode);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EIO') throw e;
        this.#hungUp = true;
        return stdin;
      }
    };
  }

  /** Whether the chat ended because its terminal hung up (SIGHUP, or a terminal gone: EIO). */
  get hungUp(): boolean {
    return this.#hungUp;
  }

  /** The signal that ended the chat, if one did (its exit code is 128 + its number, as for the other commands). */
  get endedBy(): 'SIGTERM' | 'SIGINT' | null {
    return this.#signal;
  }

  #closeInput(): void {
    try {
      this.#rl?.close();
    } catch {
      // A terminal that went away (EIO from setRawMode): there is no mode left to restore.
    }
  }

  /** Waits (boundedly) for messages still being sent. */
  async #settleSends(): Promise<void> {
    if (this.#sends.size === 0 && this.#downloads.size === 0) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([Promise.allSettled([...this.#sends, ...this.#downloads]), new Promise<void>((resolve) => (timer = setTimeout(resolve, SEND_WAIT_MS)))]);
    clearTimeout(timer);
    this.#settled = true;
    const left = this.#sends.size;
    if (left > 0) {
      this.failedSends += left;
      // Only what reached the outbound queue is in the store; a line still waiting to be encrypted is not.
      const kept = Math.min(left, this.#s.store.queuedMessages().length);
      if (kept > 0) this.#screen.status(`· ${kept} message${kept === 1 ? ' is' : 's are'} not stored by the server yet; kept in the store, ${kept === 1 ? 'it goes' : 'they go'} out the next time ${this.#s.user} runs parley.`);
      const lost = left - kept;
      if (lost > 0) this.#screen.status(`! ${lost} message${lost === 1 ? ' was' : 's were'} not sent and not kept: ${lost === 1 ? 'it' : 'they'} could not be encrypted without the server; send ${lost === 1 ? 'it' : 'them'} again.`);
    }
  }

  dispose(): void {
    if (this.#typingTimer !== null) clearTimeout(this.#typingTimer);
    if (this.#offlineTimer !== null) clearTimeout(this.#offlineTimer);
    process.stdin.off('keypress', this.#onKeypress);
    this.#screen.close();
    if (!this.#quitting) {
      this.#quitting = true;
      this.#closeInput();
    }
  }
}
