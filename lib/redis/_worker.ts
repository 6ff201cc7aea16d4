/**
 * The loop of a Redis pool worker program (`worker.ts`): it reads tasks
 * from the pool's stream as a member of its consumer group, runs them on a
 * local `Pool` (a task that crashes takes a child down, not the worker),
 * heartbeats the tasks it holds, takes over tasks whose worker stopped
 * heartbeating for the visibility timeout, moves a task that keeps ending
 * its workers to the dead letters, and writes results in batches.
 *
 * @module
 */

import { Pool } from "../pool.ts";
import { ProcessError } from "../errors.ts";
import { serializeError } from "../wire/_error.ts";
import { moduleUrl } from "../process/_target.ts";
import {
  bufferCommand,
  decode,
  encode,
  type Link,
  script,
  uniqueId,
} from "./_client.ts";
import { callerKey, deadKey, GROUP, resultsKey, tasksKey } from "./_keys.ts";
import { Links, sleep } from "./queue.ts";
import { runRedisTask } from "./_runner.ts";
import {
  DEAD_MAXLEN,
  FAILED,
  FINISH_BATCH,
  FINISH_LUA,
  type Header,
  OK,
  POISON,
  type Reply,
} from "./_wire.ts";
import { ModuleNotAllowedError } from "./errors.ts";
import type { Buffer } from "node:buffer";

const RUNNER = new URL("./_runner.ts", import.meta.url).href;

/** What a worker program is told on its command line. */
export interface WorkerOptions {
  url: string;
  pool: string;
  processes: number;
  /** URL prefixes of the modules it may import (at least one). */
  allowModules: string[];
  /** Ms after which a task held by a silent worker is taken over. */
  visibilityTimeout: number;
  name?: string;
  connectTimeout: number;
  /** Where progress lines go (default: stdout). */
  log?: (line: string) => void;
}

type Entry = [id: Buffer, fields: Buffer[]];

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

