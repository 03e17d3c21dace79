#!/usr/bin/env python3
"""Writes one CloudTrail log file of about N MB uncompressed from the records of simulated files.
Usage: big_file.py DATA_DIR OUT.json.gz N_MB"""
import gzip
import json
import os
import sys

root, out, megabytes = sys.argv[1], sys.argv[2], int(sys.argv[3])
target = megabytes * 1_000_000
written = 0
with gzip.open(out, "wt", compresslevel=6) as gz:
    gz.write('{"Records":[')
    first = True
    for dirpath, _, names in sorted(os.walk(root)):
        for name in sorted(names):
            if not name.endswith(".json.gz") or written >= target:
                continue
            for record in json.loads(gzip.decompress(open(os.path.join(dirpath, name), "rb").read()))["Records"]:
                text = json.dumps(record, separators=(",", ":"))
                gz.write(("" if first else ",") + text)
                first = False
                written += len(text) + 1
    gz.write("]}")
print(json.dumps({"file": out, "uncompressed_mb": written / 1e6, "compressed_mb": os.path.getsize(out) / 1e6}))
