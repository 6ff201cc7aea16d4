/**
 * What each child of a Redis pool worker program runs: one long task that
 * reads the pool's tasks from the stream under a consumer name of its own,
 * runs them and writes their results itself (no hop through the worker
 * program: every wake of an idle event loop in another thread costs 100s
 * of us). The worker program heartbeats the child's pending tasks (a child
 * busy in a long task cannot), and when a child dies it finds the task
 * that was running in shared memory ({@linkcode ServeState}).
 *
 * @module
 */

import type { Buffer } from "node:buffer";
import { serializeError } from "../wire/_error.ts";
import { moduleUrl } from "../process/_target.ts";
import {
  bufferCommand,
  decode,
  encode,
  Link,
  script,
  sleep,
} from "./_client.ts";
import { callerKey, GROUP, resultsKey, tasksKey } from "./_keys.ts";
import { runRedisTask } from "./_runner.ts";
import { FAILED, FINISH_LUA, type Header, OK, type Reply } from "./_wire.ts";
import { ModuleNotAllowedError } from "./errors.ts";

/** What a child is told: where to read, as whom, what it may import. */
export interface ServeConfig {
  url: string;
  pool: string;
  /** The child's consumer name in the group (the same for its replacements). */
  consumer: string;
  /** The child's slot in the shared {@linkcode ServeState}. */
  slot: number;
  /** Normalized --allow-module prefixes. */
  allow: string[];
  connectTimeout: number;
}

type Entry = [id: Buffer, fields: Buffer[] | null];

/** Most tasks one read takes. */
const MAX_BATCH = 256;
/** A read takes about this much work (ms), so other workers get their share. */
const BATCH_MS = 20;
/** Longest block of a read (ms) before the flags are looked at again. */
const BLOCK_MS = 2000;

/** Normalizes an --allow-module prefix (a URL, or a path made a file URL). */
export function allowPrefix(prefix: string): string {
  const url = moduleUrl(prefix);
  return prefix.endsWith("/") && !url.endsWith("/") ? `${url}/` : url;
}

/** True when `module` is under one of `prefixes` (after URL normalization). */
export function isAllowed(module: string, prefixes: string[]): boolean {
  let href: string;
  try {
    href = new URL(module).href;
  } catch {
    return false;
  }
  return prefixes.some((p) => href.startsWith(p));
}

/** The CLIENT SETNAME of a child's reading connection. */
export function readerName(consumer: string): string {
  return `${consumer}:read`;
}

const NUDGE = 0;
const STOP = 1;

/**
 * Shared memory between the worker program and its children, per slot: the
 * entry id of the task running (two float64: its ms and sequence parts, 0
 * when none) and two flags: "read your pending entries" (tasks handed over)
 * and "stop reading".
 */
export class ServeState {
  readonly buffer: SharedArrayBuffer;
  #running: Float64Array;
  #flags: Int32Array;

  constructor(slots: number | SharedArrayBuffer) {
    this.buffer = typeof slots === "number"
      ? new SharedArrayBuffer(slots * 24)
      : slots;
    const n = this.buffer.byteLength / 24;
    this.#running = new Float64Array(this.buffer, 0, n * 2);
    this.#flags = new Int32Array(this.buffer, n * 16, n * 2);
  }

  setRunning(slot: number, id: string): void {
    const dash = id.indexOf("-");
    this.#running[slot * 2 + 1] = Number(id.slice(dash + 1));
    this.#running[slot * 2] = Number(id.slice(0, dash));
  }

  clearRunning(slot: number): void {
    this.#running[slot * 2] = 0;
  }

  /** The entry id that was running in `slot` (its child died), and clears it. */
  takeRunning(slot: number): string | null {
    const ms = this.#running[slot * 2];
    if (ms === 0) return null;
    this.#running[slot * 2] = 0;
    return `${ms}-${this.#running[slot * 2 + 1]}`;
  }

  /** True while child `slot` runs a task. */
  isRunning(slot: number): boolean {
    return this.#running[slot * 2] !== 0;
  }

