// Drives a claude-max-api server in replay mode (fixtures/) with the official openai npm SDK's
// legacy `completions.create` and prints what it parsed as one JSON object
// (tests/completions/test_node_sdk.py checks it).
//
//   BASE_URL=http://127.0.0.1:3456/v1 API_KEY=... node completions_check.mjs
import OpenAI from "openai";

const client = new OpenAI({
  baseURL: process.env.BASE_URL, apiKey: process.env.API_KEY, maxRetries: 0, timeout: 60_000,
});
const plain = { model: "sonnet", prompt: "Say this is a test." };
const out = {};

const completion = await client.completions.create(plain);
out.completion = {
  object: completion.object,
  id: completion.id.slice(0, 5),
  choices: completion.choices.map((c) => [c.index, c.text, c.finish_reason, c.logprobs]),
  usage: completion.usage,
};

const chunks = [];
for await (const chunk of await client.completions.create({
  ...plain, stream: true, stream_options: { include_usage: true },
})) chunks.push(chunk);
out.stream = {
  text: chunks.flatMap((c) => c.choices.map((x) => x.text)).join(""),
  finish_reasons: chunks.flatMap((c) => c.choices.map((x) => x.finish_reason)).filter((r) => r),
  ids: new Set(chunks.map((c) => c.id)).size,
  usage: chunks.at(-1).usage,
  last_choices: chunks.at(-1).choices.length,
};

const list = await client.completions.create({
  model: "sonnet", prompt: ["Name a colour.", "Name a fruit."], echo: true,
});
out.list = list.choices.map((c) => [c.index, c.text]);

const length = await client.completions.create({
  model: "sonnet", prompt: "Write a story about a lighthouse.", max_tokens: 8,
});
out.length = [length.choices[0].text, length.choices[0].finish_reason];

const stopped = await client.completions.create({ ...plain, stop: [" a "] });
out.stop = stopped.choices[0].text;

async function error(call) {
  try {
    await call();
  } catch (e) {
    return [e.constructor.name, e.status ?? null, e.code ?? null, e.param ?? null];
  }
  throw new Error("expected an error, got none");
}
out.errors = {
  suffix: await error(() => client.completions.create({ ...plain, suffix: "end" })),
  tokens: await error(() => client.completions.create({ model: "sonnet", prompt: [1, 2] })),
  overloaded: await error(async () => {
    for await (const _ of await client.completions.create({
      model: "sonnet", prompt: "Are you busy?", stream: true,
    }));
  }),
};
console.log(JSON.stringify(out));
