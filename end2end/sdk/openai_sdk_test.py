"""The official OpenAI Python SDK pointed at Paved's gateway (/llm/v1).

Run by scripts/test.sh against the real server, whose models go to the local
stub provider. Sets up team search's budget and a gateway key through the
budgets API with the e2e admin service token, then exercises chat, streaming,
embeddings, idempotent retries, the Responses API, a model with several
deployments (team-chat), a Claude model behind chat completions and budget
exhaustion the way an application would. Exits non-zero on the first failure.
"""

import json
import os
import sys
import urllib.request

import openai

BASE = os.environ.get("PAVED_URL", "http://127.0.0.1:3310")
ADMIN = os.environ["PAVED_ADMIN_TOKEN"]


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
key = api("POST", "/api/budgets/v1/teams/search/keys", {"name": "openai-sdk-test"})["key"]
check(key.startswith("pvg_"), "a gateway key is created and shown once")

# The gateway is the only retry loop: the SDK's own retries are off.
client = openai.OpenAI(base_url=f"{BASE}/llm/v1", api_key=key, max_retries=0)

models = [m.id for m in client.models.list()]
check(all(m in models for m in ("gpt-4o-mini", "text-embedding-3-small", "claude-sonnet-4-5", "team-chat")),
      f"models.list shows the key's models: {models}")

reply = client.chat.completions.create(
    model="gpt-4o-mini",
    messages=[{"role": "user", "content": "Say hello"}],
    max_tokens=50,
)
check(reply.choices[0].message.content == "Hello from the stub.", "a chat completion comes back")
check(reply.usage.prompt_tokens == 10 and reply.usage.completion_tokens == 20, "with its usage")

stream = client.chat.completions.create(
    model="gpt-4o-mini",
    messages=[{"role": "user", "content": "Stream please"}],
    stream=True,
)
text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
check(text == "Hello from the stub.", f"a streamed completion arrives chunk by chunk: {text!r}")

stream = client.chat.completions.create(
    model="gpt-4o-mini",
    messages=[{"role": "user", "content": "Stream with usage"}],
    stream=True,
    stream_options={"include_usage": True},
)
usage = [chunk.usage for chunk in stream if chunk.usage is not None]
check(len(usage) == 1 and usage[0].total_tokens == 30, "a stream asked for usage ends with it")

vectors = client.embeddings.create(model="text-embedding-3-small", input=["alpha", "beta"])
check(len(vectors.data) == 2 and len(vectors.data[0].embedding) > 0, "embeddings come back, one per input")

first = client.chat.completions.create(
    model="gpt-4o-mini",
    messages=[{"role": "user", "content": "Charge me once"}],
    extra_headers={"Idempotency-Key": "sdk-retry-1"},
)
again = client.chat.completions.with_raw_response.create(
    model="gpt-4o-mini",
    messages=[{"role": "user", "content": "Charge me once"}],
    extra_headers={"Idempotency-Key": "sdk-retry-1"},
)
check(again.headers.get("idempotent-replayed") == "true" and again.parse().id == first.id,
      "a retry with the same Idempotency-Key gets the first answer again")

try:
    client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "hi"}],
        extra_headers={"Idempotency-Key": "sdk-retry-1"},
    )
    check(False, "the same key with another body is refused")
except openai.UnprocessableEntityError as e:
    check("different request body" in str(e), "the same key with another body is refused (422)")

# The Responses API (/llm/v1/responses), answered and streamed.
response = client.responses.create(model="gpt-4o-mini", input="Say hello", max_output_tokens=50)
check(response.output_text == "Hello from the stub.", f"a Responses API answer comes back: {response.output_text!r}")
check(response.usage is not None and response.usage.input_tokens == 10 and response.usage.output_tokens == 20
      and response.usage.total_tokens == 30, f"with its usage: {response.usage}")

stream = client.responses.create(model="gpt-4o-mini", input="Stream please", max_output_tokens=50, stream=True)
deltas, completed = [], None
for event in stream:
    if event.type == "response.output_text.delta":
        deltas.append(event.delta)
    elif event.type == "response.completed":
        completed = event.response
