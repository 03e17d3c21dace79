#!/usr/bin/env python3
"""Independent oracle: recount every statistic and attribution of Insight records from raw logs.

Usage:
    python3 tests/oracle/oracle.py [--include-read-apis] [--ignore-aws-service-callers]
                                   DATASET_DIR RECORDS...

DATASET_DIR is what `trailsight replay` read; RECORDS are what it wrote: files of JSON lines (its
stdout), `{"Records": [...]}` files (gzip or not), or folders of them (`replay --out DIR`). Pass
the same counting options replay was run with. Prints each difference as
`<eventID> <state> <series> <field>: expected <x>, got <y>`, then a summary (records checked,
numbers checked, differences by field kind); exits 1 if there is any difference, 2 on bad input.

Nothing here comes from the detector's code: the rules are the documented ones, each with its
source (C = shared/docs/CLOUDTRAIL_INSIGHTS.md, the contract; D = docs/DETECTION.md; S =
docs/SECURITY.md; R = README.md; I = issue 11). Where the docs are silent the rule was read off
the Rust source and is marked [code: file].

Which records count
 1. Input files: gzip or plain; `{"Records": [...]}`, a JSON array of records, or JSON lines (R).
    Files that are none of these (LICENSE, YAML, digests) are not logs. Paths under
    CloudTrail-Digest/, CloudTrail-Insight/, CloudTrail-NetworkActivity/, CloudTrail-Aggregated/
    are skipped (C §5).
 2. Duplicate `eventID`s within one file count once (D "What is counted"). Across files they
    count each time (D says "within a file"; C §1 only says they can occur).
 3. Insight records (`eventType` AwsCloudTrailInsight or `eventCategory` Insight) never count (D).
 4. A record without a time (rule 9), eventSource, eventName or awsRegion is not an event [code:
    classify.rs]. Account = `recipientAccountId`, else `userIdentity.accountId` [code: record.rs].
    The account must be 12 digits, the region match ^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\\d+$ (at
    most 32 chars), the event source [a-z0-9.-]{1,128}, the event name and error code printable
    ASCII without spaces, 1..128 chars; otherwise the record is unusable (S; exact patterns from
    the doc comments of shared/src/ident.rs).
 5. Management event: `eventCategory` "Management", or, when `eventCategory` is absent,
    `managementEvent` not false (C §1: absent on old records means management). Other
    categories (Data, NetworkActivity) are excluded (C §1, D).
 6. Read-only: `readOnly` when present; else the API name starts with Describe, Get, List, Head,
    Lookup, Search, Scan, Query or BatchGet (C §1, D; plain prefixes as the docs write them).
 7. Call-rate key (account, region, eventSource, eventName): management writes, failed or not
    (D); with --include-read-apis every management event (R, D).
 8. Error-rate key (the same + errorCode): management events, read or write, with a non-empty
    `errorCode` (C §1; empty string = no error [code: classify.rs]).
 9. Minute = UTC minute of eventTime (C §1); a record without `eventTime` (a log shipper's JSON
    lines, R "Data") uses its `@timestamp` [code: record.rs]. Events dated more than a day after
    this machine's clock are skipped (D "Clock").
10. --ignore-aws-service-callers drops service calls from counts and attributions alike (I,
    "Callers"): a console call is never a service call (`sessionCredentialFromConsole` true,
    or `invokedBy`/`userAgent` = signin.amazonaws.com, console.amazonaws.com or
    console.*.amazonaws.com); otherwise `userIdentity.type` AWSService, or an `invokedBy` ending
    in .amazonaws.com, is a service call.

Statistics of a record (C §2-3, D "Records", I "Exact statistics")
 - start = Start's eventTime (for an End: its Start's, else eventTime - insightDuration).
 - baseline window = [00:00 UTC of (start's day - 7 days), start); baselineDuration = its
   minutes; baseline.average = key events in it / baselineDuration (empty minutes count).
 - insight window = [eventTime, eventTime + insightDuration) for a Start (insightDuration must
   be 1), [start, End's eventTime) for an End (End = Start + insightDuration, checked).
   insight.average = key events in it / its minutes (0 for a drop, naturally).
 - Attributions: userIdentityArn, userAgent, and for ApiCallRateInsight errorCode ("null" = no
   error). Per value: its events in the window / the window's minutes. Baseline lists over the
   baseline window, insight lists over the record's window. An event without an ARN or user
   agent gives no value for that attribute (C: "`userIdentity.arn` is optional"; the contract's
   example has an empty userAgent list). At most 5 values, largest average first; on ties at the
   cut any of the tied values is accepted. Values longer than 1,024 characters are compared as
   their first 1,023 characters + "…" (D "Delivery"; exact cut from insight.rs [code]).
 - Numbers compare with relative tolerance 1e-9 (records print full f64 precision).
 - A record still open when the logs end has only its Start; it is checked alone.

`make oracle` (mk/oracle.mk, part of `make test`) runs tests/oracle/run.sh: each folder of
testdata/real and all of them together, and a simulated 9-day scenario (seed 1), each replayed and
then checked here.
"""

