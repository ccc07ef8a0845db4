// Character variety: the share of distinct characters among a completion's characters (0 for an empty completion).
//
// A reward with variance inside every GRPO group even for a random-init model (whose completions are random token
// strings that all run to the length limit, so a length or correctness reward would give every sample the same
// score): used to time real GRPO updates at full model size (scripts/gpu/experiments/real_size_16b.sh,
// recipes/grpo-16b-hostopt.yaml). It teaches nothing useful. Plugin contract: see r1_format.js.

function reward(sample, options) {
  var text = sample.completion;
  if (text.length === 0) return 0;
  var seen = {}, distinct = 0;
  for (var i = 0; i < text.length; i++) {
    var ch = text.charAt(i);
    if (seen[ch] !== true) { seen[ch] = true; distinct++; }
  }
  return distinct / text.length;
}
