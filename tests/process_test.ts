import assert from "node:assert/strict";
import { bounded } from "./_bounded.ts";
import {
  activeChildren,
  cpuCount,
  currentProcess,
  Event,
  parentProcess,
  Pipe,
  Process,
  ProcessError,
  Queue,
  TargetNotExportedError,
} from "../mod.ts";
import { runDeno, runProgram } from "./_run_task.ts";
import {
  Counter,
  denoExitWith,
  exitWith,
  forever,
  nested,
  noop,
  report,
  setsExitCode,
  thrower,
  tryRead,
} from "./fixtures/targets.ts";

const FIXTURES = new URL("./fixtures/", import.meta.url);
const T = 20_000; // bound of every wait in this file
// The targets live in fixtures/targets.ts, not in this module: name it.
const module = new URL("targets.ts", FIXTURES);

async function runChild(
  target: (...a: never[]) => unknown,
  args: unknown[] = [],
) {
  const p = new Process({
    target: target as (...a: unknown[]) => unknown,
    args,
    module,
  });
  await bounded(p.start());
  await p.join(T);
  return p;
}

Deno.test("exit codes: 0 normal, 1 on throw, n on exit(n) and Deno.exit(n)", async () => {
  assert.equal((await runChild(noop)).exitCode, 0);
  assert.equal((await runChild(thrower)).exitCode, 1);
  assert.equal((await runChild(exitWith, [7])).exitCode, 7);
  assert.equal((await runChild(denoExitWith, [9])).exitCode, 9);
  assert.equal((await runChild(setsExitCode, [4])).exitCode, 4);
});

Deno.test("terminate gives -15, kill gives -9; isAlive follows", async () => {
  for (const [stop, code] of [["terminate", -15], ["kill", -9]] as const) {
    const p = new Process({ module, target: forever });
    assert.equal(p.isAlive(), false);
    await bounded(p.start());
    assert.equal(p.isAlive(), true);
    assert.equal(p.exitCode, null);
    assert.ok(activeChildren().includes(p));
    p[stop]();
    await p.join(T);
    assert.equal(p.exitCode, code);
    assert.equal(p.isAlive(), false);
    assert.ok(!activeChildren().includes(p));
    p.close();
  }
});

Deno.test("terminated before it started: start() rejects, join() returns with the code", async () => {
  const p = new Process({ module, target: forever });
  const started = p.start();
  p.terminate();
  await assert.rejects(bounded(started), /before it started/);
  await bounded(p.join(T));
  assert.equal(p.exitCode, -15);
  p.close();
});

Deno.test("join(timeout) returns with the child still running", async () => {
  using p = new Process({ module, target: forever });
  await bounded(p.start());
  await p.join(50);
  assert.equal(p.exitCode, null);
  assert.equal(p.isAlive(), true);
  // `using` terminates it.
});

Deno.test("a daemon child's start and join settle with nothing else holding the event loop", async () => {
  // No bounded() here on purpose: its timer would hold the loop and hide a
  // wait that does not (Deno then fails the test: "event loop has already resolved").
  using p = new Process({ module, target: noop, daemon: true });
  await p.start();
  await p.join();
  // join(Infinity) waits as join() does (setTimeout fired at once for it).
  using q = new Process({ module, target: noop, daemon: true });
  await q.start();
  await q.join(Infinity);
  assert.equal(q.exitCode, 0);
  assert.equal(p.exitCode, 0);
});

Deno.test("misuse errors as Python gives them", async () => {
  const p = new Process({ module, target: noop });
  await assert.rejects(bounded(p.join()), ProcessError);
  await bounded(p.start());
  assert.throws(() => p.start(), ProcessError);
  await p.join(T);
  p.close();
  assert.throws(() => p.isAlive(), /closed/);

  const live = new Process({ module, target: forever });
  await bounded(live.start());
  assert.throws(() => live.close(), /still running/);
  live.terminate();
  await live.join(T);
  live.close();
});

function hidden() {}

Deno.test("a target that is not exported: TargetNotExportedError naming module, name and fix", async () => {
  const p = new Process({ target: hidden });
  const err = await bounded(p.start()).then(() => undefined, (e) => e);
  assert.ok(err instanceof TargetNotExportedError, String(err));
  assert.match(
    err.message,
    /'hidden' is not exported from file:.*process_test\.ts/,
  );
  assert.match(err.message, /export function hidden/);
  await assert.rejects(bounded(p.join(T)), TargetNotExportedError);
  assert.equal(p.exitCode, 1);
});

