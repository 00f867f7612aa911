#!/usr/bin/env python3
"""Merges the hand-written drafts in drafts/*.jsonl into corpus.csv.

Validates every label against the taxonomy, drops exact duplicates, gives each
comment a stable id from its text, and assigns the fixed 20 % test split per
(type, theme) stratum with a seeded shuffle so reruns are reproducible.
Run from anywhere: python3 datasets/corpus/merge_drafts.py
"""
import json, csv, glob, hashlib, random, tomllib, collections, os
HERE = os.path.dirname(os.path.abspath(__file__))
t = tomllib.load(open(os.path.join(HERE, '..', 'taxonomy', 'comfama.toml'),'rb'))
types = {x['id'] for x in t['types']}; areas = {x['id'] for x in t['areas']}
theme_area = {x['id']: x['area'] for x in t['themes']}
chans = {'telefono','buzon','presencial','web','correo'}
rows = []; seen = set(); bad = 0
for f in sorted(glob.glob(os.path.join(HERE, 'drafts', '*.jsonl'))):
    for i, line in enumerate(open(f, encoding='utf-8'), 1):
        line = line.strip()
        if not line: continue
        try: r = json.loads(line)
        except Exception as e: print('bad json', f, i, e); bad += 1; continue
        ok = r['type'] in types and r['area'] in areas and theme_area.get(r['theme']) == r['area'] and r['channel'] in chans and (r.get('secondary_type','') in types|{''})
        if not ok: print('bad labels', f, i, r); bad += 1; continue
        key = ' '.join(r['text'].lower().split())
        if key in seen: print('dup', f, i); continue
        seen.add(key); rows.append(r)
# Stable ids from the text; deterministic stratified 20 % test split by (type, theme).
for r in rows: r['id'] = 'c' + hashlib.sha256(r['text'].encode()).hexdigest()[:10]
rows.sort(key=lambda r: (r['area'], r['theme'], r['id']))
strata = collections.defaultdict(list)
for r in rows: strata[(r['type'], r['theme'])].append(r)
for key in sorted(strata):
    group = strata[key]; random.Random('%s/%s/20261128' % key).shuffle(group)
    n_test = round(len(group) * 0.2)
    for j, r in enumerate(group): r['split'] = 'test' if j < n_test else 'train'
with open(os.path.join(HERE, 'corpus.csv'), 'w', newline='', encoding='utf-8') as out:
    w = csv.writer(out, lineterminator='\n')
    w.writerow(['id','text','type','area','theme','channel','secondary_type','split','hard','rationale'])
    for r in rows:
        w.writerow([r['id'], r['text'], r['type'], r['area'], r['theme'], r['channel'], r.get('secondary_type',''), r['split'], 'true' if r.get('hard') else 'false', r.get('rationale','')])
c = collections.Counter
print('rows', len(rows), 'bad', bad)
print('types', c(r['type'] for r in rows)); print('areas', c(r['area'] for r in rows))
print('split', c(r['split'] for r in rows)); print('channels', c(r['channel'] for r in rows))
print('hard', sum(bool(r.get('hard')) for r in rows), 'secondary', sum(bool(r.get('secondary_type')) for r in rows))
th = c(r['theme'] for r in rows); print('min theme', min(th.values()), 'themes', len(th))
