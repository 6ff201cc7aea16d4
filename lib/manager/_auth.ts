/**
 * Mutual authentication of a manager connection, as Python's
 * `multiprocessing.connection` does it (`deliver_challenge` /
 * `answer_challenge`): one side sends a random challenge, the other answers
 * with HMAC(authkey, challenge), the first compares in constant time and
 * replies WELCOME or FAILURE; then the roles swap. HMAC-SHA256 by Web Crypto.
 * The key itself never crosses the wire.
 *
 * @module
 */

import { AuthenticationError, EOFError } from "../errors.ts";
import {
  type ByteStream,
  type FrameReader,
  writeFrame,
} from "../wire/_frames.ts";

const enc = new TextEncoder();
const CHALLENGE = enc.encode("#CHALLENGE#");
const WELCOME = enc.encode("#WELCOME#");
const FAILURE = enc.encode("#FAILURE#");
const DIGEST = enc.encode("{sha256}");
const MESSAGE_LENGTH = 40;
/** The longest frame allowed while authenticating. */
const AUTH_FRAME = 256;

/** The shortest authkey accepted, in bytes. */
export const MIN_AUTHKEY = 16;

/** An authkey as bytes; a string is taken as UTF-8. Throws RangeError for a key shorter than {@linkcode MIN_AUTHKEY}. */
export function authkeyBytes(authkey: unknown, what = "authkey"): Uint8Array {
  let bytes: Uint8Array;
  if (typeof authkey === "string") bytes = enc.encode(authkey);
  else if (authkey instanceof Uint8Array) bytes = authkey.slice();
  else if (authkey instanceof ArrayBuffer) bytes = new Uint8Array(authkey);
  else {
    throw new TypeError(
      `${what} must be a string or a Uint8Array, got ${
        authkey === null ? "null" : typeof authkey
      }; pass e.g. authkey: "a-secret-of-16-bytes+" (Python's authkey=b"...")`,
    );
  }
  if (bytes.length < MIN_AUTHKEY) {
    throw new RangeError(
      `${what} is ${bytes.length} bytes; it must be at least ${MIN_AUTHKEY}: ` +
        `a shorter one can be guessed by trying. Make one with ` +
        `crypto.getRandomValues(new Uint8Array(32)) and share it with the ` +
        `connecting programs, or use a passphrase of ${MIN_AUTHKEY} characters or more`,
    );
  }
  return bytes;
}

/** The HMAC-SHA256 key for `authkey`. */
export function hmacKey(authkey: Uint8Array): Promise<CryptoKey> {
  return crypto.subtle.importKey(
    "raw",
    authkey as Uint8Array<ArrayBuffer>,
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
}

async function sign(key: CryptoKey, message: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(
    await crypto.subtle.sign("HMAC", key, message as Uint8Array<ArrayBuffer>),
  );
}

/** Compares two byte strings in time that depends only on their lengths. */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  let diff = a.length ^ b.length;
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) diff |= (a[i] ?? 0) ^ (b[i] ?? 0);
  return diff === 0;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

function startsWith(a: Uint8Array, prefix: Uint8Array): boolean {
  if (a.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (a[i] !== prefix[i]) return false;
  return true;
}

async function readAuthFrame(reader: FrameReader): Promise<Uint8Array> {
  const max = reader.maxFrame;
  reader.maxFrame = AUTH_FRAME;
  try {
    const frame = await reader.read();
    if (frame === null) {
      throw new EOFError(
        "the other side closed the connection during authentication",
      );
    }
    return frame;
  } finally {
    reader.maxFrame = max;
  }
}

/**
 * Challenges the peer: it must prove it knows the key. Throws
 * `AuthenticationError` (after telling the peer FAILURE) when it does not.
 */
export async function deliverChallenge(
  reader: FrameReader,
  stream: ByteStream,
  key: CryptoKey,
): Promise<void> {
  const message = concat(
    DIGEST,
    crypto.getRandomValues(new Uint8Array(MESSAGE_LENGTH)),
  );
  await writeFrame(stream, concat(CHALLENGE, message));
  const expected = concat(DIGEST, await sign(key, message));
  const response = await readAuthFrame(reader);
  if (constantTimeEqual(response, expected)) {
    await writeFrame(stream, WELCOME);
    return;
  }
  await writeFrame(stream, FAILURE).catch(() => {});
  throw new AuthenticationError(
    "digest received was wrong: the other side does not have the same authkey",
  );
}

/**
 * Answers the peer's challenge, proving this side knows the key. Throws
 * `AuthenticationError` when the peer rejects the answer (a different key)
 * or does not speak the protocol.
 */
export async function answerChallenge(
  reader: FrameReader,
  stream: ByteStream,
  key: CryptoKey,
): Promise<void> {
  const frame = await readAuthFrame(reader);
  if (!startsWith(frame, CHALLENGE)) {
    throw new AuthenticationError(
      "the other side did not send an authentication challenge: is it a manager?",
    );
  }
  const message = frame.subarray(CHALLENGE.length);
  if (!startsWith(message, DIGEST)) {
    throw new AuthenticationError(
      "the other side asked for an unsupported digest (only HMAC-SHA256 is spoken)",
    );
  }
  await writeFrame(stream, concat(DIGEST, await sign(key, message)));
  const response = await readAuthFrame(reader);
  if (!constantTimeEqual(response, WELCOME)) {
    throw new AuthenticationError(
      "digest sent was rejected: wrong authkey for this manager",
    );
  }
}

/**
 * Slows down the addresses whose handshakes failed, so a key cannot be
 * guessed by trying fast: after the n-th failure in a row from an address,
 * its next handshake waits `baseMs * 2^(n-1)`, up to `maxMs`. Connections
 * arriving meanwhile wait their turn; one that would wait longer than
 * `refuseMs` is refused at once, so a flood holds no sockets. Remembers at
 * most `capacity` addresses (the least recently failed go first), and
 * forgets an address `forgetMs` after its last turn. A success clears it.
 */
export class Backoff {
  #entries = new Map<string, { failures: number; next: number }>();
  constructor(
    readonly baseMs = 20,
    readonly maxMs = 1000,
    readonly refuseMs = 10_000,
    readonly capacity = 4096,
    readonly forgetMs = 60_000,
  ) {}

  /** Addresses remembered. */
  get size(): number {
    return this.#entries.size;
  }

  /** How long a handshake from `host` must wait first (ms); -1: refuse it now. */
  wait(host: string, now: number = performance.now()): number {
    const e = this.#entries.get(host);
    if (!e) return 0;
    if (now > e.next + this.forgetMs) {
      this.#entries.delete(host);
      return 0;
    }
    const wait = Math.max(0, e.next - now);
    return wait > this.refuseMs ? -1 : wait;
  }

  /** A handshake from `host` failed: its next one waits longer. */
  failed(host: string, now: number = performance.now()): void {
    const e = this.#entries.get(host) ?? { failures: 0, next: now };
    this.#entries.delete(host);
    e.failures++;
    e.next = Math.max(e.next, now) +
      Math.min(this.baseMs * 2 ** (e.failures - 1), this.maxMs);
    if (this.#entries.size >= this.capacity) {
      this.#entries.delete(this.#entries.keys().next().value!);
    }
    this.#entries.set(host, e);
  }

  /** A handshake from `host` succeeded. */
  succeeded(host: string): void {
    this.#entries.delete(host);
  }
}