Deno.test("an inline target: the error says a child cannot find it and how to export it", async () => {
  // The option names the arrow: its name is "target".
  const inline = new Process({ target: () => 1 });
  const err = await bounded(inline.start()).then(() => undefined, (e) => e);
  assert.ok(err instanceof TargetNotExportedError, String(err));
  assert.match(
    err.message,
    /If it is an inline function \(`target: \(\) => \.\.\.`\), 'target' is only the name the option gave it, and a child cannot find it: declare it at the top level as `export function work\(\.\.\.\) \{ \.\.\. \}` and pass `target: work`/,
  );
  await assert.rejects(bounded(inline.join(T)), TargetNotExportedError);
  // No name at all: refused at once, in this process.
  const fns = [() => 1];
  assert.throws(
    () => new Process({ target: fns[0] }).start(),
    (e: Error) =>
      e instanceof TargetNotExportedError &&
      /^an anonymous or inline function cannot be a child's target \(from file:.*process_test\.ts\)/
        .test(e.message) &&
      /declare it at the top level of the module as `export function work/
        .test(e.message),
  );
});

Deno.test("a target imported from another module: the error names that module and the `module` option", async () => {
  const p = new Process({ target: noop }); // imported from fixtures/targets.ts
  const err = await bounded(p.start()).then(() => undefined, (e) => e);
  assert.ok(err instanceof TargetNotExportedError, String(err));
  const there = new URL("targets.ts", FIXTURES).href;
  assert.ok(
    err.message.startsWith(
      `'noop' is not exported from ${
        new URL(import.meta.url).href
      }, which passed it: it is imported there from ${there}.`,
    ),
    err.message,
  );
  assert.ok(
    err.message.includes(
      `Fix: pass the \`module\` option naming that module (\`module: "${there}"\``,
    ),
    err.message,
  );
  await assert.rejects(bounded(p.join(T)), TargetNotExportedError);
});

Deno.test("a target whose module has a top-level await starts (web and daemon children)", async () => {
  const tla = new URL("tla_targets.ts", FIXTURES);
  const { hello } = await import(tla.href);
  for (const daemon of [false, true]) {
    const p = new Process({ target: hello, module: tla, daemon });
    await bounded(p.start());
    await p.join(T);
    assert.equal(p.exitCode, 0);
  }
});

Deno.test("non-cloneable args fail before anything starts, naming position and type", () => {
  const before = activeChildren().length;
  const p = new Process({
    module,
    target: noop,
    args: [1, { deep: [() => 1] }] as never,
  });
  assert.throws(() => p.start(), (e: Error) => {
    assert.ok(e instanceof TypeError);
    assert.match(e.message, /args\[1\]\.deep\[0\] is a function/);
    return true;
  });
  assert.equal(activeChildren().length, before);
  assert.equal(p.isAlive(), false);
  assert.throws(
    () => new Process({ module, target: noop, args: 5 as never }),
    TypeError,
  );
});

Deno.test("names, pids, currentProcess and parentProcess", async () => {
  assert.equal(currentProcess().name, "MainProcess");
  assert.equal(currentProcess().pid, Deno.pid);
  assert.equal(parentProcess(), null);
  assert.ok(cpuCount() >= 1);
  const [a, b] = Pipe();
  const p = new Process({
    module,
    target: report,
    args: [b, "x", { y: [1] }],
    name: "Reporter",
  });
  assert.equal(p.pid, null);
  await bounded(p.start());
  const got = await bounded(a.recv()) as Record<string, unknown>;
  await p.join(T);
  a.close();
  assert.equal(got.name, "Reporter");
  assert.equal(got.pid, p.pid);
  assert.equal(got.parentName, "MainProcess");
  assert.equal(got.parentAlive, true);
  assert.deepEqual(got.args, ["x", { y: [1] }]);
  assert.match(new Process({ module, target: noop }).name, /^Process-\d+$/);
});

Deno.test("nested processes: a child starts its own child, named Process-N:M", async () => {
  const [a, b] = Pipe();
  const p = new Process({ module, target: nested, args: [b] });
  await bounded(p.start());
  const got = await bounded(a.recv()) as {
    me: string;
    grandchild: { name: string; parentName: string };
    exitCode: number;
  };
  await p.join(T);
  a.close();
  assert.equal(p.exitCode, 0);
  assert.equal(got.exitCode, 0);
  assert.match(got.me, /^Process-\d+$/);
  assert.equal(got.grandchild.name, `${got.me}:1`);
  assert.equal(got.grandchild.parentName, got.me);
});

