// @openai/agents-realtime (RealtimeSession over its WebSocket transport),
// unmodified, through a whole conversation over wss://.
import OpenAI from 'openai';
import { RealtimeAgent, RealtimeSession, tool } from '@openai/agents-realtime';
import { z } from 'zod';
import { Events, check, checkHeard, env, finish, speechChunks, step } from './harness.mjs';

const url = env.baseURL.replace(/^https:/, 'wss:') + '/realtime?model=gpt-realtime';
const calls = [];
const getWeather = tool({
  name: env.tool.name,
  description: env.tool.description,
  parameters: z.object({ city: z.string() }),
  execute: async ({ city }) => {
    calls.push(city);
    return `sunny in ${city}, 22 degrees`;
  },
});
const agent = new RealtimeAgent({
  name: 'Weather',
  instructions: 'You are a weather assistant.',
  tools: [getWeather],
});

function open(apiKey) {
  const session = new RealtimeSession(agent, { transport: 'websocket', model: 'gpt-realtime' });
  const events = new Events();
  const errors = [];
  const interrupted = [];
  session.on('transport_event', (event) => events.push(event));
  session.on('error', (error) => errors.push(error));
  session.on('audio_interrupted', () => interrupted.push(true));
  return { session, events, errors, interrupted, connected: session.connect({ apiKey, url }) };
}

function transcript(events, mark) {
  return events
    .since(mark, 'response.output_audio_transcript.delta')
    .map((e) => e.delta)
    .join('');
}

let opened;
await step('connect', async () => {
  opened = open(env.apiKey);
  await opened.connected;
  await opened.events.first('session.created');
}, { fatal: true });
const { session, events, errors, interrupted } = opened ?? {};

await step('session.update', async () => {
  // The SDK sends the agent's instructions and tools itself on connect.
  const updated = await events.first('session.updated');
  const names = updated.session.tools.map((t) => t.name);
  check(names.includes('get_weather'), `tools: ${names}`);
  check(updated.session.instructions === 'You are a weather assistant.', 'instructions');
});

await step('text turn', async () => {
  const mark = events.seen.length;
  const done = events.next('response.done');
  session.sendMessage('Hello there');
  check((await done).response.status === 'completed', 'not completed');
  check(transcript(events, mark) === 'Hello from openrealtime.', transcript(events, mark));
});

await step('audio turn', async () => {
  const mark = events.seen.length;
  const done = events.next('response.done');
  for (const chunk of speechChunks()) {
    const copy = new Uint8Array(chunk); // its own ArrayBuffer
    session.sendAudio(copy.buffer);
  }
  check((await done).response.status === 'completed', 'not completed');
  check(events.since(mark, 'input_audio_buffer.speech_started').length === 1, 'speech_started');
  check(events.since(mark, 'input_audio_buffer.committed').length === 1, 'committed');
  check(transcript(events, mark) === 'Hello from openrealtime.', transcript(events, mark));
});

await step('tool call', async () => {
  // The SDK runs the tool, sends its output and asks for the next response.
  const mark = events.seen.length;
  const answered = events.next(
    (e) => e.type === 'response.done' && e.response.output.some((i) => i.type === 'message'),
  );
  session.sendMessage('What is the weather in Paris?');
  await answered;
  check(calls.join() === 'Paris', `tool calls: ${calls}`);
  const outputs = events
    .since(mark, 'conversation.item.added')
    .filter((e) => e.item.type === 'function_call_output');
  check(outputs.length === 1, 'no function_call_output item');
  const text = transcript(events, mark);
  check(text === 'It is sunny in Paris, twenty two degrees.', text);
});

await step('interruption', async () => {
  const audio = events.next('response.output_audio.delta');
  const done = events.next('response.done');
  const truncated = events.next('conversation.item.truncated');
  session.sendMessage('Tell me a story');
  await audio;
  session.interrupt(); // response.cancel, then conversation.item.truncate
  await truncated;
  const finished = await done;
  check(finished.response.status === 'cancelled', `response ${finished.response.status}`);
  checkHeard(finished);
  check(interrupted.length > 0, 'no audio_interrupted');
});

await step('no errors', async () => {
  check(errors.length === 0, errors.map((e) => JSON.stringify(e.error ?? e)).join('; '));
  session.close();
});

await step('ephemeral key', async () => {
  const client = new OpenAI({ apiKey: env.apiKey, baseURL: env.baseURL });
  const secret = await client.realtime.clientSecrets.create({
    session: { type: 'realtime', model: 'gpt-realtime' },
  });
  check(secret.value.startsWith('ek_'), secret.value);
  const second = open(secret.value);
  await second.connected;
  await second.events.first('session.updated');
  const done = second.events.next('response.done');
  second.session.sendMessage('Hello');
  check((await done).response.status === 'completed', 'ek_ turn');
  check(second.errors.length === 0, 'ek_ errors');
  second.session.close();
});

finish();
