#!/usr/bin/env python3
"""Writes cases.json: the conversations each template of templates/ is rendered with (by render_expected.py,
with transformers, on the GPU machine) to make expected.jsonl."""
import json

CHAT = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hi there!\n"},
    {"role": "assistant", "content": "  Hello \u2014 how can I help? "},
    {"role": "user", "content": "Tell me\n a joke"},
]
PARTS = [
    {"role": "user", "content": [{"type": "text", "text": "look"}, {"type": "image"}, {"type": "text", "text": "here"}]},
    {"role": "assistant", "content": "A cat."},
]
UNICODE = [
    {"role": "user", "content": "Gr\u00fc\u00dfe \U0001F600 \u2014 \u4f60\u597d\u00a0"},
    {"role": "assistant", "content": "ok \"quoted\" 'single' \\ back"},
]
TWO_TURNS = CHAT + [{"role": "assistant", "content": "Why did the chicken...\n"}]

cases = []
def add(template, name, messages, agp, **kwargs):
    cases.append({"id": f"{template}__{name}__agp{int(agp)}", "template": template, "messages": messages,
                  "add_generation_prompt": agp, "kwargs": kwargs})

for t in ["macros", "namespace_loops", "filters", "slicing_values", "whitespace", "generation"]:
    add(t, "chat", CHAT, True)
    add(t, "chat", TWO_TURNS, False)
    add(t, "unicode", UNICODE, False)
add("macros", "parts", PARTS, True)
for mode in ["ok", "raise", "undefined_attr", "type_add", "append", "none_in", "compare"]:
    add("tests_errors", mode, CHAT, False, mode=mode)

with open("cases.json", "w", encoding="utf-8") as f:
    json.dump(cases, f, ensure_ascii=False, indent=1)
print(len(cases), "cases")