Deno.test("an exported Process subclass runs with its own fields", async () => {
  const [a, b] = Pipe();
  const p = new Counter(b); // the class is found from its own constructor's module
  p.start_ = 41;
  await bounded(p.start());
  assert.match(await bounded(a.recv()) as string, /^Process-\d+: 42$/);
  await p.join(T);
  a.close();
  assert.equal(p.exitCode, 0);
});

Deno.test("permissions: a child with none cannot read files, yet loads its module", async () => {
  const [a, b] = Pipe();
  const p = new Process({
    module,
    target: tryRead,
    args: [b, new URL("targets.ts", FIXTURES).pathname],
    permissions: "none",
  });
  await bounded(p.start());
  assert.equal(await bounded(a.recv()), "NotCapable");
  await p.join(T);
  a.close();
  const [c, d] = Pipe();
  const q = new Process({
    module,
    target: tryRead,
    args: [d, new URL("targets.ts", FIXTURES).pathname],
  });
  await bounded(q.start());
  assert.equal(await bounded(c.recv()), "read ok");
  await q.join(T);
  c.close();
});

function runFixture(file: string, ...flags: string[]) {
  return runProgram(new URL(file, FIXTURES), flags);
}

Deno.test("program exit: a daemon child never keeps the program alive; a non-daemon one does", async () => {
  const r = await runFixture("program_exit.ts");
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.stdout.trim().split("\n"), [
    "main done",
    "non-daemon child finished",
  ]);
});

Deno.test("a child terminated while blocked in a synchronous wait stops, and the program ends", async () => {
  const r = await runFixture("terminate_blocked.ts");
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, "blocking\nexitCode -15\n");
});

Deno.test("an uncaught error in a child is printed to stderr headed 'Process <name>:'", async () => {
  const r = await runFixture("child_throws.ts");
  assert.equal(r.code, 0, r.stderr);
  assert.match(
    r.stderr,
    /Process Thrower:\nRangeError: thrown in the child\n\s+at .*thrower.*targets\.ts/,
  );
  assert.equal(r.stdout.trim(), "exitCode 1");
});

Deno.test("a missing import.meta.main guard is an error, not a spawn storm", async () => {
  const r = await runFixture("no_guard.ts");
  // The error, with the stack of the unguarded start(), then the exit code.
  const lines = r.stdout.trim().split("\n");
  const [caught, exit] = [lines[0], lines.at(-1)];
  assert.match(r.stdout, /at .*no_guard\.ts:\d+/);
  assert.match(
    caught,
    /^caught: Process 'Process-1' could not start: .*import\.meta\.main/,
  );
  assert.equal(exit, "exitCode 1");
});

Deno.test("permissions without --unstable-worker-options: the error names the flag", async () => {
  const r = await runFixture("permissions_no_flag.ts", "--no-config");
  assert.match(r.stdout, /--unstable-worker-options/);
});

/**
 * Runs `deno <args>` in a user's project of its own (a temp dir outside this
 * repository, whose deno.json sets the worker-options flag): `files` maps
 * the project's file names to fixtures (their import of mod.ts rewritten);
 * `config` is the project's deno.json; `env` is added to the environment.
 */
async function runUserProject(
  files: Record<string, string>,
  args: string[],
  config?: object,
  env?: Record<string, string>,
) {
  const dir = await Deno.makeTempDir();
  try {
    const mod = new URL("../mod.ts", import.meta.url).href;
    for (const [name, fixture] of Object.entries(files)) {
      const src = await Deno.readTextFile(new URL(fixture, FIXTURES));
      await Deno.writeTextFile(
        `${dir}/${name}`,
        src.replace(`"../../mod.ts"`, JSON.stringify(mod)),
      );
    }
    if (config) {
      await Deno.writeTextFile(`${dir}/deno.json`, JSON.stringify(config));
    }
    return await runDeno(args, dir, env);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** permissions_project.ts as main.ts, run with only `--allow-read` and `flags`. */
function runPermissionsProject(flags: string[], config?: object) {
  return runUserProject(
    { "main.ts": "permissions_project.ts" },
    ["run", "--allow-read", ...flags, "main.ts"],
    config,
  );
}

Deno.test("permissions with only --allow-read and no flag: a catchable error that names the flag (Deno ended the program, exit 70)", async () => {
  const r = await runPermissionsProject([]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^caught: .*--unstable-worker-options/);
  assert.match(
    r.stdout,
    /"unstable": \["worker-options"\] in your project's deno.json/,
  );
});

Deno.test("permissions with only --allow-read and the flag in deno.json: the child runs with them", async () => {
  const r = await runPermissionsProject([], { unstable: ["worker-options"] });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.stdout.trim().split("\n"), [
    "child NotCapable",
    "exitCode 0",
  ]);
});

Deno.test("permissions with only --allow-read and the flag on the command line: refused, catchably (Deno shows the flag to nothing but --allow-all)", async () => {
  const r = await runPermissionsProject(["--unstable-worker-options"]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^caught: .*cannot tell whether it has it/);
});

Deno.test("a daemon child, a Pool and a Manager run with only --allow-read and ask for no other permission (a node:worker_threads worker copied the environment: an env prompt in a terminal)", async () => {
  // Deno logs every permission its program asks for that it was not given.
  const audit = await Deno.makeTempFile({ suffix: ".jsonl" });
  try {
    const r = await runUserProject(
      { "main.ts": "read_only_program.ts" },
      ["run", "--allow-read", "main.ts"],
      undefined,
      { DENO_AUDIT_PERMISSIONS: audit },
    );
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split("\n"), [
      "daemon child ran",
      "daemon exitCode 0",
      "pool [1,4,9]",
      "manager 7",
    ]);
    const asked = (await Deno.readTextFile(audit)).trim().split("\n")
      .filter((l) => l).map((l) => JSON.parse(l).permission);
    assert.deepEqual(asked.filter((p) => p !== "read"), []);
  } finally {
    await Deno.remove(audit);
  }
});

