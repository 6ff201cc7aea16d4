/**
 * The "classes" tutorial's `do_job` program: 10 tasks on a queue, 4 processes taking them
 * with `getNowait()` until `Empty`, each reporting on a second queue, which
 * the main program prints after joining them.
 *
 * Run: `deno task example:tasks`
 *
 * @module
 */
import { currentProcess, Empty, Process, Queue } from "../mod.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Takes tasks until none is left; reports each one done. */
export async function doJob(
  tasksToAccomplish: Queue<string>,
  tasksThatAreDone: Queue<string>,
) {
  while (true) {
    let task: string;
    try {
      // try to get task from the queue. getNowait() throws Empty if the
      // queue is empty; get({ block: false }) would do the same.
      task = tasksToAccomplish.getNowait();
    } catch (e) {
      if (e instanceof Empty) break;
      throw e;
    }
    // no exception: add the task completion message to tasksThatAreDone
    console.log(task);
    await tasksThatAreDone.put(task + " is done by " + currentProcess().name);
    await sleep(500);
  }
  return true;
}

async function main() {
  const numberOfTask = 10;
  const numberOfProcesses = 4;
  const tasksToAccomplish = new Queue<string>();
  const tasksThatAreDone = new Queue<string>();
  const processes: Process[] = [];

  for (let i = 0; i < numberOfTask; i++) {
    await tasksToAccomplish.put("Task no " + String(i));
  }

  // creating processes
  for (let w = 0; w < numberOfProcesses; w++) {
    const p = new Process({
      target: doJob,
      args: [tasksToAccomplish, tasksThatAreDone],
    });
    processes.push(p);
    p.start();
  }

  // completing process
  for (const p of processes) await p.join();

  // print the output
  while (!tasksThatAreDone.empty()) console.log(await tasksThatAreDone.get());

  return true;
}

if (import.meta.main) await main();
