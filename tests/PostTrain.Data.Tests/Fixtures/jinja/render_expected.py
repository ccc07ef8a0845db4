#!/usr/bin/env python3
"""Renders cases.json with transformers' own chat-template renderer
(transformers.utils.chat_template_utils.render_jinja_template, the function apply_chat_template uses) and writes
expected.jsonl: per case the text, the {% generation %} character spans (return_assistant_tokens_mask=True),
or the error transformers raised. Special tokens passed: bos_token "<s>", eos_token "</s>".
Usage: python3 render_expected.py <fixture dir> <output file>"""
import json, os, sys
import transformers
from transformers.utils.chat_template_utils import render_jinja_template

root, out = sys.argv[1], sys.argv[2]
cases = json.load(open(os.path.join(root, "cases.json"), encoding="utf-8"))
special = {"bos_token": "<s>", "eos_token": "</s>"}
with open(out, "w", encoding="utf-8") as f:
    for c in cases:
        template = open(os.path.join(root, "templates", c["template"] + ".jinja"), encoding="utf-8").read()
        row = {"id": c["id"], "transformers": transformers.__version__}
        try:
            rendered, spans = render_jinja_template(
                conversations=[c["messages"]], tools=None, documents=None, chat_template=template,
                return_assistant_tokens_mask="{% generation %}" in template,
                add_generation_prompt=c["add_generation_prompt"], **{**special, **c["kwargs"]})
            row["expected"] = rendered[0]
            row["generation"] = [list(s) for s in spans[0]] if spans else []
        except Exception as e:  # the template raised: record what and why
            row["error_type"] = type(e).__module__ + "." + type(e).__name__
            row["error_message"] = str(e)
        f.write(json.dumps(row, ensure_ascii=False) + "\n")
print(len(cases), "cases rendered with transformers", transformers.__version__)
