#!/usr/bin/env python3
"""The fold users write by hand in a Lambda: gzip + json from the standard library, counting write
calls and errors per (account, region, source, name[, error]) and minute. The comparison point for
Trailsight's ingest in `make bench`. Usage: python_fold.py DIR [MAX_FILES]"""
import gzip
import json
import os
import sys
import time
from collections import Counter

READ_PREFIXES = ("Describe", "Get", "List", "Head", "Lookup", "Search", "Scan", "Query", "BatchGet")


def files_under(root):
    for dirpath, _, names in os.walk(root):
        for name in names:
            if name.endswith(".json.gz"):
                yield os.path.join(dirpath, name)


def main():
    root = sys.argv[1]
    limit = int(sys.argv[2]) if len(sys.argv) > 2 else None
    paths = sorted(files_under(root))[:limit]
    blobs = [open(p, "rb").read() for p in paths]
    counts = Counter()
    records = 0
    start = time.perf_counter()
    for blob in blobs:
        for r in json.loads(gzip.decompress(blob))["Records"]:
            records += 1
            if r.get("eventCategory", "Management") != "Management":
                continue
            name = r.get("eventName", "")
            read_only = r.get("readOnly")
            if read_only is None:
                read_only = name.startswith(READ_PREFIXES)
            key = (r.get("recipientAccountId"), r.get("awsRegion"), r.get("eventSource"), name)
            minute = r.get("eventTime", "")[:16]
            if not read_only:
                counts[key + (None, minute)] += 1
            if r.get("errorCode"):
                counts[key + (r["errorCode"], minute)] += 1
    seconds = time.perf_counter() - start
    print(json.dumps({"files": len(blobs), "records": records, "cells": len(counts), "seconds": seconds}))


if __name__ == "__main__":
    main()
