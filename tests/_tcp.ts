// Raw TCP clients of a manager, for protocol-level tests.
import { FrameReader } from "../lib/wire/_frames.ts";
import {
  answerChallenge,
  deliverChallenge,
  hmacKey,
} from "../lib/manager/_auth.ts";

/** Connects raw to the manager on `port` and authenticates with `key`. */
export async function rawAuthed(
  port: number,
  key: string,
): Promise<{ conn: Deno.Conn; reader: FrameReader }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const reader = new FrameReader(conn);
  const k = await hmacKey(new TextEncoder().encode(key));
  await answerChallenge(reader, conn, k);
  await deliverChallenge(reader, conn, k);
  return { conn, reader };
}
