/**
 * Draws a trace (see `_writer.ts`) as one self-contained HTML page: inline
 * SVG, no script, no network. One lane per process and pool worker, tasks as
 * bars, waits shaded, each lane's utilization and the whole pool's, and the
 * longest tasks listed (and outlined in their lanes: the stragglers).
 *
 * However many events the trace has, the page has a bounded number of
 * shapes: tasks closer than a pixel merge into one bar (its shade says how
 * busy that stretch was), so a trace of a million events draws as quickly as
 * one of a thousand.
 *
 * Run as a program: `deno task trace:view out.json` writes `out.html`.
 *
 * @module
 */

/**
 * Options of {@linkcode renderTrace}.
 *
 * @example Write the page somewhere else
 * ```ts
 * import { type RenderTraceOptions } from "@mp/multiprocessing";
 * const options: RenderTraceOptions = { out: "/tmp/run.html", width: 1600 };
 * ```
 */
export interface RenderTraceOptions {
  /** Where the page goes (default: the trace's path with `.html`). */
  out?: string;
  /** Width of the timeline in pixels (default 1000). */
  width?: number;
  /** The page's title (default: the trace's file name). */
  title?: string;
}

interface Ev {
  ph: string;
  name?: string;
  cat?: string;
  ts?: number;
  dur?: number;
  tid?: number;
  args?: Record<string, unknown>;
}

interface Span {
  name: string;
  ts: number;
  dur: number;
  args?: Record<string, unknown>;
}

interface Lane {
  tid: number;
  name: string;
  sort: number;
  tasks: Span[];
  waits: Span[];
  results: Span[];
  instants: Span[];
  life?: Span;
}

/**
 * Reads a trace as written, closed or not: a program killed mid-run leaves
 * no closing `]` and maybe half a last line; both are dropped here.
 */
export function parseTrace(text: string): Ev[] {
  const events = readEvents(text);
  if (
    events.length > 0 && !events.some((e) => typeof e?.ph === "string")
  ) {
    throw new SyntaxError(
      'this is not a trace in Chrome\'s Trace Event Format (its events have no "ph"); ' +
        "write one with MP_TRACE=out.json or startTrace()",
    );
  }
  return events;
}

function readEvents(text: string): Ev[] {
  const whole = tryParse(text);
  if (whole) return whole;
  const cut = text.slice(0, text.lastIndexOf("\n") + 1).trimEnd();
  const closed = tryParse(cut.endsWith("]") ? cut : cut + "]");
  if (closed) return closed;
  // A line cut or garbled in the middle: keep every line that parses.
  const out: Ev[] = [];
  for (let line of text.split("\n")) {
    line = line.trim().replace(/^[[,]/, "").replace(/[,\]]$/, "");
    if (!line.startsWith("{")) continue;
    try {
      out.push(JSON.parse(line));
    } catch {
      // The torn line.
    }
  }
  if (out.length === 0 && text.trim() !== "") {
    throw new SyntaxError(
      "this is not a trace in Chrome's Trace Event Format (a JSON array of events, or { traceEvents: [...] }); " +
        "write one with MP_TRACE=out.json or startTrace()",
    );
  }
  return out;
}

function tryParse(text: string): Ev[] | undefined {
  try {
    const v = JSON.parse(text);
    if (Array.isArray(v)) return v;
    if (v && Array.isArray(v.traceEvents)) return v.traceEvents;
  } catch {
    // Not whole.
  }
  return undefined;
}

function lanesOf(events: Ev[]): Lane[] {
  const lanes = new Map<number, Lane>();
  const lane = (tid: number): Lane => {
    let l = lanes.get(tid);
    if (!l) {
      l = {
        tid,
        name: tid === 0 ? "MainProcess" : `process ${tid}`,
        sort: tid,
        tasks: [],
        waits: [],
        results: [],
        instants: [],
      };
      lanes.set(tid, l);
    }
    return l;
  };
  for (const e of events) {
    if (!e || typeof e !== "object") continue;
    const tid = typeof e.tid === "number" ? e.tid : 0;
    if (e.ph === "M") {
      if (e.name === "thread_name" && typeof e.args?.name === "string") {
        lane(tid).name = e.args.name;
      } else if (
        e.name === "thread_sort_index" &&
        typeof e.args?.sort_index === "number"
      ) lane(tid).sort = e.args.sort_index;
      continue;
    }
    if (typeof e.ts !== "number") continue;
    const span: Span = {
      name: String(e.name ?? "?"),
      ts: e.ts,
      dur: typeof e.dur === "number" ? e.dur : 0,
      args: e.args,
    };
    if (e.ph === "X") {
      const l = lane(tid);
      if (e.cat === "process") l.life = span;
      else if (e.cat === "wait") l.waits.push(span);
      else if (e.cat === "result") l.results.push(span);
      else l.tasks.push(span);
    } else if (e.ph === "i" || e.ph === "I") lane(tid).instants.push(span);
  }
  return [...lanes.values()].sort((a, b) => a.sort - b.sort || a.tid - b.tid);
}

