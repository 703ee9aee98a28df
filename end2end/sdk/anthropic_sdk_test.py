"""The official Anthropic Python SDK pointed at Paved's gateway (/llm/anthropic).

Run by scripts/test.sh against the real server, whose claude-sonnet-4-5 goes
to the local stub provider through Anthropic's Messages API. Sets up team
search's budget and a gateway key through the budgets API with the e2e admin
service token, then exercises messages, streaming, tool use, the model list,
refusals (a bad key, a request without max_tokens) and budget exhaustion the
way an application would. Exits non-zero on the first failure.
"""

import json
import os
import sys
import urllib.error
import urllib.request

import anthropic

BASE = os.environ.get("PAVED_URL", "http://127.0.0.1:3310")
ADMIN = os.environ["PAVED_ADMIN_TOKEN"]
MODEL = "claude-sonnet-4-5"
REPLY = "Hello from the stub."


def api(method, path, body=None):
    request = urllib.request.Request(
        BASE + path,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {ADMIN}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read() or b"null")


def check(condition, message):
    if not condition:
        print(f"FAIL: {message}", file=sys.stderr)
        sys.exit(1)
    print(f"ok: {message}")


budget = api("PUT", "/api/budgets/v1/teams/search", {"period": "monthly", "limit_cents": 100000})
check(budget["limit_cents"] == 100000, "a platform admin sets team search's budget through the API")
key = api("POST", "/api/budgets/v1/teams/search/keys", {"name": "anthropic-sdk-test"})["key"]
check(key.startswith("pvg_"), "a gateway key is created and shown once")

# The SDK sends the key as x-api-key; the gateway is the only retry loop.
client = anthropic.Anthropic(base_url=f"{BASE}/llm/anthropic", api_key=key, max_retries=0)

models = [m.id for m in client.models.list()]
check(MODEL in models, f"models.list shows the key's Anthropic models: {models}")

raw = client.messages.with_raw_response.create(
    model=MODEL,
    max_tokens=64,
    messages=[{"role": "user", "content": "Say hello"}],
)
message = raw.parse()
text = "".join(block.text for block in message.content if block.type == "text")
check(text == REPLY, f"a message comes back: {text!r}")
check(message.stop_reason == "end_turn", f"ending its turn: {message.stop_reason}")
check(message.usage.input_tokens == 10 and message.usage.output_tokens == 20, f"with its usage: {message.usage}")
check(raw.headers.get("x-paved-model") == MODEL and raw.headers.get("x-paved-deployment") == MODEL,
      f"the response headers name what served: {raw.headers.get('x-paved-model')}, {raw.headers.get('x-paved-deployment')}")

with client.messages.stream(
    model=MODEL,
    max_tokens=64,
    messages=[{"role": "user", "content": "Stream please"}],
) as stream:
    pieces = list(stream.text_stream)
    final = stream.get_final_message()
check("".join(pieces) == REPLY and len(pieces) > 1, f"a streamed message arrives piece by piece: {pieces!r}")
check(final.usage.input_tokens == 10 and final.usage.output_tokens == 20,
      f"and the final message carries the usage: {final.usage}")

tools = [{
    "name": "get_weather",
    "description": "The current weather in a city.",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string", "description": "The city's name"}},
        "required": ["city"],
    },
}]
question = {"role": "user", "content": "What is the weather in Paris?"}
message = client.messages.create(model=MODEL, max_tokens=256, tools=tools, messages=[question])
calls = [block for block in message.content if block.type == "tool_use"]
check(message.stop_reason == "tool_use" and len(calls) == 1, f"a question for a tool asks to use it: {message.content}")
check(calls[0].name == "get_weather" and calls[0].input == {"city": "Paris"},
      f"naming the tool and its input: {calls[0].name} {calls[0].input}")
answer = client.messages.create(
    model=MODEL,
    max_tokens=256,
    tools=tools,
    messages=[
        question,
        {"role": "assistant", "content": message.content},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": calls[0].id, "content": "18 °C, sunny"}]},
    ],
)
check(answer.stop_reason == "end_turn" and answer.content[0].text == REPLY, "the tool's result is answered")

with client.messages.stream(model=MODEL, max_tokens=256, tools=tools, messages=[question]) as stream:
    final = stream.get_final_message()
calls = [block for block in final.content if block.type == "tool_use"]
check(len(calls) == 1 and calls[0].name == "get_weather" and calls[0].input == {"city": "Paris"},
      f"a streamed tool call arrives whole: {final.content}")

try:
    anthropic.Anthropic(base_url=f"{BASE}/llm/anthropic", api_key="pvg_not-a-key", max_retries=0).messages.create(
        model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "hi"}]
    )
    check(False, "an invalid key is refused")
except anthropic.AuthenticationError as e:
    check(e.status_code == 401 and e.body["error"]["type"] == "authentication_error",
          f"an invalid key is refused (401, authentication_error): {e}")

# The SDK insists on max_tokens itself, so this request goes out by hand.
request = urllib.request.Request(
    f"{BASE}/llm/anthropic/v1/messages",
    method="POST",
    data=json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}).encode(),
    headers={"x-api-key": key, "anthropic-version": "2023-06-01", "Content-Type": "application/json"},
)
try:
    urllib.request.urlopen(request)
    check(False, "a message without max_tokens is refused")
except urllib.error.HTTPError as e:
    body = json.loads(e.read())
    check(e.code == 400 and body.get("type") == "error" and body["error"].get("type") == "invalid_request_error"
          and "max_tokens" in body["error"].get("message", ""),
          f"a message without max_tokens is refused in Anthropic's error shape (400): {body}")

try:
    client.messages.create(model="gpt-4o-mini", max_tokens=64, messages=[{"role": "user", "content": "hi"}])
    check(False, "a model not served through Anthropic's API is refused")
except anthropic.BadRequestError as e:
    check("/llm/v1/chat/completions" in str(e), f"a model not served through Anthropic's API is refused (400): {e}")

api("PUT", "/api/budgets/v1/teams/search", {"period": "monthly", "limit_cents": 0})
try:
    client.messages.create(model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "hi"}])
    check(False, "an exhausted budget refuses the call")
except anthropic.RateLimitError as e:
    message = str(e)
    check(e.status_code == 429, "an exhausted budget answers 429")
    check("team search budget of $0.00 per month is exhausted" in message, f"the SDK's error names the budget: {message}")
    check(e.body["type"] == "error" and e.body["error"]["type"] == "rate_limit_error"
          and e.body["error"].get("paved_code") == "budget_exceeded",
          f"in Anthropic's error shape, rate_limit_error with paved_code budget_exceeded: {e.body}")
    check(e.response.headers.get("x-paved-budget-remaining-cents") == "0", "and the remaining budget in a header")
finally:
    api("PUT", "/api/budgets/v1/teams/search", {"period": "monthly", "limit_cents": 100000})
print("anthropic SDK: all checks passed")
