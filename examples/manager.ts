/**
 * The "theory" tutorial, the server-process program: a manager holds a list of records;
 * one process adds a record, another prints them all.
 *
 * Run: `deno task example:manager`
 *
 * @module
 */
import { type ListProxy, Manager, Process } from "../mod.ts";

type Record = [name: string, score: number];

/** Prints every record (runs in the second process). */
export async function printRecords(records: ListProxy<Record>) {
  for await (const [name, score] of records) {
    console.log(` Name: ${name}\n Score: ${score}\n`);
  }
}

/** Adds a record to the shared list (runs in the first process). */
export async function insertRecord(record: Record, records: ListProxy<Record>) {
  await records.append(record);
  console.log("New record added!\n");
}

if (import.meta.main) {
  await using manager = await Manager.start();
  // Creating a list in the server process's memory.
  const records = await manager.list<Record>([
    ["Sam", 10],
    ["Adam", 9],
    ["Kevin", 9],
  ]);
  const newRecord: Record = ["Jeff", 8];

  const p1 = new Process({ target: insertRecord, args: [newRecord, records] });
  const p2 = new Process({ target: printRecords, args: [records] });

  await p1.start();
  await p1.join();
  await p2.start();
  await p2.join();
}