import collections
import datetime as dt
import gzip
import json
import os
import re
import sys
from bisect import bisect_left

READ_PREFIXES = ("Describe", "Get", "List", "Head", "Lookup", "Search", "Scan", "Query", "BatchGet")
SKIP_DIRS = ("CloudTrail-Digest", "CloudTrail-Insight", "CloudTrail-NetworkActivity", "CloudTrail-Aggregated")
REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-[0-9]+$")
SOURCE = re.compile(r"^[a-z0-9.-]{1,128}$")
NAME = re.compile(r"^[!-~]{1,128}$")
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
MAX_VALUE = 1024
REL_TOL = 1e-9


def minute_of(text):
    """UTC minute number (since the epoch) of an RFC 3339 time, or None."""
    if not isinstance(text, str):
        return None
    try:
        t = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.timezone.utc)
    return int((t - EPOCH).total_seconds() // 60)


def iso(minute):
    return (EPOCH + dt.timedelta(minutes=minute)).strftime("%Y-%m-%dT%H:%M:%SZ")


def read_json_file(path):
    """The records of a log file, or None when it is not one."""
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError):
            return None
    text = raw.decode("utf-8", "replace").strip()
    if not text or text[0] not in "[{":
        return None
    try:
        doc = json.loads(text)
    except ValueError:
        doc = None
    if doc is None:  # JSON lines
        out = []
        for line in text.splitlines():
            if line.strip():
                try:
                    out.append(json.loads(line))
                except ValueError:
                    return None
        return out
    if isinstance(doc, dict):
        recs = doc.get("Records")
        if isinstance(recs, list):
            return recs
        return [doc] if "eventTime" in doc else None
    return doc if isinstance(doc, list) else None


def walk(paths, skip=()):
    for p in paths:
        if os.path.isfile(p):
            yield p
            continue
        for root, dirs, files in os.walk(p):
            dirs[:] = sorted(d for d in dirs if d not in skip)
            for name in sorted(files):
                yield os.path.join(root, name)


def s(v):
    """A string field, leniently: numbers and booleans as text, anything else absent."""
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    return None


def is_console(name):
    n = (name or "").strip().lower()
    return n in ("signin.amazonaws.com", "console.amazonaws.com") or (
        n.startswith("console.") and n.endswith(".amazonaws.com"))


def is_service_call(r, ui):
    if r.get("sessionCredentialFromConsole") in (True, "true"):
        return False
    if is_console(s(ui.get("invokedBy"))) or is_console(s(r.get("userAgent"))):
        return False
    by = s(ui.get("invokedBy")) or ""
    return ui.get("type") == "AWSService" or by.endswith(".amazonaws.com")


