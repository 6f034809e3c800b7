// Drives a claude-max-api server's Responses API with the official openai npm SDK and prints
// what it parsed as one JSON object (tests/responses/test_clients.py checks it). The server's
// model (the stand-in) calls get_weather on a turn without tool results and answers
// "It is <result>." after one. Any exception where none is expected fails the script.
//
//   BASE_URL=http://127.0.0.1:3456/v1 API_KEY=... node responses_check.mjs
import OpenAI from "openai";

const client = new OpenAI({
  baseURL: process.env.BASE_URL, apiKey: process.env.API_KEY, maxRetries: 0, timeout: 90_000,
});
const tools = [{
  type: "function", name: "get_weather", description: "The weather of a city.", strict: false,
  parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
}];
const out = {};

// A tool loop, not streamed: the call, then its result through previous_response_id.
const first = await client.responses.create({ model: "sonnet", input: "Weather in Paris?", tools });
const call = first.output.find((item) => item.type === "function_call");
out.first = {
  status: first.status, types: first.output.map((item) => item.type),
  call: { name: call.name, arguments: JSON.parse(call.arguments), call_id: call.call_id },
  text: first.output_text,
};
const second = await client.responses.create({
  model: "sonnet", previous_response_id: first.id, tools,
  input: [{ type: "function_call_output", call_id: call.call_id, output: "sunny" }],
});
out.second = { status: second.status, text: second.output_text, previous: second.previous_response_id === first.id };

// The same loop streamed, through the SDK's stream helper (its accumulator is strict).
const stream = client.responses.stream({ model: "sonnet", input: "Weather in Rome?", tools });
const types = [];
stream.on("event", (event) => types.push(event.type));
const streamed = await stream.finalResponse();
const streamedCall = streamed.output.find((item) => item.type === "function_call");
const stream2 = client.responses.stream({
  model: "sonnet", previous_response_id: streamed.id, tools,
  input: [{ type: "function_call_output", call_id: streamedCall.call_id, output: "rainy" }],
});
let deltas = "";
stream2.on("response.output_text.delta", (event) => { deltas += event.delta; });
const streamed2 = await stream2.finalResponse();
out.stream = {
  first: types[0], last: types[types.length - 1], types: [...new Set(types)].sort(),
  call: streamedCall.name, text: streamed2.output_text, deltas,
};

// Raw events (stream: true on create): sequence numbers in order, one id.
const raw = await client.responses.create({ model: "sonnet", input: "Weather in Oslo?", tools, stream: true });
const numbers = [];
const ids = new Set();
for await (const event of raw) {
  numbers.push(event.sequence_number);
  if (event.response) ids.add(event.response.id);
}
out.raw = { ordered: numbers.every((n, i) => n === i), count: numbers.length, ids: ids.size };

// Stored responses.
const retrieved = await client.responses.retrieve(second.id);
const items = await client.responses.inputItems.list(second.id);
out.stored = {
  same: retrieved.id === second.id && retrieved.output_text === second.output_text,
  items: items.data.map((item) => item.type),
};
await client.responses.delete(first.id);
try {
  await client.responses.retrieve(first.id);
  out.deleted = null;
} catch (error) {
  out.deleted = { class: error.constructor.name, status: error.status, code: error.code };
}
try {
  await client.responses.create({ model: "sonnet", input: "x", previous_response_id: "resp_nope" });
  out.unknown = null;
} catch (error) {
  out.unknown = { class: error.constructor.name, status: error.status, code: error.code, param: error.param };
}
console.log(JSON.stringify(out));
