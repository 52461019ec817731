"""The plain-text page served at ``GET /`` (teachers read it with curl)."""

from __future__ import annotations

HELP_TEXT = """\
ipyllm teaching server
======================

A fake LLM API for classrooms and tests. Every route streams the same deterministic
demo answer (Markdown with a heading, lists, code, a table and math), framed the way
the real provider frames it. Model names are echoed back; a model name containing
"reasoning" (try demo-reasoning) also streams a short reasoning text first.

Routes (POST unless marked GET)
  /v1/chat/completions      OpenAI Chat Completions (SSE; "stream": true, stream_options)
  /v1/completions           OpenAI legacy completions (SSE)
  /v1/responses             OpenAI Responses (named SSE events)
  /v1/messages              Anthropic Messages (named SSE events; "stream": true)
  /api/chat, /api/generate  Ollama (NDJSON, streams unless "stream": false)
  /v1beta/models/MODEL:streamGenerateContent?alt=sse   Gemini (SSE, CRLF)
  /v1beta/models/MODEL:generateContent                 Gemini, not streamed
  GET /v1/models            OpenAI model list
  GET /api/tags             Ollama model list
  Token limits (max_tokens, max_output_tokens, num_predict, maxOutputTokens) cut the
  answer and report "length" (or the provider's own word for it).

Data in, data out
  images    each route's own image form (image_url data URLs, input_image, Anthropic's
            base64 image blocks, Gemini inline_data, Ollama's "images"): the answer
            begins with how many arrived, their media types and pixel sizes
  schemas   response_format json_schema, text.format, a forced Anthropic tool,
            responseJsonSchema / responseSchema, Ollama "format": the answer is JSON
            that fits the schema, the same for the same question (JSON modes too)

Options: put /with/KEY=VALUE,KEY=VALUE in front of any route, for example
  base URL  http://HOST:PORT/with/status=429,retry_after=1,times=1/v1
  pacing    rate=TOKENS_PER_S (0 = as fast as possible)  latency=S  words=N (answer length)
  errors    status=CODE   the provider's JSON error with that HTTP status
            retry_after=S  retry_after_ms=MS   add retry-after / retry-after-ms headers
            body=html | body=empty   a proxy's HTML error page, or no body at all
  proxies   html=1   200 with an HTML page (captive portal)    empty=1   200, empty body
            whole=1  the whole JSON answer, as if "stream": true were ignored
            after_end=done | after_end=junk   a [DONE] (LiteLLM's proxy) or a broken
                     event after the stream's end event
  streams   error_after=N      the provider's in-stream error event after N tokens
            drop_after=N       cut the connection after N tokens (no finish, no [DONE])
            drop_after_bytes=N cut the connection after exactly N body bytes
            stall_after=N,stall=S   go silent for S seconds (default 3600) after N tokens
            malformed_after=N  send one event with broken JSON after N tokens
            error_style=llamacpp | error_style=openrouter   with error_after, fail as
                     llama.cpp (an "error:" field, then [DONE]) or OpenRouter (an error
                     beside finish_reason "error", then [DONE]) do; OpenAI-style routes
  replay    replay=FILE   serve a capture from the fixtures directory (--fixtures DIR)
            split=N | split=random,seed=K | split=event   re-chunk the body (in N-byte,
                     random or one-event pieces); delay=S between pieces
  times=N   faults (status, html, empty, whole, replay, *_after, after_end) hit only the
            first N requests with this exact option string; later ones are answered
            normally.

Examples
  curl -N http://HOST:PORT/v1/chat/completions -H 'content-type: application/json' \\
    -d '{"model": "demo", "stream": true, "messages": [{"role": "user", "content": "Hi"}]}'
  curl -N http://HOST:PORT/with/rate=5,error_after=10/api/chat \\
    -d '{"model": "demo", "messages": [{"role": "user", "content": "Hi"}]}'
"""