def load_events(dataset, include_read, ignore_services):
    """key -> sorted list of (minute, arn, agent, error attribution); plus counters."""
    stats = collections.Counter()
    events = collections.defaultdict(list)
    future = (dt.datetime.now(dt.timezone.utc) - EPOCH).total_seconds() // 60 + 24 * 60
    for path in walk([dataset], SKIP_DIRS):
        recs = read_json_file(path)
        if recs is None:
            stats["files not logs"] += 1
            continue
        stats["files read"] += 1
        seen = set()
        for r in recs:
            if not isinstance(r, dict):
                continue
            stats["records"] += 1
            eid = r.get("eventID")
            if isinstance(eid, str):
                if eid in seen:
                    stats["duplicates"] += 1
                    continue
                seen.add(eid)
            if r.get("eventType") == "AwsCloudTrailInsight" or r.get("eventCategory") == "Insight":
                continue
            minute = minute_of(r.get("eventTime") if "eventTime" in r else r.get("@timestamp"))
            source, name, region = s(r.get("eventSource")), s(r.get("eventName")), s(r.get("awsRegion"))
            if minute is None or source is None or name is None or region is None:
                stats["unusable"] += 1
                continue
            cat = r.get("eventCategory")
            management = cat == "Management" if cat is not None else r.get("managementEvent") is not False
            if not management:
                continue
            ro = r.get("readOnly")
            read_only = ro if isinstance(ro, bool) else name.startswith(READ_PREFIXES)
            err = s(r.get("errorCode")) or None
            call = include_read or not read_only
            if not call and err is None:
                continue
            ui = r.get("userIdentity") if isinstance(r.get("userIdentity"), dict) else {}
            account = s(r.get("recipientAccountId")) or s(ui.get("accountId"))
            if not (account and len(account) == 12 and account.isascii() and account.isdigit()
                    and len(region) <= 32 and REGION.match(region) and SOURCE.match(source)
                    and source.strip(".") and NAME.match(name) and (err is None or NAME.match(err))):
                stats["unusable"] += 1
                continue
            if minute > future:
                stats["future"] += 1
                continue
            if ignore_services and is_service_call(r, ui):
                stats["service calls ignored"] += 1
                continue
            stats["counted"] += 1
            arn, agent = s(ui.get("arn")), s(r.get("userAgent"))
            if call:
                events[(account, region, source, name, None)].append((minute, arn, agent, err or "null"))
            if err is not None:
                events[(account, region, source, name, err)].append((minute, arn, agent, None))
    for evs in events.values():
        evs.sort(key=lambda e: e[0])
    return events, stats


def load_records(paths):
    out = []
    for path in walk(paths):
        with open(path, "rb") as f:
            raw = f.read()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        text = raw.decode("utf-8").strip()
        if not text:
            continue
        try:
            doc = json.loads(text)
            recs = doc.get("Records", [doc]) if isinstance(doc, dict) else doc
        except ValueError:
            recs = [json.loads(line) for line in text.splitlines() if line.strip()]
        out.extend(r for r in recs if isinstance(r, dict) and r.get("eventType") == "AwsCloudTrailInsight")
    return out


class MinuteIndex:
    def __init__(self, events):
        self.events = events
        self.minutes = {k: [e[0] for e in v] for k, v in events.items()}

    def window(self, key, lo, hi):
        evs = self.events.get(key, [])
        mins = self.minutes.get(key, [])
        return evs[bisect_left(mins, lo):bisect_left(mins, hi)]


def shown(value):
    return value if len(value) <= MAX_VALUE else value[:MAX_VALUE - 1] + "…"


def close(a, b):
    return abs(a - b) <= REL_TOL * max(abs(a), abs(b)) or abs(a - b) < 1e-15


