// Test classes run one after another: built-in models are initialised from torch's global random generator, so two
// fixtures loading tiny-moe at the same time on different threads would get different weights.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
