// Drives a claude-max-api server with the official openai npm SDK and prints what it parsed
// as one JSON object (tests/sdk/test_node_sdk.py checks it). Any exception the SDK raises
// where none is expected fails the script (exit 1).
//
//   BASE_URL=http://127.0.0.1:3456/v1 API_KEY=... node sdk_check.mjs
import OpenAI from "openai";

const baseURL = process.env.BASE_URL;
const apiKey = process.env.API_KEY;
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 60_000 });
const plain = { model: "claude-sonnet-4", messages: [{ role: "user", content: "What is 2 + 2?" }] };
const broken = {
  model: "claude-sonnet-4",
  messages: [{ role: "user", content: "Tell me a story. (killed mid-stream)" }],
};

function describeError(error) {
  return {
    class: error.constructor.name,
    isAPIError: error instanceof OpenAI.APIError,
    status: error.status ?? null,
    code: error.code ?? null,
    type: error.type ?? null,
    message: typeof error.message === "string",
  };
}

async function expectError(call) {
  try {
    await call();
  } catch (error) {
    return describeError(error);
  }
  throw new Error("expected an error, got none");
}

const out = {};

const completion = await client.chat.completions.create(plain);
out.completion = {
  object: completion.object,
  model: completion.model,
  content: completion.choices[0].message.content,
  role: completion.choices[0].message.role,
  refusal: completion.choices[0].message.refusal,
  finish_reason: completion.choices[0].finish_reason,
  usage: completion.usage,
};

const stream = await client.chat.completions.create({
  ...plain, stream: true, stream_options: { include_usage: true },
});
const chunks = [];
for await (const chunk of stream) chunks.push(chunk);
out.stream = {
  first_role: chunks[0].choices[0].delta.role,
  text: chunks.filter((c) => c.choices.length).map((c) => c.choices[0].delta.content ?? "").join(""),
  finish_reasons: chunks.filter((c) => c.choices.length && c.choices[0].finish_reason)
    .map((c) => c.choices[0].finish_reason),
  ids: [...new Set(chunks.map((c) => c.id))].length,
  usage: chunks[chunks.length - 1].usage,
  last_choices: chunks[chunks.length - 1].choices.length,
};

// The SDK's stream helper rebuilds the whole completion from the deltas.
const runner = client.chat.completions.stream({ ...plain, stream_options: { include_usage: true } });
const final = await runner.finalChatCompletion();
out.helper = { content: final.choices[0].message.content, finish_reason: final.choices[0].finish_reason };

const models = [];
for await (const model of client.models.list()) models.push(model);
out.models = { ids: models.map((m) => m.id), objects: [...new Set(models.map((m) => m.object))] };
const one = await client.models.retrieve("sonnet");
out.retrieve = { id: one.id, object: one.object, owned_by: one.owned_by };

out.errors = {
  not_found: await expectError(() => client.chat.completions.create({ ...plain, model: "gpt-4o" })),
  bad_request: await expectError(() => client.chat.completions.create({ ...plain, messages: [] })),
  unauthorized: await expectError(() => new OpenAI({ baseURL, apiKey: "sk-wrong", maxRetries: 0 })
    .models.list()),
  rate_limited: await expectError(() => client.chat.completions.create({
    model: "claude-sonnet-4", messages: [{ role: "user", content: "Hello? (upstream 429)" }],
  })),
  stream_refused: await expectError(async () => {
    const s = await client.chat.completions.create({ ...plain, model: "gpt-4o", stream: true });
    for await (const _ of s);
  }),
};

// A failure after the stream began: the text sent so far, then an error while iterating.
let partial = "";
out.errors.mid_stream = await expectError(async () => {
  const s = await client.chat.completions.create({ ...broken, stream: true });
  for await (const c of s) partial += c.choices[0]?.delta?.content ?? "";
});
out.errors.mid_stream.partial = partial;

process.stdout.write(JSON.stringify(out));
