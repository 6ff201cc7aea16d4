/**
 * The loop of a Redis pool worker program (`worker.ts`). Each child of its
 * local `Pool` runs one long task ({@linkcode serveRedisTasks}): it reads
 * the pool's tasks under a consumer name of its own, runs them and writes
 * their results (a task that crashes takes a child down, not the worker).
 * The program heartbeats the tasks its children hold, gives a dead child's
 * tasks to its replacement (only the task that was running counts as a
 * try), takes over tasks whose worker stopped heartbeating for the
 * visibility timeout, and moves a task that keeps ending its workers to
 * the dead letters.
 *
 * @module
 */

import { Pool } from "../pool.ts";
import { ProcessError } from "../errors.ts";
import {
  bufferCommand,
  decode,
  encode,
  type Link,
  script,
  sleep,
  uniqueId,
} from "./_client.ts";
import { callerKey, deadKey, GROUP, resultsKey, tasksKey } from "./_keys.ts";
import { Links } from "./queue.ts";
import {
  allowPrefix,
  attachServeState,
  readerName,
  type ServeConfig,
  serveRedisTasks,
  ServeState,
} from "./_serve.ts";
import {
  DEAD_MAXLEN,
  FINISH_LUA,
  type Header,
  POISON,
  type Reply,
} from "./_wire.ts";
import type { Buffer } from "node:buffer";

export { allowPrefix, isAllowed } from "./_serve.ts";

const SERVE = new URL("./_serve.ts", import.meta.url).href;

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

type Entry = [id: Buffer, fields: Buffer[] | null];

/**
 * KEYS[1] the task stream; ARGV[1] the group, then consumer names: resets
 * the idle time of every entry they hold (XCLAIM JUSTID does not count a
 * delivery). Atomic, so it never revives an entry acknowledged meanwhile.
 */
const HEARTBEAT_LUA = `
for c = 2, #ARGV do
  local held = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 10000, ARGV[c])
  for i = 1, #held, 500 do
    local ids = {}
    for j = i, math.min(i + 499, #held) do ids[#ids + 1] = held[j][1] end
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[c], 0, 'JUSTID', unpack(ids))
  end
end
return 0`;

/**
 * KEYS[1] the task stream; ARGV[1] the group, then consumer names: removes
 * the ones that hold nothing (a stopped worker's), so the group does not
 * collect a consumer per child per start.
 */