Deno.test("a child that cannot load its modules (run with no permission): start() rejects with one error naming the fix, and nothing else is printed (Deno printed the child's error, and the parent a second copy)", async () => {
  const r = await runUserProject(
    { "main.ts": "no_read_program.ts" },
    ["run", "main.ts"],
  );
  assert.equal(r.code, 0, r.stderr);
  const [caught, exit] = r.stdout.trim().split("\n");
  assert.match(
    caught,
    /^caught ProcessError: Process 'Process-1' could not start: .*Requires read access.*--allow-read/,
  );
  assert.equal(exit, "exitCode 1");
  assert.equal(r.stderr, "");
});

Deno.test("a target's module that fails as a child loads it: start() rejects at once with the exit code, or the error and where it was thrown, in a Web Worker child and a daemon alike (a Deno.exit at its top level left start() waiting forever)", async () => {
  const fixture = (how: string) =>
    new URL(`./fixtures/load_fails.ts?how=${how}`, import.meta.url);
  // Found by name in `module`, as the fixture's own `work`.
  function work(): void {}
  for (const daemon of [false, true]) {
    const cases: [string, RegExp, number][] = [
      ["exit", /ended \(exit code 3\) before it started/, 3],
      [
        "throw",
        /could not start: Error: thrown while loading\n.*load_fails\.ts/,
        1,
      ],
      ["null", /could not start: \[Object: null prototype\] \{\}/, 1],
    ];
    for (const [how, message, code] of cases) {
      const p = new Process({ target: work, daemon, module: fixture(how) });
      await assert.rejects(
        bounded(
          p.start(),
          20_000,
          `start() of a child whose module does ${how}`,
        ),
        (e: Error) => e instanceof ProcessError && message.test(e.message),
        `${how}, daemon ${daemon}`,
      );
      assert.equal(p.exitCode, code, `${how}, daemon ${daemon}`);
    }
  }
});

Deno.test("deno test of a user's project does not type-check the children's entries (printed 'Check data:...' and took seconds)", async () => {
  // A fresh temp project: nothing of it is in Deno's type-check cache.
  const r = await runUserProject(
    {
      "user_tasks.ts": "user_tasks.ts",
      "main_test.ts": "user_project_tests.ts",
    },
    ["test", "--allow-read"],
  );
  // Without its colours ("Check" and the module are coloured apart).
  // deno-lint-ignore no-control-regex
  const out = (r.stdout + r.stderr).replace(/\x1b\[[0-9;]*m/g, "");
  assert.equal(r.code, 0, out);
  assert.match(out, /2 passed/);
  assert.doesNotMatch(out, /Check data:/);
});

Deno.test("a child makes no timer to start or to wait (a Web Worker's first costs it 4-11 ms)", async () => {
  const { timersMade } = await import(new URL("timer_count.ts", FIXTURES).href);
  const go = new Event();
  using out = new Queue<number>();
  const p = new Process({
    target: timersMade,
    args: [go, out],
    module: new URL("timer_count.ts", FIXTURES),
  });
  await bounded(p.start(), T);
  await new Promise((r) => setTimeout(r, 20)); // the child waits on `go`
  go.set();
  assert.equal(await bounded(out.get(), T), 0);
  await bounded(p.join(), T);
  assert.equal(p.exitCode, 0);
});
