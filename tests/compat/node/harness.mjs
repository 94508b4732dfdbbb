// The steps of a compat conversation, for the Node clients (tests/compat/test_node.py).
//
// Each script runs its steps in order with `step(name, fn)`; a step that
// throws or takes longer than STEP_MS fails. After a failed `fatal` step
// (connecting) the others are not run; after any other, they still are, so
// that one report shows every step. The result goes to stdout as one JSON line, {"steps": {name: "ok" |
// error message}}, which the pytest side asserts on.
import { readFileSync } from 'node:fs';

export const STEP_MS = 20000;
export const env = {
  baseURL: process.env.OR_BASE_URL, // https://127.0.0.1:PORT/v1
  apiKey: process.env.OR_API_KEY,
  speech: readFileSync(process.env.OR_SPEECH), // PCM16 24 kHz mono
  tool: JSON.parse(process.env.OR_TOOL),
  story: process.env.OR_STORY, // the long reply that is interrupted
};

const results = {};
let failed = false;
let stopped = false;

export async function step(name, fn, { fatal = false } = {}) {
  if (stopped) return;
  let timer;
  try {
    await Promise.race([
      fn(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${STEP_MS} ms`)), STEP_MS);
      }),
    ]);
    results[name] = 'ok';
  } catch (error) {
    failed = true;
    stopped = fatal;
    results[name] = String(error?.stack ?? error);
  } finally {
    clearTimeout(timer);
  }
}

export function finish() {
  process.stdout.write(JSON.stringify({ steps: results }) + '\n');
  process.exit(failed ? 1 : 0);
}

export function check(condition, message) {
  if (!condition) throw new Error(message);
}

// The interrupted item keeps what was heard: a part of the story, not all.
export function checkHeard(done) {
  const heard = done.response.output[0]?.content?.[0]?.transcript ?? '';
  check(env.story.startsWith(heard) && heard.length < env.story.length, `transcript: ${heard}`);
}

// Events of an emitter, kept in order, with a way to wait for one.
export class Events {
  constructor() {
    this.seen = [];
    this.waiters = [];
  }
  push(event) {
    this.seen.push(event);
    this.waiters = this.waiters.filter(({ match, resolve }) => {
      if (!match(event)) return true;
      resolve(event);
      return false;
    });
  }
  // The first event so far of this type, else the next one.
  first(type) {
    const seen = this.seen.find((e) => e.type === type);
    return seen ? Promise.resolve(seen) : this.next(type);
  }
  // The next event (from now on) of this type, or matching this predicate.
  next(match) {
    const test = typeof match === 'string' ? (e) => e.type === match : match;
    return new Promise((resolve) => this.waiters.push({ match: test, resolve }));
  }
  // All events since `mark` of this type.
  since(mark, type) {
    return this.seen.slice(mark).filter((e) => e.type === type);
  }
}

// 100 ms chunks of the speech, base64.
export function speechChunks() {
  const chunks = [];
  for (let i = 0; i < env.speech.length; i += 4800) {
    chunks.push(env.speech.subarray(i, i + 4800));
  }
  return chunks;
}
