#!/usr/bin/python3
"""The evaluations during training of mixture-study runs as one CSV (stdout).

Usage: tools/study/mixture_curves.py RUN_DIR ... > curves.csv
Each RUN_DIR is a run of tools/study/mixture_study.sh (<config>_pack<P>_s<seed>/, with train.eval
enabled so its metrics.jsonl holds mode-counting records). One row per evaluation:
config, pack, seed, batch (from the run's config.yaml), step, modes_covered,
high_quality_fraction, kl_uniform (null when no sample is high quality), run."""
import json
import os
import re
import sys


def config_value(path, key):
    """A scalar `  key: value` of the train section of a resolved config.yaml."""
    with open(path) as f:
        for line in f:
            m = re.match(r'\s+%s:\s*(\S+)' % re.escape(key), line)
            if m:
                return m.group(1)
    return 'null'


def main(runs):
    if not runs:
        sys.exit(__doc__)
    print('config,pack,seed,batch,step,modes_covered,high_quality_fraction,kl_uniform,run')
    for run in runs:
        run = run.rstrip('/')
        m = re.fullmatch(r'(.+)_pack(\d+)_s(\d+)', os.path.basename(run))
        if not m:
            sys.exit(f'mixture_curves: {run} is not named <config>_pack<P>_s<seed>')
        batch = config_value(os.path.join(run, 'config.yaml'), 'batch')
        with open(os.path.join(run, 'metrics.jsonl')) as f:
            for line in f:
                r = json.loads(line)
                if 'modes_covered' not in r:
                    continue
                kl = r.get('kl_uniform')
                print(f"{m.group(1)},{m.group(2)},{m.group(3)},{batch},{r['step']},{r['modes_covered']},"
                      f"{r['high_quality_fraction']},{'null' if kl is None else kl},{run}")


if __name__ == '__main__':
    main(sys.argv[1:])
