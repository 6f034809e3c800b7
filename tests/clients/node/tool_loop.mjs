// The official openai npm SDK runs tool loops against a claude-max-api server and prints what
// it saw as one JSON object (tests/clients/test_node_openai.py checks it): by hand, streamed and
// not, parallel calls, and the SDK's own runTools() helper, streamed and not.
//
//   BASE_URL=http://127.0.0.1:3456/v1 API_KEY=... node tool_loop.mjs
import OpenAI from "openai";

const client = new OpenAI({
  baseURL: process.env.BASE_URL,
  apiKey: process.env.API_KEY,
  maxRetries: 0,
  timeout: 60_000,
});
const model = "claude-sonnet-4";
const WEATHER = "sunny, 21 C";
const ran = [];

function getWeather({ city }) {
  ran.push(city);
  return WEATHER;
}

const tools = [
  {
    type: "function",
    function: {
      name: "get_weather",
      description: "Get the current weather of a city.",
      parameters: {
        type: "object",
        properties: { city: { type: "string" } },
        required: ["city"],
        additionalProperties: false,
      },
    },
  },
];

function answer(messages, message) {
  messages.push(message);
  for (const call of message.tool_calls ?? []) {
    const args = JSON.parse(call.function.arguments);
    messages.push({ role: "tool", tool_call_id: call.id, content: getWeather(args) });
  }
}

function callsOf(message) {
  return (message.tool_calls ?? []).map((c) => ({
    id: c.id,
    type: c.type,
    name: c.function.name,
    arguments: JSON.parse(c.function.arguments),
  }));
}

// A loop by hand, non-streaming: the calls, then the answer to the results.
async function byHand(prompt) {
  const messages = [{ role: "user", content: prompt }];
  const first = await client.chat.completions.create({ model, messages, tools });
  answer(messages, first.choices[0].message);
  const second = await client.chat.completions.create({ model, messages, tools });
  return {
    finish: [first.choices[0].finish_reason, second.choices[0].finish_reason],
    content: [first.choices[0].message.content, second.choices[0].message.content],
    calls: callsOf(first.choices[0].message),
    usage: [first.usage, second.usage],
  };
}

// The same, streamed: tool calls assembled from their deltas, as OpenAI streams them.
async function streamed(prompt) {
  const messages = [{ role: "user", content: prompt }];
  const stream = await client.chat.completions.create({
    model, messages, tools, stream: true, stream_options: { include_usage: true },
  });
  const calls = [];
  let content = "";
  let finish = null;
  let usage = null;
  const deltas = [];
  for await (const chunk of stream) {
    if (chunk.usage) usage = chunk.usage;
    const choice = chunk.choices[0];
    if (!choice) continue;
    content += choice.delta.content ?? "";
    for (const d of choice.delta.tool_calls ?? []) {
      deltas.push({ index: d.index, id: d.id ?? null, name: d.function?.name ?? null });
      calls[d.index] ??= { id: d.id, type: d.type, function: { name: d.function?.name, arguments: "" } };
      calls[d.index].function.arguments += d.function?.arguments ?? "";
    }
    finish = choice.finish_reason ?? finish;
  }
  const message = { role: "assistant", content, tool_calls: calls };
  answer(messages, message);
  let text = "";
  let finish2 = null;
  const again = await client.chat.completions.create({ model, messages, tools, stream: true });
  for await (const chunk of again) {
    text += chunk.choices[0]?.delta.content ?? "";
    finish2 = chunk.choices[0]?.finish_reason ?? finish2;
  }
  return {
    finish: [finish, finish2],
    content: [content, text],
    calls: callsOf(message),
    firstDeltas: deltas.filter((d) => d.id !== null),
    argumentDeltas: deltas.filter((d) => d.id === null).length,
    usage,
  };
}

// The SDK's own loop: runTools() calls the function and sends the results itself.
async function runTools(prompt, stream) {
  const runner = client.chat.completions.runTools({
    model,
    stream,
    messages: [{ role: "user", content: prompt }],
    tools: [
      {
        type: "function",
        function: {
          name: "get_weather",
          description: "Get the current weather of a city.",
          parameters: tools[0].function.parameters,
          function: getWeather,
          parse: JSON.parse,
        },
      },
    ],
  });
  let text = "";
  if (stream) runner.on("content", (delta) => { text += delta; });
  const final = await runner.finalContent();
  return {
    final,
    streamedText: stream ? text : null,
    roles: runner.messages.map((m) => m.role),
  };
}

const out = {};
out.byHand = await byHand("What is the weather in Paris?");
out.streamed = await streamed("What is the weather in Paris? (streamed)");
out.parallel = await byHand("Compare the weather of Paris and Tokyo.");
out.parallelStreamed = await streamed("Compare the weather of Paris and Tokyo. (streamed)");
out.runTools = await runTools("What is the weather in Paris? (runTools)", false);
out.runToolsStreamed = await runTools("What is the weather in Paris? (runTools, streamed)", true);
out.ran = ran;
out.node = process.version;
console.log(JSON.stringify(out));