check("".join(deltas) == "Hello from the stub.", f"a streamed response arrives as output_text deltas: {deltas!r}")
check(completed is not None and completed.usage is not None and completed.usage.total_tokens == 30,
      "and ends with response.completed carrying usage")

try:
    client.responses.create(model="gpt-4o-mini", input="And then?", previous_response_id="resp_x")
    check(False, "previous_response_id is refused")
except openai.BadRequestError as e:
    check(e.status_code == 400 and "`previous_response_id` is not accepted" in str(e),
          f"previous_response_id is refused with a 400 that says why: {e}")

# A model with two weighted deployments (and a fallback): the response
# headers name the model and the deployment that served.
seen = set()
for _ in range(4):
    raw = client.chat.completions.with_raw_response.create(
        model="team-chat",
        messages=[{"role": "user", "content": "Route me"}],
        max_tokens=50,
    )
    check(raw.parse().choices[0].message.content == "Hello from the stub.", "team-chat answers")
    check(raw.headers.get("x-paved-model") == "team-chat", f"x-paved-model names it: {raw.headers.get('x-paved-model')}")
    deployment = raw.headers.get("x-paved-deployment")
    check(deployment in ("team-chat/primary", "team-chat/secondary"), f"x-paved-deployment names a deployment: {deployment}")
    seen.add(deployment)
print(f"team-chat was served by {sorted(seen)}")

# With the stub's controls (LLM_STUB_URL, from scripts/test.sh): both
# deployments fail once, and the request falls back to claude-sonnet-4-5.
stub = os.environ.get("LLM_STUB_URL")
if stub:
    push = urllib.request.Request(f"{stub}/_stub/push", method="POST",
                                  data=json.dumps([{"status": 500}, {"status": 500}]).encode())
    with urllib.request.urlopen(push) as pushed:
        check(json.loads(pushed.read())["pushed"] == 2, "the stub will fail the next two requests")
    raw = client.chat.completions.with_raw_response.create(
        model="team-chat",
        messages=[{"role": "user", "content": "Fall back"}],
        max_tokens=50,
    )
    check(raw.parse().choices[0].message.content == "Hello from the stub.", "team-chat still answers")
    check(raw.headers.get("x-paved-model") == "claude-sonnet-4-5" and raw.headers.get("x-paved-attempts") == "3",
          f"from its fallback after both deployments failed: x-paved-model {raw.headers.get('x-paved-model')}, "
          f"x-paved-deployment {raw.headers.get('x-paved-deployment')}, x-paved-attempts {raw.headers.get('x-paved-attempts')}")

# A Claude model behind OpenAI's chat completions (translated to Anthropic's Messages API).
reply = client.chat.completions.create(
    model="claude-sonnet-4-5",
    messages=[{"role": "user", "content": "Say hello"}],
    max_tokens=50,
)
check(reply.choices[0].message.content == "Hello from the stub.", "claude-sonnet-4-5 answers a chat completion")
check(reply.usage.prompt_tokens == 10 and reply.usage.completion_tokens == 20, "with its usage, translated")

api("PUT", "/api/budgets/v1/teams/search", {"period": "monthly", "limit_cents": 0})
try:
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    check(False, "an exhausted budget refuses the call")
except openai.RateLimitError as e:
    message = str(e)
    check(e.status_code == 429, "an exhausted budget answers 429")
    check("team search budget of $0.00 per month is exhausted" in message, f"the SDK's error names the budget: {message}")
    check(e.body.get("type") == "budget_exceeded", "with type budget_exceeded")
    check(e.response.headers.get("x-paved-budget-remaining-cents") == "0", "and the remaining budget in a header")
    check(e.response.headers.get("x-paved-budget-reset", "") != "", "and when it resets")

api("PUT", "/api/budgets/v1/teams/search", {"period": "monthly", "limit_cents": 100000})
print("openai SDK: all checks passed")
