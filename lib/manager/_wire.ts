/**
 * What a manager's clients and server agree on: the request and reply
 * shapes, the control words of a local channel. Errors travel as
 * `serializeError` makes them (`wire/_error.ts`).
 *
 * A request is `[callId, op, a, b, c]`; a reply is `[callId, ok, value]`
 * (`value` is the serialized error when `ok` is false). Call id 0 asks for
 * no reply. Locally these travel over a MessagePort; over TCP each is a
 * length-prefixed frame in the codec's encoding (`wire/_codec.ts`).
 *
 * @module
 */

import { Decoder, EncodeError, Encoder } from "../wire/_codec.ts";

/** This thread's encoder and decoder (used synchronously, so one is enough). */
export const encoder: Encoder = new Encoder();
/** See {@linkcode encoder}. */
export const decoder: Decoder = new Decoder();

/**
 * Posts a request or reply on a local channel's port. One over
 * {@linkcode FAST_BYTES} encoded goes as its codec bytes in a transferred
 * ArrayBuffer: `receiveMessageOnPort` walks every index of a typed array it
 * receives (8 MiB: ~1.3 s here) but not an ArrayBuffer's. What the codec
 * cannot take goes by structured clone (which may throw).
 */
export function postToPort(port: MessagePort, msg: unknown): void {
  let n = -1;
  try {
    n = encoder.encode(msg);
  } catch (e) {
    // What structured clone carries faithfully (a Blob, a MessagePort, ...)
    // goes by it; the rest is refused, as a queue refuses it: a URL or
    // Headers, which it would silently make `{}`.
    if (!(e instanceof EncodeError && e.portable)) throw e;
  }
  if (n <= FAST_BYTES) return port.postMessage(msg);
  const bytes = new Uint8Array(n);
  encoder.copyTo(bytes, 0, 0, n);
  port.postMessage(bytes.buffer, [bytes.buffer]);
}

/** A message taken from a local channel's port, as {@linkcode postToPort} posted it. */
export function fromPort(msg: unknown): unknown {
  return msg instanceof ArrayBuffer
    ? decoder.decode(new Uint8Array(msg), 0, msg.byteLength)
    : msg;
}

/** Request: call a method: `[id, "call", objectId, method, args]`. */
export const OP_CALL = 0;
/**
 * Request: create an object: `[id, "create", kind, args, argsHoldRefs]` ->
 * `[objectId, kind]`; the caller holds a reference to it.
 */
export const OP_CREATE = 1;
/** Request: name an object (the name holds a reference): `[id, "register", name, objectId]`. */
export const OP_REGISTER = 2;
/** Request: look a name up: `[id, "get", name]` -> `[objectId, kind]`; the caller holds a reference. */
export const OP_GET = 3;
/** Request (local only): serve a new channel: `[0, "adopt", port, sab]`. */
export const OP_ADOPT = 4;
/** Request (local owner only): stop the server. */
export const OP_SHUTDOWN = 5;
/** Request: who are you -> `{ serverId }`. */
export const OP_HELLO = 6;
/** Request (local only): drop this channel (a process already has one). */
export const OP_RELEASE = 7;
/** Request: drop one of the caller's references to each object: `[id, "decref", objectIds]`. */
export const OP_DECREF = 8;
/**
 * Request: a proxy is on its way to another process: hold a reference for
 * it until that process takes it: `[id, "lend", objectId, token]`.
 */
export const OP_LEND = 9;
/**
 * Request: a proxy arrived here: the caller holds a reference, and the one
 * lent for it goes: `[id, "take", objectId, token]`.
 */
export const OP_TAKE = 10;
/**
 * Request: as {@linkcode OP_CALL}, with references to objects inside the
 * arguments (each kept while the value holding it is).
 */
export const OP_CALL_REFS = 11;
/** Request: every object with its reference count -> `[{ id, kind, refs }]`. */
export const OP_DEBUG = 12;

/**
 * The key of a reference to a manager object inside a value (a proxy in the
 * arguments of a call, or stored in a list or dict): `{ [REF_KEY]: [id, kind] }`.
 * A plain object of the caller's that has a field of that name travels
 * wrapped, `{ [REF_KEY]: theObject }` (an object, never an array), so it is
 * never taken for a reference; the client unwraps it when it comes back.
 */
export const REF_KEY = "__mp_manager_ref__";

/** A request on the wire. */
export type Request = [number, number, unknown?, unknown?, unknown?];
/** A reply on the wire. */
export type Reply = [number, boolean, unknown];

// Control words of a local channel's SharedArrayBuffer.
/** Replies posted to the client so far (the client sleeps on it). */
export const RESP = 0;
/** Set by the server when it dropped the channel or stopped. */
export const CLOSED = 1;
/** The ident of the process holding the client end. */
export const HOLDER = 2;
/** Fast lane: requests the client wrote into the request area. */
export const FREQ = 3;
/** Fast lane: the last request the server answered (in the reply area). */
export const FRESP = 4;
/** Fast lane: bytes of the request in the request area. */
export const FREQ_LEN = 5;
/** Fast lane: bytes of the reply in the reply area; -1: it went by the port. */
export const FRESP_LEN = 6;
/** Number of control words (a cache line of them). */
export const WORDS = 16;
/** Bytes of each fast-lane area. */
export const FAST_BYTES = 8 * 1024;
/** Where the request area starts (bytes). */
export const REQ_AT = WORDS * 4;
/** Where the reply area starts (bytes). */
export const REPLY_AT = REQ_AT + FAST_BYTES;
/** Size of a local channel's SharedArrayBuffer. */
export const CHANNEL_BYTES = REPLY_AT + FAST_BYTES;

/** The server's doorbell: bumped by clients after any request. */
export const DOOR = 0;
/**
 * Bumped (before {@linkcode DOOR}) by a client that sent a request by its
 * port: the server never listens on its clients' ports (it takes their
 * messages with `receiveMessageOnPort` when this moves), so the thread that
 * serves the fast lane serves port requests too, without an event-loop hop.
 */
export const PORTS = 1;

/** Rings the doorbell `door` for a request sent by a port. */
export function ringForPort(door: Int32Array): void {
  Atomics.add(door, PORTS, 1);
  Atomics.add(door, DOOR, 1);
  Atomics.notify(door, DOOR);
}