  nudge(slot: number): void {
    Atomics.store(this.#flags, slot * 2 + NUDGE, 1);
  }

  takeNudge(slot: number): boolean {
    return Atomics.exchange(this.#flags, slot * 2 + NUDGE, 0) === 1;
  }

  stop(slot: number): void {
    Atomics.store(this.#flags, slot * 2 + STOP, 1);
  }

  stopping(slot: number): boolean {
    return Atomics.load(this.#flags, slot * 2 + STOP) === 1;
  }
}

let state: ServeState | undefined;

/** The local Pool's initializer: takes the shared state (it crosses as shared memory). */
export function attachServeState(buffer: SharedArrayBuffer): void {
  state = new ServeState(buffer);
}

/**
 * Reads, runs and finishes the pool's tasks until the worker program says
 * stop; returns how many it ran. Tasks run one at a time, in the order read.
 */
export async function serveRedisTasks(c: ServeConfig): Promise<number> {
  const st = state;
  if (!st) throw new Error("internal: serveRedisTasks without its state");
  const key = tasksKey(c.pool);
  const read = await Link.open(
    c.url,
    c.connectTimeout,
    readerName(c.consumer),
  );
  let write: Link | undefined;
  try {
    write = await Link.open(c.url, c.connectTimeout);
    const headers = new Map<string, Header>();
    const header = (h: Buffer): Header => {
      const k = h.toString("latin1");
      let v = headers.get(k);
      if (!v) {
        v = decode(h) as Header;
        if (headers.size >= 1024) headers.clear();
        headers.set(k, v);
      }
      return v;
    };
    // A replacement first reads what its predecessor held.
    let history = true;
    let count = 1;
    let perTask = 1; // ms, a moving average
    let ran = 0;
    // The last batch's write, in flight while the next read goes out.
    let writing: Promise<void> = Promise.resolve();
    while (!st.stopping(c.slot)) {
      if (st.takeNudge(c.slot)) history = true;
      // Pending entries are then only the ones handed over.
      if (history) await writing;
      let entries: Entry[];
      try {
        const got = await read.run((r) =>
          history
            ? bufferCommand(
              r,
              "xreadgroup",
              "GROUP",
              GROUP,
              c.consumer,
              "COUNT",
              MAX_BATCH,
              "STREAMS",
              key,
              "0",
            ) // deno-fmt-ignore
            : bufferCommand(r, "xreadgroup", "GROUP", GROUP, c.consumer, "COUNT", count, "BLOCK", BLOCK_MS, "STREAMS", key, ">") // deno-fmt-ignore
        ) as [Buffer, Entry[]][] | null;
        entries = got?.[0]?.[1] ?? [];
      } catch (e) {
        if (st.stopping(c.slot)) break;
        console.error(
          `worker ${c.consumer}: ${
            e instanceof Error ? e.message : e
          }; trying again in 1 s`,
        );
        await sleep(1000);
        continue;
      }
      if (history) history = entries.length === MAX_BATCH;
      else {
        const cap = Math.max(
          1,
          Math.min(MAX_BATCH, Math.floor(BATCH_MS / perTask)),
        );
        count = entries.length === count
          ? Math.min(count * 2, cap)
          : Math.max(1, Math.min(entries.length, cap));
      }
      if (entries.length === 0) continue;
      const t0 = performance.now();
      const ids: string[] = [];
      const byCaller = new Map<string, { ttl: number; replies: Reply[] }>();
      for (const [idb, fields] of entries) {
        const id = idb.toString();
        ids.push(id);
        if (!fields) continue; // deleted while pending: acknowledged below
        let h: Header;
        let seq: number;
        try {
          h = header(fields[1]);
          seq = Number(fields[3].toString());
        } catch (e) {
          console.error(
            `worker ${c.consumer}: dropped corrupt task ${id}: ${e}`,
          );
          continue;
        }
        const [caller, module, name, kind, , ttl] = h;
        let reply: Reply;
        if (!isAllowed(module, c.allow)) {
          reply = [
            seq,
            FAILED,
            serializeError(new ModuleNotAllowedError(module, c.allow)),
          ];
        } else {
          st.setRunning(c.slot, id);
          try {
            reply = [
              seq,
              OK,
              await runRedisTask(module, name, kind, fields[5]),
            ];
          } catch (e) {
            reply = [seq, FAILED, serializeError(e)];
          }
          st.clearRunning(c.slot);
          ran++;
        }
        let r = byCaller.get(caller);
        if (!r) byCaller.set(caller, r = { ttl, replies: [] });
        r.replies.push(reply);
      }
      perTask = perTask * 0.5 +
        0.5 * Math.max((performance.now() - t0) / entries.length, 1e-3);
      await writing;
      writing = finish(write!, c, key, ids, byCaller);
    }
    await writing;
    return ran;
  } finally {
    read.close();
    write?.close();
  }
}

/** Writes the results and acknowledges the entries (one script), until it works. */
async function finish(
  write: Link,
  c: ServeConfig,
  key: string,
  ids: string[],
  byCaller: Map<string, { ttl: number; replies: Reply[] }>,
): Promise<void> {
  const args: (string | number | Buffer)[] = [key, GROUP, ids.length, ...ids];
  for (const [caller, r] of byCaller) {
    args.push(
      resultsKey(c.pool, caller),
      callerKey(c.pool, caller),
      r.ttl,
      encode(r.replies),
    );
  }
  for (let pause = 100;; pause = Math.min(pause * 2, 2000)) {
    try {
      await write.run((r) => script(r, "mpPoolFinish", FINISH_LUA, 1, args));
      return;
    } catch (e) {
      console.error(
        `worker ${c.consumer}: could not write ${ids.length} results (${e}); trying again`,
      );
      await sleep(pause);
    }
  }
}
