/**
 * The "classes" tutorial's `print_func` program (one process without an argument, three
 * with a continent), then the "article" tutorial's create/start/join of several processes.
 *
 * Run: `deno task example:process`
 *
 * @module
 */
import { Process } from "../mod.ts";

/** The "classes" tutorial: prints a continent, "Asia" by default. */
export function printFunc(continent = "Asia") {
  console.log("The name of continent is : ", continent);
}

/** The "article" tutorial: the work each process does (squares numbers up to 100). */
export function squareNumbers() {
  let total = 0;
  for (let i = 0; i < 100; i++) total += i * i;
  return total;
}

if (import.meta.main) {
  // The "classes" tutorial.
  const names = ["America", "Europe", "Africa"];
  const procs: Process[] = [];
  const proc = new Process({ target: printFunc }); // instantiating without any argument
  procs.push(proc);
  await proc.start();
  // Each child prints in turn, so the output order is the document's.
  await proc.join();
  for (const name of names) {
    const proc = new Process({ target: printFunc, args: [name] });
    procs.push(proc);
    await proc.start();
    await proc.join();
  }
  for (const proc of procs) await proc.join();

  // The "article" tutorial: create processes, start them, wait for them to complete.
  const processes: Process[] = [];
  const numProcesses = navigator.hardwareConcurrency;
  for (let i = 0; i < numProcesses; i++) {
    processes.push(new Process({ target: squareNumbers }));
  }
  for (const p of processes) p.start();
  for (const p of processes) await p.join();
  console.log("end main");
}
