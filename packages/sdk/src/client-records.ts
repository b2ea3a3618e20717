/**
 * How the client's own records lie in a sealed store's plain records
 * (format: sealed-records.ts), written and read side by side: a kept
 * message (`message`), a message waiting to be sent (`outbound`) and a kept
 * verification (`verification`) — header fields, byte parts, and the
 * content part shared by the first two (text as UTF-8, binary as is, a
 * file reference encoded, a control message's type byte). A record that
 * does not read is `SdkError` `STORE`.
 *
 * @module
 */
import { fromUtf8, utf8 } from './_bytes.ts';
import { SdkError } from './errors.ts';
import type { KeptMessage } from './events.ts';
import { decodeFileRef, encodeFileRef } from './file-transfer.ts';
import type { QueuedMessage } from './outbound-queue.ts';
import type { StoredContent } from './payload.ts';
import type { KeptVerification } from './peer-verification.ts';
import { headerInt, headerString, recordPart, type PlainRecord, type RecordKind } from './sealed-records.ts';

/** A kept message's record (its ord, the order of eviction, is the store's). */
export function messageRecord(message: KeptMessage): PlainRecord {
  const content = contentBytes(message);
  const header = {
    roomId: message.roomId,
    seq: message.seq,
    id: message.id,
    userId: message.sender.userId,
    deviceId: message.sender.deviceId,
    outgoing: message.outgoing,
    sentAt: message.sentAt,
    serverTs: message.serverTs,
    kind: message.kind,
  };
  return { header, parts: [content] };
}

/** A queued message's record: the finished body, then the content for this device's own copy. */
export function queuedRecord(message: QueuedMessage): PlainRecord {
  const header = { roomId: message.roomId, clientId: message.clientId, sentAt: message.sentAt, kind: message.content.kind };
  return { header, parts: [message.body, contentBytes(message.content)] };
}

/** A kept verification's record: a running one names its attempt; a request held for the user keeps the peer's start. */
export function verificationRecord(userId: string, kept: KeptVerification): PlainRecord {
  if (kept.state === 'running') {
    return { header: { state: 'running', userId, roomId: kept.roomId, verificationId: kept.verificationId }, parts: [] };
  }
  const r = kept.request;
  const header = { state: 'request', userId, roomId: r.roomId, fromDevice: r.from.deviceId, verificationId: r.verificationId, requestedAt: r.requestedAt, receivedAt: kept.receivedAt };
  return { header, parts: [kept.start] };
}

function contentBytes(c: StoredContent): Uint8Array {
  if (c.kind === 'control') return c.controlType === undefined ? new Uint8Array(0) : Uint8Array.of(c.controlType);
  return c.kind === 'text' ? utf8(c.text) : c.kind === 'binary' ? c.bytes : c.kind === 'file' ? encodeFileRef(c.file) : new Uint8Array(0);
}

function readContent(r: PlainRecord, part: number, kind: RecordKind): StoredContent {
  const bytes = recordPart(r, part, kind);
  const k = r.header['kind'];
  if (k === 'binary') return { kind: 'binary', bytes };
  if (k === 'control') return bytes.length === 1 ? { kind: 'control', controlType: bytes[0] as number } : { kind: 'control' };
  if (k === 'file') {
    try {
      return { kind: 'file', file: decodeFileRef(bytes) };
    } catch {
      throw new SdkError('STORE', `a ${kind} record holds an invalid file reference`);
    }
  }
  const text = k === 'text' ? fromUtf8(bytes) : null;
  if (text === null) throw new SdkError('STORE', `a ${kind} record has no valid content`);
  return { kind: 'text', text };
}

export function readMessage(r: PlainRecord): KeptMessage {
  const kind = 'message';
  const outgoing = r.header['outgoing'];
  if (typeof outgoing !== 'boolean') throw new SdkError('STORE', 'a message record lacks outgoing');
  return {
    ...readContent(r, 0, kind),
    roomId: headerString(r, 'roomId', kind),
    seq: headerInt(r, 'seq', kind),
    id: headerString(r, 'id', kind),
    sender: { userId: headerString(r, 'userId', kind), deviceId: headerString(r, 'deviceId', kind) },
    outgoing,
    sentAt: headerInt(r, 'sentAt', kind),
    serverTs: headerInt(r, 'serverTs', kind),
  };
}

export function readVerification(r: PlainRecord): KeptVerification {
  const kind = 'verification';
  const userId = headerString(r, 'userId', kind);
  const roomId = headerString(r, 'roomId', kind);
  const verificationId = headerString(r, 'verificationId', kind);
  if (r.header['state'] === 'running') return { state: 'running', userId, roomId, verificationId };
  const from = { userId, deviceId: headerString(r, 'fromDevice', kind) };
  const request = { userId, roomId, from, verificationId, requestedAt: headerInt(r, 'requestedAt', kind) };
  return { state: 'request', request, start: recordPart(r, 0, kind), receivedAt: headerInt(r, 'receivedAt', kind) };
}

export function readQueued(r: PlainRecord): QueuedMessage {
  const kind = 'outbound';
  return {
    roomId: headerString(r, 'roomId', kind),
    clientId: headerString(r, 'clientId', kind),
    body: recordPart(r, 0, kind),
    sentAt: headerInt(r, 'sentAt', kind),
    content: readContent(r, 1, kind),
  };
}
