# Held-out code-synth rows by kind: new constants of trained families vs the 8 test-only families (by the function
# name in the prompt). Usage: python3 split_by_held_out_kind.py samples.jsonl (eval output) or greedy-rows.jsonl
import json,collections,re,sys
fam_only={'sumsquares','rounddown','lastchars','ispalindrome','minlist','belowonly','isbetween','parity'}
def kind(p):
    m=re.search(r'`(?:static \w+(?:\[\])? )?(\w+)\(',p)
    return 'family' if m and m.group(1).lower() in fam_only else 'constants'
rows=[json.loads(l) for l in open(sys.argv[1])]
c=collections.defaultdict(lambda:[0,0])
for r in rows:
    key=(r['model'],r.get('mode','greedy'),kind(r['prompt']))
    c[key][0]+=r['correct']; c[key][1]+=1
for k,v in sorted(c.items()): print(k, v, f"{v[0]/v[1]:.3f}")
