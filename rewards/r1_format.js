// R1 format reward: 1 when the completion is <think>reasoning</think> followed by a non-empty answer, else 0.
//
// THE JAVASCRIPT PLUGIN CONTRACT (run by Jint, an interpreter inside PostTrain):
//   function reward(sample, options) { ... }
//     sample  = { prompt: "...", completion: "...", columns: { ...the dataset row's other fields... } }
//     options = this reward's `options:` from the recipe, e.g. {think_open: "<think>"} ({} when none)
//   return one of
//     a number                              the score
//     null                                  not applicable: the trainer ignores this reward for this sample
//     { score, reason, metrics }            score: number or null; reason: short text; metrics: {name: number}
// The first line of the file (a // comment) is the description `posttrain reward ls` shows; the reward's name is the
// file name without .js ("r1_format"). Each call runs in a fresh engine (globals do not survive between samples)
// under limits: 10M statements, 2 s, 64 MB, recursion depth 256, arrays of 1M, 1 s per regex. There is no access
// to files, network or .NET. Throwing an Error counts as an error for this sample (reported with file and line).
// Try it:  posttrain reward run rewards/r1_format.js --input cases.jsonl

function reward(sample, options) {
  var open = options.think_open || "<think>";
  var close = options.think_close || "</think>";
  var text = sample.completion;

  // R1 chat templates end the prompt with "<think>\n": the completion then starts inside the reasoning.
  if (sample.prompt.trimEnd().endsWith(open) && !text.trimStart().startsWith(open)) text = open + text;

  if (!text.trimStart().startsWith(open)) return { score: 0, reason: "does not start with " + open };
  if (count(text, open) !== 1) return { score: 0, reason: open + " occurs " + count(text, open) + " times" };
  if (count(text, close) !== 1) return { score: 0, reason: close + " occurs " + count(text, close) + " times" };

  var start = text.indexOf(open) + open.length;
  var end = text.indexOf(close);
  if (end < start) return { score: 0, reason: close + " comes before " + open };
  var reasoning = text.slice(start, end).trim();
  var answer = text.slice(end + close.length).trim();
  if (reasoning.length === 0) return { score: 0, reason: "empty reasoning" };
  if (answer.length === 0) return { score: 0, reason: "no answer after " + close };

  return { score: 1, reason: "ok", metrics: { reasoning_chars: reasoning.length, answer_chars: answer.length } };
}

// Non-overlapping occurrences of tag in text.
function count(text, tag) {
  return text.split(tag).length - 1;
}