function diedInTask(e: unknown): boolean {
  // The local pool's words for a child that ended in the task.
  return e instanceof ProcessError && / died \(exit code /.test(e.message);
}

/** A running worker; `stop()` ends it after its tasks in hand. */
export class RedisWorker {
  #o: WorkerOptions;
  #me: string;
  #links: Links;
  #main!: Link;
  #pool!: Pool;
  #tasksKey: string;
  #allow: string[];
  /** Tasks running here (heartbeated), by entry id. */
  #active = new Map<string, Header>();
  #headers = new Map<string, Header>();
  /** Results written but not yet acknowledged (heartbeated too). */
  #finishing = new Map<
    string,
    { caller: string; ttl: number; reply: Reply }
  >();
  #stopped = false;
  #flushQueued = false;
  #flushing: Promise<void> | null = null;
  #window: number;
  #done: number[] = [];
  #slot: (() => void) | null = null;
  #beat: ReturnType<typeof setInterval> | undefined;
  #stopping = false;
  #loop: Promise<void> | undefined;

  constructor(o: WorkerOptions) {
    this.#o = o;
    this.#me = o.name ?? uniqueId();
    this.#allow = o.allowModules.map(allowPrefix);
    this.#links = new Links({
      url: o.url,
      name: o.pool,
      maxsize: 0,
      connectTimeout: o.connectTimeout,
    });
    this.#tasksKey = tasksKey(o.pool);
    this.#window = o.processes * 2;
  }

  /** The worker's consumer name. */
  get name(): string {
    return this.#me;
  }

  /** Connects (named errors: unreachable, wrong password), then runs until stop(). */
  async start(): Promise<void> {
    this.#main = await this.#links.main();
    await this.#main.run(async (r) => {
      try {
        await r.xgroup("CREATE", this.#tasksKey, GROUP, "0", "MKSTREAM");
      } catch (e) {
        if (!String(e).includes("BUSYGROUP")) throw e;
      }
    });
    this.#pool = new Pool({ processes: this.#o.processes, module: RUNNER });
    this.#beat = setInterval(
      () => this.#heartbeat(),
      Math.max(Math.floor(this.#o.visibilityTimeout / 3), 1),
    );
    (this.#o.log ?? console.log)(
      `worker ${this.#me}: ready (pool ${this.#o.pool}, ${this.#o.processes} processes)`,
    );
    this.#loop = this.#run();
    await this.#loop;
  }

  async #run(): Promise<void> {
    const every = Math.max(Math.floor(this.#o.visibilityTimeout / 2), 50);
    let nextReclaim = 0;
    while (!this.#stopping) {
      try {
        const now = performance.now();
        if (now >= nextReclaim) {
          await this.#reclaim();
          nextReclaim = performance.now() + every;
        }
        const room = this.#window - this.#active.size;
        const until = Math.max(1, Math.ceil(nextReclaim - performance.now()));
        if (room <= 0) {
          await new Promise<void>((r) => {
            const t = setTimeout(r, until);
            this.#slot = () => {
              clearTimeout(t);
              r();
            };
          });
          this.#slot = null;
          continue;
        }
        const read = await this.#links.blocking((b) =>
          b.run((r) =>
            r.xreadgroupBuffer(
              "GROUP",
              GROUP,
              this.#me,
              "COUNT",
              room,
              "BLOCK",
              Math.min(until, 1000),
              "STREAMS",
              this.#tasksKey,
              ">",
            )
          )
        ) as [Buffer, Entry[]][] | null;
        for (const [id, fields] of read?.[0]?.[1] ?? []) {
          if (fields) this.#start(id.toString(), fields);
        }
      } catch (e) {
        if (this.#stopping) break;
        console.error(
          `worker ${this.#me}: ${
            e instanceof Error ? e.message : e
          }; trying again in 1 s`,
        );
        await sleep(1000);
      }
    }
  }

  /** The header in `h`, decoded once per caller, function and kind. */
  #header(h: Buffer): Header {
    const key = h.toString("latin1");
    let header = this.#headers.get(key);
    if (!header) {
      header = decode(h) as Header;
      if (this.#headers.size >= 1024) this.#headers.clear();
      this.#headers.set(key, header);
    }
    return header;
  }

  /** Runs the task in entry `id` (fields h, s, p). */
  #start(id: string, fields: Buffer[]): void {
    let header: Header;
    let seq: number;
    try {
      header = this.#header(fields[1]);
      seq = Number(fields[3].toString());
    } catch (e) {
      console.error(`worker ${this.#me}: dropped corrupt task ${id}: ${e}`);
      this.#main.run((r) =>
        r.multi().xack(this.#tasksKey, GROUP, id).xdel(this.#tasksKey, id)
          .exec()
      ).catch(() => {});
      return;
    }
    const p = fields[5];
    const [, module, name, kind] = header;
    if (!isAllowed(module, this.#allow)) {
      this.#finish(
        id,
        header,
        [
          seq,
          FAILED,
          serializeError(new ModuleNotAllowedError(module, this.#allow)),
        ],
      );
      return;
    }
    this.#active.set(id, header);
    // A private copy: the reply's bytes may sit in a big socket buffer.
    const payload = new Uint8Array(p.length);
    payload.set(p);
    this.#pool.applyAsync(runRedisTask, [module, name, kind, payload]).get()
      .then(
        (bytes) => this.#finish(id, header, [seq, OK, bytes]),
        (e) => {
          if (diedInTask(e)) {
            // Left pending without heartbeats: delivered again (or, after
            // maxTries, moved to the dead letters) after the visibility timeout.
            this.#active.delete(id);
            console.error(
              `worker ${this.#me}: task ${id} (${name}) ended its process; it goes back after the visibility timeout`,
            );
            this.#freed();
          } else {
            this.#finish(id, header, [seq, FAILED, serializeError(e)]);
          }
        },
      );
  }

  #finish(id: string, header: Header, reply: Reply): void {
    this.#active.delete(id);
    this.#finishing.set(id, { caller: header[0], ttl: header[5], reply });
    this.#done.push(performance.now());
    this.#freed();
    if (!this.#flushQueued) {
      this.#flushQueued = true;
      queueMicrotask(() => {
        this.#flushQueued = false;
        this.#flush();
      });
    }
  }

  /**
   * Sizes the window to hold ~20 ms of work at the rate tasks finish (a
   * read costs a round trip; slow tasks keep it small, so that other
   * workers get their share).
   */
  #freed(): void {
    const now = performance.now();
    const done = this.#done;
    let k = 0;
    while (k < done.length && done[k] < now - 100) k++;
    if (k) done.splice(0, k);
    const rate = done.length * 10; // per second
    this.#window = Math.max(
      this.#o.processes * 2,
      Math.min(1024, Math.ceil(rate * 0.02)),
    );
    const s = this.#slot;
    this.#slot = null;
    s?.();
  }

  #flush(): void {
    if (this.#flushing) {
      // One write at a time; what came meanwhile goes with the next.
      this.#flushing.then(() => this.#flush());
      return;
    }
    if (this.#finishing.size === 0) return;
    const entries = [...this.#finishing.entries()].slice(0, FINISH_BATCH);
    // One result item per caller: the replies of its tasks.
    const byCaller = new Map<string, { ttl: number; replies: Reply[] }>();
    for (const [, f] of entries) {
      let c = byCaller.get(f.caller);
      if (!c) byCaller.set(f.caller, c = { ttl: f.ttl, replies: [] });
      c.replies.push(f.reply);
    }
    const args: (string | number | Buffer)[] = [
      this.#tasksKey,
      GROUP,
      entries.length,
      ...entries.map(([id]) => id),
    ];
    for (const [caller, c] of byCaller) {
      args.push(
        resultsKey(this.#o.pool, caller),
        callerKey(this.#o.pool, caller),
        c.ttl,
        encode(c.replies),
      );
    }
    this.#flushing = (async () => {
      for (let pause = 100;; pause = Math.min(pause * 2, 2000)) {
        try {
          await this.#main.run((r) =>
            script(r, "mpPoolFinish", FINISH_LUA, 1, args)
          );
          break;
        } catch (e) {
          if (this.#stopped) return;
          console.error(
            `worker ${this.#me}: could not write ${entries.length} results (${e}); trying again`,
          );
          await sleep(pause);
        }
      }
      for (const [id, f] of entries) {
        if (this.#finishing.get(id) === f) this.#finishing.delete(id);
      }
    })().finally(() => {
      this.#flushing = null;
      if (this.#finishing.size > 0) this.#flush();
    });
  }

  #heartbeat(): void {
    const ids = [...this.#active.keys(), ...this.#finishing.keys()];
    for (let i = 0; i < ids.length; i += 1000) {
      const part = ids.slice(i, i + 1000);
      this.#main.run((r) =>
        r.xclaim(this.#tasksKey, GROUP, this.#me, 0, ...part, "JUSTID")
      ).catch(() => {
        // Redis away for a moment: the next beat tries again.
      });
    }
  }

  /** Takes over tasks idle past the visibility timeout (their worker died). */
  async #reclaim(): Promise<void> {
    const vis = this.#o.visibilityTimeout;
    const idle = await this.#main.run((r) =>
      r.xpending(this.#tasksKey, GROUP, "IDLE", vis, "-", "+", 100)
    ) as [string, string, number, number][];
    for (const [id, , , deliveries] of idle) {
      if (this.#active.has(id) || this.#finishing.has(id)) continue;
      const got = await this.#main.run((r) =>
        bufferCommand(r, "xclaim", this.#tasksKey, GROUP, this.#me, vis, id)
      ) as Entry[];
      const entry = got.find((e) => e && e[1]);
      if (!entry) continue; // another worker took it, or it was deleted
      const [, fields] = entry;
      let header: Header;
      try {
        header = this.#header(fields[1]);
      } catch {
        this.#start(id, fields); // drops it, saying why
        continue;
      }
      const runs = deliveries; // each delivery so far ended its worker
      if (runs >= header[4]) {
        const deadId = await this.#main.run((r) =>
          r.xadd(
            deadKey(this.#o.pool),
            "MAXLEN",
            "~",
            DEAD_MAXLEN,
            "*",
            "h",
            fields[1],
            "s",
            fields[3],
            "p",
            fields[5],
            "tries",
            runs,
            "worker",
            this.#me,
          )
        ) as string;
        const seq = Number(fields[3].toString());
        this.#finish(id, header, [seq, POISON, [runs, deadId]]);
      } else {
        this.#start(id, fields);
      }
    }
  }

  /** Stops taking tasks, lets the ones in hand finish (up to `graceMs`), then ends. */
  async stop(graceMs = 30_000): Promise<void> {
    this.#stopping = true;
    this.#links.closeBlocking();
    const s = this.#slot;
    this.#slot = null;
    s?.();
    await this.#loop?.catch(() => {});
    const until = performance.now() + graceMs;
    while (
      (this.#active.size > 0 || this.#finishing.size > 0) &&
      performance.now() < until
    ) {
      await sleep(20);
    }
    clearInterval(this.#beat);
    this.#stopped = true;
    this.#pool?.terminate();
    await this.#pool?.join();
    this.#links.close();
  }
}
