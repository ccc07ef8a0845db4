// Step credit for arithmetic solutions: the share of "a op b = c" lines that are right and use only the prompt's numbers or earlier results.
//
// A dense companion to the 0/1 `math` reward for small models: a completion that copies the numbers from the problem
// and computes the first step right earns part of the credit even when the final answer is wrong, so GRPO groups
// whose answers all fail can still rank their samples. Score = good lines / max(lines, options.min_lines or 1);
// no equation line = 0. A line is good when c equals a op b exactly (integer arithmetic; / must divide evenly) and a
// and b each appear in the prompt or as the result of an earlier good line. Plugin contract: see r1_format.js.

function reward(sample, options) {
  var known = {};
  var numbers = sample.prompt.match(/-?\d+/g) || [];
  for (var i = 0; i < numbers.length; i++) known[String(parseInt(numbers[i], 10))] = true;

  var re = /(-?\d+)\s*([-+*\/])\s*(-?\d+)\s*=\s*(-?\d+)/g;
  var lines = 0, good = 0, m;
  while ((m = re.exec(sample.completion)) !== null) {
    lines++;
    var a = parseInt(m[1], 10), b = parseInt(m[3], 10), c = parseInt(m[4], 10), v;
    if (m[2] === "+") v = a + b;
    else if (m[2] === "-") v = a - b;
    else if (m[2] === "*") v = a * b;
    else v = (b !== 0 && a % b === 0) ? a / b : NaN;
    var grounded = known[String(a)] === true && known[String(b)] === true;
    if (v === c && grounded) {
      good++;
      known[String(c)] = true;
    }
  }
  var minLines = options.min_lines ? parseInt(options.min_lines, 10) : 1;
  var score = lines === 0 ? 0 : good / Math.max(lines, minLines);
  return { score: score, reason: good + " of " + lines + " steps right", metrics: { steps: lines, good_steps: good } };
}