/** Total length of the union of `spans` (sorted by start). */
function busyOf(spans: Span[]): number {
  let busy = 0, end = -Infinity;
  for (const s of spans) {
    const e = s.ts + s.dur;
    if (e <= end) continue;
    busy += e - Math.max(s.ts, end);
    end = e;
  }
  return busy;
}

/** Spans closer than `px` merged: [start, end, busy, count, first name]. */
function bars(
  spans: Span[],
  px: number,
): [number, number, number, number, string][] {
  const out: [number, number, number, number, string][] = [];
  let cur: [number, number, number, number, string] | undefined;
  for (const s of spans) {
    const e = s.ts + s.dur;
    const n = typeof s.args?.count === "number" ? s.args.count : 1;
    if (cur && s.ts <= cur[1] + px) {
      cur[2] += Math.max(0, e - Math.max(s.ts, cur[1]));
      cur[1] = Math.max(cur[1], e);
      cur[3] += n;
    } else {
      cur = [s.ts, e, s.dur, n, s.name];
      out.push(cur);
    }
  }
  return out;
}

function esc(s: string): string {
  return s.replace(
    /[&<>"]/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]!,
  );
}

function hue(name: string): number {
  let h = 0;
  const base = name.replace(/ ×\d+$/, "");
  for (let i = 0; i < base.length; i++) h = (h * 31 + base.charCodeAt(i)) | 0;
  return ((h % 360) + 360) % 360;
}

function ms(us: number): string {
  const v = us / 1000;
  return v >= 100 ? v.toFixed(0) : v >= 1 ? v.toFixed(1) : v.toFixed(3);
}

function pct(x: number): string {
  return `${(100 * x).toFixed(0)}%`;
}

/** The page for trace `events`. */
export function traceHtml(
  events: Ev[],
  title = "trace",
  width = 1000,
): string {
  const lanes = lanesOf(events);
  for (const l of lanes) {
    l.tasks.sort((a, b) => a.ts - b.ts);
    l.waits.sort((a, b) => a.ts - b.ts);
  }
  let t0 = Infinity, t1 = -Infinity;
  for (const l of lanes) {
    for (const group of [l.tasks, l.waits, l.results, l.instants]) {
      for (const s of group) {
        if (s.ts < t0) t0 = s.ts;
        if (s.ts + s.dur > t1) t1 = s.ts + s.dur;
      }
    }
    if (l.life) {
      t0 = Math.min(t0, l.life.ts);
      t1 = Math.max(t1, l.life.ts + l.life.dur);
    }
  }
  if (!(t1 > t0)) {
    t0 = 0;
    t1 = 1;
  }
  const span = t1 - t0;
  const LABEL = 170, ROW = 26, BAR = 18, STAT = 70, OUTLINED = 3;
  const x = (ts: number) => LABEL + ((ts - t0) / span) * width;
  const w = (dur: number) => Math.max(0.5, (dur / span) * width);
  const px = span / width;
  const height = 30 + lanes.length * ROW + 34;
  const svg: string[] = [];
  svg.push(
    `<svg xmlns="http://www.w3.org/2000/svg" class="timeline" width="${
      LABEL + width + STAT
    }" height="${height}" viewBox="0 0 ${LABEL + width + STAT} ${height}">`,
    `<defs><pattern id="wait" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="3" height="6" fill="#c0392b" fill-opacity="0.55"/></pattern></defs>`,
  );
  // Time axis.
  const step = niceStep(span / 8);
  for (let t = Math.ceil(t0 / step) * step; t <= t1; t += step) {
    if (x(t) > LABEL + width - 25) break; // clear of the "busy" column
    const xx = x(t).toFixed(1);
    svg.push(
      `<line x1="${xx}" y1="22" x2="${xx}" y2="${height - 32}" stroke="#ddd"/>`,
      `<text x="${xx}" y="16" font-size="11" text-anchor="middle" fill="#555">${
        ms(t - t0)
      } ms</text>`,
    );
  }
  svg.push(
    `<text x="${
      LABEL + width + 8
    }" y="16" font-size="11" fill="#555">busy*</text>`,
  );
  // Longest tasks over every lane.
  const longest: { lane: Lane; s: Span }[] = [];
  for (const l of lanes) {
    for (const s of l.tasks) {
      if (longest.length < 10 || s.dur > longest[longest.length - 1].s.dur) {
        longest.push({ lane: l, s });
        longest.sort((a, b) => b.s.dur - a.s.dur);
        if (longest.length > 10) longest.pop();
      }
    }
  }
  // Utilization is over the stretch from the first task to the last (of any
  // worker): a worker idle then (started late, out of work early) shows it.
  let w0 = Infinity, w1 = -Infinity;
  for (const l of lanes) {
    for (const t of l.tasks) {
      w0 = Math.min(w0, t.ts);
      w1 = Math.max(w1, t.ts + t.dur);
    }
  }
  const window = Math.max(1e-9, w1 - w0);
  let busyAll = 0, lifeAll = 0;
  const rows: string[] = [];
  lanes.forEach((l, i) => {
    const y = 26 + i * ROW;
    const isWorker = l.tasks.length > 0;
    const life = window;
    const busy = busyOf(l.tasks);
    const waited = busyOf(l.waits);
    if (isWorker) {
      busyAll += busy;
      lifeAll += life;
    }
    const util = busy / life;
    svg.push(
      `<g class="lane" data-lane="${esc(l.name)}" data-tid="${l.tid}">`,
      `<rect x="0" y="${y}" width="${
        LABEL + width + STAT
      }" height="${ROW}" fill="${i % 2 ? "#fafafa" : "#f3f3f3"}"/>`,
      `<text x="6" y="${y + 17}" font-size="12" fill="#222">${
        esc(l.name)
      }</text>`,
    );
    if (l.life) {
      svg.push(
        `<rect class="life" x="${x(l.life.ts).toFixed(1)}" y="${
          y + ROW - 4
        }" width="${w(l.life.dur).toFixed(1)}" height="2" fill="#999"><title>${
          esc(l.name)
        }: ${ms(l.life.dur)} ms, exit code ${
          String(l.life.args?.exitCode ?? "?")
        }</title></rect>`,
      );
    }
    for (const [s, e, b, n, name] of bars(l.tasks, px)) {
      const density = Math.min(1, b / Math.max(e - s, 1e-9));
      svg.push(
        `<rect class="task" x="${x(s).toFixed(1)}" y="${y + 3}" width="${
          w(e - s).toFixed(1)
        }" height="${BAR}" fill="hsl(${hue(name)},55%,55%)" fill-opacity="${
          Math.max(0.3, density).toFixed(2)
        }"><title>${esc(name)}${n > 1 ? ` (${n} tasks)` : ""}: ${
          ms(b)
        } ms busy of ${ms(e - s)} ms</title></rect>`,
      );
    }
    // Over the tasks: a wait inside a task (a lock it takes) shows through.
    for (const [s, e, b, n, name] of bars(l.waits, px)) {
      svg.push(
        `<rect class="wait" x="${x(s).toFixed(1)}" y="${y + 3}" width="${
          w(e - s).toFixed(1)
        }" height="${BAR}" fill="url(#wait)"><title>waiting (${esc(name)}${
          n > 1 ? ` and ${n - 1} more` : ""
        }): ${ms(b)} ms</title></rect>`,
      );
    }
    for (const [s, e, , n] of bars(l.results, px)) {
      svg.push(
        `<rect class="result" x="${x(s).toFixed(1)}" y="${y + 8}" width="${
          w(e - s).toFixed(1)
        }" height="8" fill="#778"><title>${n} result records</title></rect>`,
      );
    }
    let lastX = -Infinity;
    for (const s of l.instants) {
      const xx = x(s.ts);
      if (xx - lastX < 2) continue;
      lastX = xx;
      svg.push(
        `<path class="instant" d="M${xx.toFixed(1)} ${
          y + 3
        }l4 8h-8z" fill="#333"><title>${esc(s.name)} at ${
          ms(s.ts - t0)
        } ms</title></path>`,
      );
    }
    for (const { lane, s } of longest.slice(0, OUTLINED)) {
      if (lane !== l) continue;
      svg.push(
        `<rect class="longest" x="${x(s.ts).toFixed(1)}" y="${y + 2}" width="${
          w(s.dur).toFixed(1)
        }" height="${
          BAR + 2
        }" fill="none" stroke="#000" stroke-width="1.5"><title>${
          esc(s.name)
        }: ${ms(s.dur)} ms (one of the longest)</title></rect>`,
      );
    }
    svg.push(
      `<text class="util" x="${LABEL + width + 8}" y="${
        y + 17
      }" font-size="12" fill="#222">${isWorker ? pct(util) : ""}</text>`,
      `</g>`,
    );
    rows.push(
      `<tr class="lane-stat"><td>${esc(l.name)}</td><td>${
        isWorker ? pct(util) : "-"
      }</td><td>${ms(busy)}</td><td>${ms(waited)}</td><td>${
        l.tasks.reduce(
          (n, s) => n + (typeof s.args?.count === "number" ? s.args.count : 1),
          0,
        )
      }</td></tr>`,
    );
  });
  svg.push(
    `<text x="${LABEL}" y="${
      height - 18
    }" font-size="11" fill="#555">bars: tasks (runs of tiny ones merged; paler = less busy) · hatched: waits · outlined: the three longest tasks</text>`,
    `<text x="${LABEL}" y="${
      height - 4
    }" font-size="11" fill="#555">▲ submits · grey: results arriving · *busy: each worker's share of the time from the first task to the last</text>`,
    `</svg>`,
  );
  const overall = lifeAll > 0 ? busyAll / lifeAll : 0;
  const list = longest.map(({ lane, s }) =>
    `<tr class="long-task"><td>${esc(s.name)}</td><td>${
      esc(lane.name)
    }</td><td>${ms(s.dur)}</td><td>${ms(s.ts - t0)}</td><td>${
      String(s.args?.items ?? s.args?.count ?? 1)
    }</td></tr>`
  ).join("\n");
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>body{font:13px system-ui,sans-serif;margin:16px;color:#222}table{border-collapse:collapse;margin:8px 0 16px}td,th{padding:2px 10px;text-align:left;border-bottom:1px solid #eee}h1{font-size:18px}h2{font-size:15px;margin-top:18px}</style>
</head><body>
<h1>${esc(title)}</h1>
<p id="summary">${lanes.length} lanes · ${
    ms(span)
  } ms · ${events.length} events · pool utilization <b id="utilization">${
    pct(overall)
  }</b></p>
${svg.join("\n")}
<h2>Lanes</h2>
<table id="lanes"><tr><th>lane</th><th>busy</th><th>busy ms</th><th>waiting ms</th><th>tasks</th></tr>
${rows.join("\n")}
</table>
<h2>Longest tasks</h2>
<table id="longest"><tr><th>function</th><th>lane</th><th>ms</th><th>at ms</th><th>items</th></tr>
${list}
</table>
</body></html>
`;
}

function niceStep(raw: number): number {
  const p = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 5, 10]) if (m * p >= raw) return m * p;
  return 10 * p;
}

/** `renderTrace` (trace.ts, which loads this module when first called). */
export async function drawTrace(
  path: string | URL,
  options: RenderTraceOptions = {},
): Promise<string> {
  const p = path instanceof URL ? decodeURIComponent(path.pathname) : path;
  const text = await Deno.readTextFile(p);
  const events = parseTrace(text);
  const out = options.out ?? p.replace(/(\.json)?$/i, ".html");
  const title = options.title ?? p.replace(/^.*\//, "");
  await Deno.writeTextFile(
    out,
    traceHtml(events, title, options.width ?? 1000),
  );
  return out;
}

if (import.meta.main) {
  const [path, out] = Deno.args;
  if (!path) {
    console.error(
      "usage: deno task trace:view out.json [page.html]  (writes out.html beside the trace)",
    );
    Deno.exit(2);
  }
  try {
    console.log(await drawTrace(path, out ? { out } : {}));
  } catch (e) {
    console.error(
      e instanceof Deno.errors.NotFound
        ? `no trace at ${
          JSON.stringify(path)
        }: write one with MP_TRACE=${path} deno run ... (or startTrace)`
        : `cannot draw ${JSON.stringify(path)}: ${(e as Error).message}`,
    );
    Deno.exit(1);
  }
}
