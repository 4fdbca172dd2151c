#!/usr/bin/python3
"""Two settings of the mixture study side by side, seed by seed (Markdown on stdout).

Usage: tools/study/mixture_compare.py A=OUT_A/runs.csv B=OUT_B/runs.csv
Each runs.csv is written by tools/study/mixture_study.sh; A and B are the settings' names
(e.g. fp32, bf16). Prints, per config and pack, one row per seed both have (modes
covered, % high quality, KL of each), then each setting's mean ± sample standard
deviation (n - 1) over those seeds, its range, and B's mean minus A's. KL is averaged over
the runs that have a high-quality sample (it is null for the others)."""
import csv
import statistics
import sys

# field, label, scale, format of one run, format of means
METRICS = (('modes_covered', 'modes', 1, '%.0f', '%.2f'), ('high_quality_fraction', 'HQ %', 100, '%.1f', '%.2f'),
           ('kl_uniform', 'KL', 1, '%.3f', '%.3f'))


def load(arg):
    name, sep, path = arg.partition('=')
    if not sep:
        sys.exit(f'mixture_compare: {arg!r} is not NAME=runs.csv')
    with open(path) as f:
        rows = {(r['config'], r['pack'], int(r['seed'])): r for r in csv.DictReader(f)}
    return name, rows


def value(row, key, scale):
    v = row[key]
    return None if v in ('null', '') else scale * float(v)


def stats(values, fmt, fmt_run):
    """mean ± sd (with the number of runs when some are null), range, mean"""
    xs = [x for x in values if x is not None]
    if not xs:
        return 'n/a', 'n/a', None
    sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
    text = (fmt + ' ± ' + fmt) % (statistics.mean(xs), sd)
    if len(xs) < len(values):
        text += f' ({len(xs)} runs)'
    return text, (fmt_run + '–' + fmt_run) % (min(xs), max(xs)), statistics.mean(xs)


def main(args):
    if len(args) != 2:
        sys.exit(__doc__)
    (na, a), (nb, b) = load(args[0]), load(args[1])
    keys = sorted(set(a) & set(b))
    if not keys:
        sys.exit('mixture_compare: no config, pack and seed in both files')
    for cp in sorted({k[:2] for k in keys}):
        ks = [k for k in keys if k[:2] == cp]
        steps = sorted({a[k]['steps'] for k in ks} | {b[k]['steps'] for k in ks})
        print(f'### {cp[0]}, pack {cp[1]}, {len(ks)} seeds, {"/".join(steps)} steps\n')
        head = ' | '.join(f'{lab} {n}' for _, lab, _, _, _ in METRICS for n in (na, nb))
        print(f'| seed | {head} |')
        print('|---' * (1 + 2 * len(METRICS)) + '|')
        for k in ks:
            cells = []
            for key, _, scale, fmt, _ in METRICS:
                for rows in (a, b):
                    v = value(rows[k], key, scale)
                    cells.append('null' if v is None else fmt % v)
            print(f'| {k[2]} | ' + ' | '.join(cells) + ' |')
        print(f'\n| metric | {na} mean ± sd | {na} range | {nb} mean ± sd | {nb} range | {nb} − {na} |')
        print('|---|---|---|---|---|---|')
        for key, lab, scale, fmt_run, fmt in METRICS:
            sa, ra, ma = stats([value(a[k], key, scale) for k in ks], fmt, fmt_run)
            sb, rb, mb = stats([value(b[k], key, scale) for k in ks], fmt, fmt_run)
            diff = fmt % (mb - ma) if ma is not None and mb is not None else 'n/a'
            print(f'| {lab} | {sa} | {ra} | {sb} | {rb} | {diff} |')
        print()


if __name__ == '__main__':
    main(sys.argv[1:])
