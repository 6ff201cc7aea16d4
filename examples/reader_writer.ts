/**
 * The "recipe" tutorial's read/write program: a `QueueHandler` with one main queue, two
 * readers and an inserter built on `MultiprocessingBase`. The inserter puts
 * a counter every 251 ms; the readers poll the queue every 100 ms and print
 * what they read; after a while all three are stopped through their
 * internal queues.
 *
 * Run: `deno task example:reader-writer`
 *
 * @module
 */
import { MultiprocessingBase, QueueHandler } from "../queue_handler.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Reads the main queue and prints what it finds. */
export class ClassReader extends MultiprocessingBase {
  mainQueueName: string;

  constructor(queueHandler: QueueHandler, mainQueueName: string) {
    super(queueHandler);
    this.mainQueueName = mainQueueName;
    this.flag = "REDR";
  }

  override async runProcess() {
    // super.runProcess();
    const data = this.queueHandler.get(this.mainQueueName);
    if (data !== null) console.log("read data: " + String(data));
    await sleep(100);
  }
}

/** Puts a counter on the main queue. */
export class ClassInserter extends MultiprocessingBase {
  mainQueueName: string;
  counter: number;

  constructor(queueHandler: QueueHandler, mainQueueName: string) {
    super(queueHandler);
    this.mainQueueName = mainQueueName;
    this.flag = "INST";
    this.counter = 0;
  }

  override async runProcess() {
    this.queueHandler.put(this.mainQueueName, this.counter);
    this.counter += 1;
    await sleep(251);
  }
}

if (import.meta.main) {
  const queueHandler = new QueueHandler();
  queueHandler.initQueue("main_queue");

  const classReader = new ClassReader(queueHandler, "main_queue");
  // create another instance to demonstrate the uniqueness of the internal queue name (address)
  const classReader2 = new ClassReader(queueHandler, "main_queue");
  const classInserter = new ClassInserter(queueHandler, "main_queue");

  await classReader.startProcess();
  await classReader2.startProcess();
  await classInserter.startProcess();

  // ... (the inserter puts 0, 1, 2, ... every 251 ms; the readers print them)
  await sleep(2150);

  // Always stop processes after you've started them.
  await Promise.all([
    classReader.stopProcess(),
    classReader2.stopProcess(),
    classInserter.stopProcess(),
  ]);
}
