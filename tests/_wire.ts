// Frames as a TCP client of a manager writes and reads them, for tests that
// speak the protocol by hand.
import { decoder, encoder } from "../lib/manager/_wire.ts";

/** A length-prefixed frame holding `msg` in the codec's encoding. */
export function frameOf(msg: unknown): Uint8Array {
  const n = encoder.encode(msg);
  const out = new Uint8Array(4 + n);
  new DataView(out.buffer).setUint32(0, n);
  encoder.copyTo(out, 4, 0, n);
  return out;
}

/** Decodes a frame's payload. */
export function unframe(payload: Uint8Array): unknown {
  return decoder.decode(payload, 0, payload.length);
}