const FORGET_LUA = `
for c = 2, #ARGV do
  if #redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[c]) == 0 then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[c])
  end
end
return 0`;

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
  #state: ServeState;
  #tasksKey: string;
  #allow: string[];
  #consumers: string[];
  #serving: Promise<void>[] = [];
  #beat: ReturnType<typeof setInterval> | undefined;
  #reclaimTimer: ReturnType<typeof setTimeout> | undefined;
  #stopping = false;
  #ended!: Promise<void>;
  #end!: () => void;
  #next = 0;

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
    this.#state = new ServeState(o.processes);
    this.#consumers = Array.from(
      { length: o.processes },
      (_, i) => `${this.#me}/${i}`,
    );
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
    this.#ended = new Promise((r) => this.#end = r);
    this.#pool = new Pool({
      processes: this.#o.processes,
      module: SERVE,
      initializer: attachServeState,
      initargs: [this.#state.buffer],
    });
    this.#serving = this.#consumers.map((_, slot) => this.#serve(slot));
    this.#beat = setInterval(
      () => this.#heartbeat(),
      Math.max(Math.floor(this.#o.visibilityTimeout / 3), 1),
    );
    (this.#o.log ?? console.log)(
      `worker ${this.#me}: ready (pool ${this.#o.pool}, ${this.#o.processes} processes)`,
    );
    this.#reclaimLoop();
    await this.#ended;
  }

  /** Keeps a serving task running in child `slot` (again after the child dies). */
  async #serve(slot: number): Promise<void> {
    const config: ServeConfig = {
      url: this.#o.url,
      pool: this.#o.pool,
      consumer: this.#consumers[slot],
      slot,
      allow: this.#allow,
      connectTimeout: this.#o.connectTimeout,
    };
    while (!this.#stopping) {
      try {
        await this.#pool.applyAsync(serveRedisTasks, [config]).get();
        return; // it was told to stop
      } catch (e) {
        if (this.#stopping && !diedInTask(e)) return;
        if (diedInTask(e)) {
          await this.#childDied(slot);
        } else {
          console.error(
            `worker ${config.consumer}: ${
              e instanceof Error ? `${e.name}: ${e.message}` : e
            }; trying again in 1 s`,
          );
          await sleep(1000);
        }
      }
    }
  }

  /**
   * Child `slot` died: the task it was running counts as a try (moved to the
   * dead letters after maxTries); the others it held were not started, so
   * their read is not counted. Its replacement reads them again.
   */
  async #childDied(slot: number): Promise<void> {
    const running = this.#state.takeRunning(slot);
    const consumer = this.#consumers[slot];
    for (let pause = 100;; pause = Math.min(pause * 2, 2000)) {
      try {
        const held = await this.#main.run((r) =>
          r.xpending(this.#tasksKey, GROUP, "-", "+", 10000, consumer)
        ) as [string, string, number, number][];
        for (const [id, , , deliveries] of held) {
          if (id === running) {
            const fields = await this.#fields(id);
            if (!fields) continue;
            const header = decode(fields[1]) as Header;
            console.error(
              `worker ${this.#me}: task ${id} (${
                header[2]
              }) ended its process (try ${deliveries} of ${header[4]})`,
            );
            if (deliveries >= header[4]) {
              await this.#poison(id, fields, header, deliveries);
            }
          } else {
            await this.#main.run((r) =>
              r.xclaim(
                this.#tasksKey,
                GROUP,
                consumer,
                0,
                id,
                "RETRYCOUNT",
                Math.max(deliveries - 1, 0),
                "JUSTID",
              )
            );
          }
        }
        return;
      } catch (e) {
        if (this.#stopping) return;
        console.error(
          `worker ${this.#me}: could not look at the tasks of a dead child (${e}); trying again`,
        );
        await sleep(pause);
      }
    }
  }

  /** The fields of entry `id`, or null when it was deleted. */
  async #fields(id: string): Promise<Buffer[] | null> {
    const got = await this.#main.run((r) =>
      bufferCommand(r, "xrange", this.#tasksKey, id, id)
    ) as Entry[];
    return got[0]?.[1] ?? null;
  }

  /** Moves entry `id` to the dead letters and tells its caller. */
  async #poison(
    id: string,
    fields: Buffer[],
    header: Header,
    tries: number,
  ): Promise<void> {
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
        tries,
        "worker",
        this.#me,
      )
    ) as string;
    const reply: Reply = [Number(fields[3].toString()), POISON, [
      tries,
      deadId,
    ]];
    const [caller, , , , , ttl] = header;
    await this.#main.run((r) =>
      script(r, "mpPoolFinish", FINISH_LUA, 1, [
        this.#tasksKey,
        GROUP,
        1,
        id,
        resultsKey(this.#o.pool, caller),
        callerKey(this.#o.pool, caller),
        ttl,
        encode([reply]),
      ])
    );
  }

  #heartbeat(): void {
    this.#main.run((r) =>
      script(r, "mpPoolBeat", HEARTBEAT_LUA, 1, [
        this.#tasksKey,
        GROUP,
        ...this.#consumers,
      ])
    ).catch(() => {
      // Redis away for a moment: the next beat tries again.
    });
  }

  #reclaimLoop(): void {
    const every = Math.max(Math.floor(this.#o.visibilityTimeout / 2), 50);
    const go = async () => {
      if (this.#stopping) return;
      try {
        await this.#reclaim();
      } catch (e) {
        if (this.#stopping) return;
        console.error(
          `worker ${this.#me}: ${
            e instanceof Error ? e.message : e
          }; trying again`,
        );
      }
      if (!this.#stopping) this.#reclaimTimer = setTimeout(go, every);
    };
    go();
  }

  /** Takes over tasks idle past the visibility timeout (their worker died). */
  async #reclaim(): Promise<void> {
    const vis = this.#o.visibilityTimeout;
    const idle = await this.#main.run((r) =>
      r.xpending(this.#tasksKey, GROUP, "IDLE", vis, "-", "+", 100)
    ) as [string, string, number, number][];
    const nudged = new Set<number>();
    for (const [id, owner, , deliveries] of idle) {
      if (this.#stopping) break;
      if (this.#consumers.includes(owner)) continue; // heartbeated
      // Ours now (JUSTID: not counted), unless another worker was first.
      const got = await this.#main.run((r) =>
        r.xclaim(this.#tasksKey, GROUP, this.#me, vis, id, "JUSTID")
      ) as string[];
      if (got.length === 0) continue;
      const fields = await this.#fields(id);
      let header: Header | undefined;
      try {
        if (fields) header = decode(fields[1]) as Header;
      } catch {
        // corrupt: dropped below
      }
      if (!fields || !header) {
        console.error(`worker ${this.#me}: dropped corrupt task ${id}`);
        await this.#main.run((r) =>
          r.multi().xack(this.#tasksKey, GROUP, id).xdel(this.#tasksKey, id)
            .exec()
        );
        continue;
      }
      // Each delivery so far ended its worker.
      if (deliveries >= header[4]) {
        await this.#poison(id, fields, header, deliveries);
        continue;
      }
      const slot = this.#pickSlot();
      await this.#main.run((r) =>
        r.xclaim(
          this.#tasksKey,
          GROUP,
          this.#consumers[slot],
          0,
          id,
          "JUSTID",
        )
      );
      nudged.add(slot);
    }
    for (const slot of nudged) this.#state.nudge(slot);
    if (nudged.size) await this.#unblock([...nudged]);
  }

  /** A child for a task taken over: an idle one if any, else the next in turn. */
  #pickSlot(): number {
    const n = this.#consumers.length;
    for (let k = 0; k < n; k++) {
      const slot = this.#next++ % n;
      if (!this.#state.isRunning(slot)) return slot;
    }
    return this.#next++ % n;
  }

  /** Ends the blocked reads of children `slots` (they look at their flags). */
  async #unblock(slots: number[]): Promise<void> {
    const list = await this.#main.run((r) =>
      r.call("CLIENT", "LIST", "TYPE", "normal")
    ) as string;
    const names = new Set(slots.map((s) => readerName(this.#consumers[s])));
    for (const line of list.split("\n")) {
      const name = / name=(\S+)/.exec(line)?.[1];
      const id = /^id=(\d+)/.exec(line)?.[1];
      if (name && id && names.has(name)) {
        await this.#main.run((r) => r.call("CLIENT", "UNBLOCK", id));
      }
    }
  }

  /** Stops taking tasks, lets the ones in hand finish (up to `graceMs`), then ends. */
  async stop(graceMs = 30_000): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    clearTimeout(this.#reclaimTimer);
    const slots = this.#consumers.map((_, i) => i);
    for (const slot of slots) this.#state.stop(slot);
    if (this.#pool) {
      await this.#unblock(slots).catch(() => {
        // Redis away: the reads end within their block time.
      });
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        Promise.allSettled(this.#serving),
        new Promise((r) => timer = setTimeout(r, graceMs)),
      ]);
      clearTimeout(timer);
      this.#pool.terminate();
      await this.#pool.join();
    }
    clearInterval(this.#beat);
    await this.#main?.run((r) =>
      script(r, "mpPoolForget", FORGET_LUA, 1, [
        this.#tasksKey,
        GROUP,
        this.#me,
        ...this.#consumers,
      ])
    ).catch(() => {
      // Redis away: the names stay in the group, harmless.
    });
    this.#links.close();
    this.#end?.();
  }
}
