// openai-node (OpenAIRealtimeWS), unmodified, through a whole conversation over wss://.
import OpenAI from 'openai';
import { OpenAIRealtimeWS } from 'openai/realtime/ws';
import { Events, check, checkHeard, env, finish, speechChunks, step } from './harness.mjs';

const client = new OpenAI({ apiKey: env.apiKey, baseURL: env.baseURL });

async function open(apiClient) {
  const rt = new OpenAIRealtimeWS({ model: 'gpt-realtime' }, apiClient);
  const events = new Events();
  const errors = [];
  rt.on('event', (event) => events.push(event));
  rt.on('error', (error) => errors.push(error));
  const created = await events.next('session.created');
  return { rt, events, errors, created };
}

function say(rt, text) {
  rt.send({
    type: 'conversation.item.create',
    item: { type: 'message', role: 'user', content: [{ type: 'input_text', text }] },
  });
  rt.send({ type: 'response.create' });
}

function transcript(events, mark) {
  return events
    .since(mark, 'response.output_audio_transcript.delta')
    .map((e) => e.delta)
    .join('');
}

let session;
await step('connect', async () => {
  session = await open(client);
}, { fatal: true });
const { rt, events, errors } = session ?? {};

await step('session.update', async () => {
  rt.send({
    type: 'session.update',
    session: {
      type: 'realtime',
      instructions: 'You are a weather assistant.',
      tools: [env.tool],
      audio: { input: { transcription: { model: 'whisper-1' } } },
    },
  });
  const updated = await events.next('session.updated');
  check(updated.session.tools[0].name === 'get_weather', 'tool missing from session.updated');
});

await step('text turn', async () => {
  const mark = events.seen.length;
  const done = events.next('response.done');
  say(rt, 'Hello there');
  check((await done).response.status === 'completed', 'not completed');
  check(transcript(events, mark) === 'Hello from openrealtime.', transcript(events, mark));
  check(events.since(mark, 'response.output_audio.delta').length > 0, 'no audio');
});

await step('audio turn', async () => {
  const mark = events.seen.length;
  const done = events.next('response.done');
  for (const chunk of speechChunks()) {
    rt.send({ type: 'input_audio_buffer.append', audio: chunk.toString('base64') });
  }
  check((await done).response.status === 'completed', 'not completed');
  check(events.since(mark, 'input_audio_buffer.speech_started').length === 1, 'speech_started');
  check(events.since(mark, 'input_audio_buffer.committed').length === 1, 'committed');
  check(transcript(events, mark) === 'Hello from openrealtime.', transcript(events, mark));
});

await step('tool call', async () => {
  let done = events.next('response.done');
  say(rt, 'What is the weather in Paris?');
  const [call] = (await done).response.output;
  check(call.type === 'function_call' && call.name === 'get_weather', JSON.stringify(call));
  check(JSON.parse(call.arguments).city === 'Paris', call.arguments);
  const mark = events.seen.length;
  done = events.next('response.done');
  rt.send({
    type: 'conversation.item.create',
    item: { type: 'function_call_output', call_id: call.call_id, output: '{"sky": "sunny"}' },
  });
  rt.send({ type: 'response.create' });
  await done;
  const text = transcript(events, mark);
  check(text === 'It is sunny in Paris, twenty two degrees.', text);
});

await step('interruption', async () => {
  const audio = events.next('response.output_audio.delta');
  const done = events.next('response.done');
  const truncated = events.next('conversation.item.truncated');
  say(rt, 'Tell me a story');
  // 300 ms of the reply have come when the user stops it at 200 ms
  let { item_id, delta } = await audio;
  let received = Buffer.from(delta, 'base64').length;
  while (received < 300 * 48) {
    ({ delta } = await events.next('response.output_audio.delta'));
    received += Buffer.from(delta, 'base64').length;
  }
  rt.send({ type: 'conversation.item.truncate', item_id, content_index: 0, audio_end_ms: 200 });
  rt.send({ type: 'response.cancel' });
  check((await truncated).audio_end_ms === 200, 'truncated');
  const finished = await done;
  check(finished.response.status === 'cancelled', `response ${finished.response.status}`);
  checkHeard(finished);
});

await step('no errors', async () => {
  check(errors.length === 0, errors.map(String).join('; '));
  rt.close();
});

await step('ephemeral key', async () => {
  const secret = await client.realtime.clientSecrets.create({
    session: { type: 'realtime', model: 'gpt-realtime', tools: [env.tool] },
  });
  check(secret.value.startsWith('ek_'), secret.value);
  const browser = new OpenAI({ apiKey: secret.value, baseURL: env.baseURL });
  const second = await open(browser);
  check(second.created.session.tools[0].name === 'get_weather', 'ek_ session config');
  const done = second.events.next('response.done');
  say(second.rt, 'Hello');
  check((await done).response.status === 'completed', 'ek_ turn');
  second.rt.close();
});

finish();
