# Copy metrics of an eval's samples.jsonl (the diag phase of code_pipeline.sh): per task, rows whose completion names
# the asked function, and rows whose completion contains every constant (|c| >= 10) of the description; greedy rows only.
# Usage: python3 copy_metrics.py samples.jsonl code-rl-rows [code-train-rows ...]
import json, re, sys
def metrics(path, task):
    n=name=const=consts_total=solved=0
    for l in open(path):
        d=json.loads(l)
        if d['task']!=task or d.get('mode','greedy')!='greedy': continue   # greedy rows (an eval may add sampled ones)
        n+=1; solved+=d['correct']
        p=d['prompt']; c=d['completion']
        m=re.search(r'`(?:static \w+(?:\[\])? )?(\w+)\(', p)
        if m and re.search(r'\b'+re.escape(m.group(1))+r'\(', c): name+=1
        desc=p.split('\n')[0]
        if 'that' in desc: desc=desc[desc.find('that'):]   # the constants, not the signature's digits
        nums=[x for x in re.findall(r'-?\d+', desc) if abs(int(x))>=10]
        if nums:
            consts_total+=1
            if all(re.search(r'(?<![\d])'+re.escape(x.lstrip('-'))+r'(?!\d)', c) for x in nums): const+=1
    return dict(rows=n, solved=solved, name_copied=name, rows_with_consts=consts_total, consts_copied=const)
for t in sys.argv[2:]: print(t, metrics(sys.argv[1], t))