class Checker:
    def __init__(self):
        self.records = 0
        self.numbers = 0
        self.diffs = []

    def diff(self, rec, field, expected, got):
        d = rec["insightDetails"]
        series = "%s/%s/%s:%s%s" % (rec.get("recipientAccountId"), rec.get("awsRegion"), d.get("eventSource"),
                                    d.get("eventName"), "[%s]" % d["errorCode"] if d.get("errorCode") else "")
        self.diffs.append((field, "%s %s %s %s %s: expected %s, got %s" % (
            rec.get("eventID"), d.get("state"), rec.get("eventTime"), series, field, expected, got)))

    def number(self, rec, field, expected, got):
        self.numbers += 1
        if not isinstance(got, (int, float)) or isinstance(got, bool) or not close(expected, got):
            self.diff(rec, field, expected, got)

    def attribution(self, rec, field, evs, slot, minutes, got):
        counts = collections.Counter(shown(e[slot]) for e in evs if e[slot] is not None)
        expected = {v: c / minutes for v, c in counts.items()}
        if not isinstance(got, list):
            self.diff(rec, field, "a list", got)
            return
        want = min(5, len(expected))
        if len(got) != want:
            self.diff(rec, field + ".length", want, len(got))
        reported = set()
        for i, item in enumerate(got):
            value, avg = item.get("value"), item.get("average")
            if value not in expected:
                self.numbers += 1
                self.diff(rec, "%s[%r]" % (field, value), "no such value in the window (0)", avg)
                continue
            if value in reported:
                self.diff(rec, "%s[%r]" % (field, value), "listed once", "listed again")
            reported.add(value)
            self.number(rec, "%s[%r]" % (field, value), expected[value], avg)
            if i and isinstance(avg, (int, float)) and isinstance(got[i - 1].get("average"), (int, float)) \
                    and avg > got[i - 1]["average"]:
                self.diff(rec, field + ".order", "descending averages", [g.get("average") for g in got])
        floor = min((expected[v] for v in reported), default=None)
        for value, avg in sorted(expected.items(), key=lambda kv: -kv[1]):
            if value in reported or floor is None and want == 0:
                continue
            if len(reported) < want or (floor is not None and avg > floor and not close(avg, floor)):
                self.diff(rec, "%s[%r]" % (field, value), "%r in the top 5" % avg, "missing")
                break

    def check(self, rec, start_of, index):
        self.records += 1
        d = rec["insightDetails"]
        ctx = d.get("insightContext", {})
        st = ctx.get("statistics", {})
        itype = d.get("insightType")
        key = (rec.get("recipientAccountId"), rec.get("awsRegion"), d.get("eventSource"), d.get("eventName"),
               d.get("errorCode") if itype == "ApiErrorRateInsight" else None)
        t = minute_of(rec.get("eventTime"))
        dur = st.get("insightDuration")
        if t is None or not isinstance(dur, int) or dur < 1:
            self.diff(rec, "eventTime/insightDuration", "a minute and a positive duration", (rec.get("eventTime"), dur))
            return
        if d.get("state") == "Start":
            start, end = t, t + dur
            self.numbers += 1
            if dur != 1:
                self.diff(rec, "insightDuration", 1, dur)
        else:
            start, end = start_of.get(rec.get("sharedEventID"), t - dur), t
            self.numbers += 1
            if end - start != dur:
                self.diff(rec, "insightDuration", end - start, dur)
            if end <= start:
                return
        base_lo = (start // 1440 - 7) * 1440
        base_min = start - base_lo
        self.numbers += 1
        if st.get("baselineDuration") != base_min:
            self.diff(rec, "baselineDuration", base_min, st.get("baselineDuration"))
        base_evs = index.window(key, base_lo, start)
        ins_evs = index.window(key, start, end)
        self.number(rec, "baseline.average", len(base_evs) / base_min, st.get("baseline", {}).get("average"))
        self.number(rec, "insight.average", len(ins_evs) / (end - start), st.get("insight", {}).get("average"))
        wanted = ["userIdentityArn", "userAgent"] + (["errorCode"] if itype == "ApiCallRateInsight" else [])
        got = {a.get("attribute"): a for a in ctx.get("attributions", [])}
        if sorted(got) != sorted(wanted):
            self.diff(rec, "attributions", wanted, sorted(got))
        for slot, attr in enumerate(wanted, start=1):
            a = got.get(attr, {})
            self.attribution(rec, "attr.%s.baseline" % attr, base_evs, slot, base_min, a.get("baseline"))
            self.attribution(rec, "attr.%s.insight" % attr, ins_evs, slot, end - start, a.get("insight"))


def main(argv):
    opts = {a for a in argv if a.startswith("--")}
    args = [a for a in argv if not a.startswith("--")]
    unknown = opts - {"--include-read-apis", "--ignore-aws-service-callers"}
    if unknown or len(args) < 2:
        print(__doc__.split("\n\n")[1] if not unknown else "unknown options: %s" % sorted(unknown), file=sys.stderr)
        return 2
    events, stats = load_events(args[0], "--include-read-apis" in opts, "--ignore-aws-service-callers" in opts)
    records = load_records(args[1:])
    index = MinuteIndex(events)
    start_of = {r.get("sharedEventID"): minute_of(r.get("eventTime"))
                for r in records if r.get("insightDetails", {}).get("state") == "Start"}
    checker = Checker()
    for rec in sorted(records, key=lambda r: (r.get("eventTime", ""), r.get("eventID", ""))):
        checker.check(rec, start_of, index)
    for _, line in checker.diffs:
        print(line)
    kinds = collections.Counter(re.sub(r"\[.*", "", f) for f, _ in checker.diffs)
    print("oracle: %s: %s; %d series" % (args[0], ", ".join("%s %d" % kv for kv in sorted(stats.items())), len(events)))
    print("oracle: %d records checked (%d Start), %d numbers checked, %d differences%s" % (
        checker.records, len(start_of), checker.numbers, len(checker.diffs),
        "" if not kinds else " (" + ", ".join("%s %d" % kv for kv in sorted(kinds.items())) + ")"))
    return 1 if checker.diffs else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
