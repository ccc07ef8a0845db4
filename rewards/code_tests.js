// Test-based code reward: runs the JavaScript function the completion defines on the `tests` column's cases; score = share passed.
//
// Columns it reads:
//   entry_point  the function's name, e.g. "add" (or options.entry_point)
//   tests        a list (or a JSON string of a list) of cases {input: [arguments...], output: expected}
// The code is the last ```js / ```javascript fenced block of the answer (the text after </think>), or the whole
// answer when there is no fence. Outputs are compared as JSON (JSON.stringify(actual) === JSON.stringify(expected)).
// Set options.partial = false for all-or-nothing scoring.
//
// Plugin contract: see r1_format.js. This example runs the model's code INSIDE the plugin's Jint engine: it has no
// file/network/.NET access and stops at the plugin limits, but a completion that loops forever uses up the whole
// call's budget, and the call then ends as a timeout (null score, counted), not as 0. Real code rewards run
// programs in the sandbox worker (the built-in `code` reward); this file shows the shape of a test-based reward.

function reward(sample, options) {
  var entry = options.entry_point || sample.columns.entry_point;
  var tests = sample.columns.tests;
  if (!entry || tests === undefined || tests === null) return null; // not a code sample
  if (typeof tests === "string") tests = JSON.parse(tests);

  var code = extractCode(answerOf(sample.completion));
  var fn;
  try {
    // A function scope keeps the completion's declarations out of this plugin's globals.
    fn = new Function(code + "\n;return typeof " + entry + " === 'function' ? " + entry + " : undefined;")();
  } catch (e) {
    return { score: 0, reason: "code does not load: " + e, metrics: { passed: 0, total: tests.length } };
  }
  if (typeof fn !== "function") return { score: 0, reason: "no function " + entry, metrics: { passed: 0, total: tests.length } };

  var passed = 0, firstFailure = null;
  for (var i = 0; i < tests.length; i++) {
    var t = tests[i];
    try {
      var actual = fn.apply(null, t.input);
      if (JSON.stringify(actual) === JSON.stringify(t.output)) passed++;
      else if (firstFailure === null) firstFailure = "case " + i + ": got " + JSON.stringify(actual) + ", want " + JSON.stringify(t.output);
    } catch (e) {
      if (firstFailure === null) firstFailure = "case " + i + " threw " + e;
    }
  }
  var all = passed === tests.length;
  var score = options.partial === false ? (all ? 1 : 0) : (tests.length === 0 ? 0 : passed / tests.length);
  return { score: score, reason: all ? "all tests pass" : firstFailure, metrics: { passed: passed, total: tests.length } };
}

// The text after the last </think> (the whole completion without think tags).
function answerOf(completion) {
  var i = completion.lastIndexOf("</think>");
  return i < 0 ? completion : completion.slice(i + "</think>".length);
}

// The last ```js or ```javascript block, else the text itself.
function extractCode(text) {
  var re = /```(?:javascript|js)[^\n]*\n([\s\S]*?)```/g;
  var m, last = null;
  while ((m = re.exec(text)) !== null) last = m[1];
  return last === null ? text : last;
}
