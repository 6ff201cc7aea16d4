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

import { AuthenticationError, EOFError } from "./errors.ts";
import { type ByteStream, type FrameReader, writeFrame } from "./_frames.ts";

const enc = new TextEncoder();
const CHALLENGE = enc.encode("#CHALLENGE#");
const WELCOME = enc.encode("#WELCOME#");
const FAILURE = enc.encode("#FAILURE#");
const DIGEST = enc.encode("{sha256}");
const MESSAGE_LENGTH = 40;
/** The longest frame allowed while authenticating. */
const AUTH_FRAME = 256;

/** An authkey as bytes; a string is taken as UTF-8. */
export function authkeyBytes(authkey: unknown, what = "authkey"): Uint8Array {
  let bytes: Uint8Array;
  if (typeof authkey === "string") bytes = enc.encode(authkey);
  else if (authkey instanceof Uint8Array) bytes = authkey.slice();
  else if (authkey instanceof ArrayBuffer) bytes = new Uint8Array(authkey);
  else {
    throw new TypeError(
      `${what} must be a string or a Uint8Array, got ${
        authkey === null ? "null" : typeof authkey
      }; pass e.g. authkey: "secret" (Python's authkey=b"secret")`,
    );
  }
  if (bytes.length === 0) {
    throw new TypeError(
      `${what} must not be empty: anyone could connect; pass a secret shared by both programs`,
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
