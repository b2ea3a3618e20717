/**
 * Where `parley chat` shows the conversation: an interactive terminal
 * (readline, with a prompt that incoming lines never break, the typed line
 * kept whole below them) or plain lines (the conversation on stdout, notes
 * on stderr) for a pipe or a script. chat-view.ts decides what to show;
 * these decide how.
 *
 * @module
 */
import { clearScreenDown, cursorTo, moveCursor, type Interface } from 'node:readline';
import { displayWidth } from './render.ts';

/** Where the conversation is shown. */
export interface Screen {
  /** A line of the conversation. */
  line(text: string): void;
  /** A note (typing, connection, errors). */
  status(text: string): void;
  /** Who is typing now (null: nobody). */
  typing(name: string | null): void;
  /** A line the user entered (the terminal shows it as a chat line instead of the echo). */
  entered(text: string, shown: string): void;
  close(): void;
}

export const PROMPT = '> ';

/** An interactive terminal: readline with a prompt that output never breaks. */
export class TerminalScreen implements Screen {
  readonly #rl: Interface;
  readonly #out = process.stdout;
  #closed = false;

  constructor(rl: Interface) {
    this.#rl = rl;
  }

  /**
   * Clear the prompt and what is typed — every row of it, as it may wrap —
   * write `text` (if any) in its place, and draw the prompt again below.
   * readline's redraw first moves up as many rows as the cursor was below
   * the prompt's first row; blank lines after `text` give it those rows, so
   * it never climbs into what was just written. Call before changing the prompt.
   */
  #redraw(text?: string): void {
    const rows = this.#rl.getCursorPos().rows;
    if (rows > 0) moveCursor(this.#out, 0, -rows);
    cursorTo(this.#out, 0);
    clearScreenDown(this.#out);
    this.#out.write(`${text === undefined ? '' : `${text}\n`}${'\n'.repeat(rows)}`);
  }

  /** Prints `text` above the prompt and redraws the prompt with what is being typed. */
  line(text: string): void {
    if (this.#closed) {
      this.#out.write(`${text}\n`);
      return;
    }
    this.#redraw(text);
    this.#rl.prompt(true);
  }
  status(text: string): void {
    this.line(text);
  }
  typing(name: string | null): void {
    if (this.#closed) return;
    this.#redraw();
    this.#rl.setPrompt(name === null ? PROMPT : `(${name} is typing…) ${PROMPT}`);
    this.#rl.prompt(true);
  }
  entered(text: string, shown: string): void {
    if (this.#closed) return;
    // Replace the echoed "> text" by the chat line. It took one row more than
    // it filled: readline starts a new row after a full one (exactly the
    // width included), and Enter moved below it.
    const columns = this.#out.columns > 0 ? this.#out.columns : 80;
    const rows = Math.floor((displayWidth(this.#rl.getPrompt()) + displayWidth(text)) / columns) + 1;
    moveCursor(this.#out, 0, -rows);
    cursorTo(this.#out, 0);
    clearScreenDown(this.#out);
    this.line(shown);
  }
  close(): void {
    this.#closed = true;
  }
}

/** Lines: the conversation on stdout, notes on stderr. */
export class LineScreen implements Screen {
  #typingShown = false;

  line(text: string): void {
    process.stdout.write(`${text}\n`);
  }
  status(text: string): void {
    process.stderr.write(`${text}\n`);
  }
  typing(name: string | null): void {
    // One note per burst of typing, not one per frame.
    if (name !== null && !this.#typingShown) this.status(`· ${name} is typing…`);
    this.#typingShown = name !== null;
  }
  entered(): void {
    // Sent lines are printed once the server has stored them.
  }
  close(): void {}
}
