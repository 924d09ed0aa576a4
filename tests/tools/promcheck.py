#!/usr/bin/env python3
"""A strict checker of the Prometheus text exposition format 0.0.4, for the tests.

    promcheck.py [FILE]          check FILE (default stdin); exit 0 if valid, else 1 with one
                                 line per problem on stderr ("LINE: what")
    promcheck.py --json [FILE]   also print the samples as JSON on stdout:
                                 {"name{l1=\\"v\\",...}": value, ...} (labels sorted by name)

What it checks, beyond what a lenient scraper accepts:
- every line is a comment (# HELP NAME TEXT, # TYPE NAME TYPE, other # text), or a sample
  NAME[{LABEL="VALUE",...}] VALUE [TIMESTAMP]; names and label names match the grammar; label
  values use only the escapes \\\\, \\" and \\n; values parse as floats (NaN, +Inf, -Inf too);
- the text ends with a newline; no blank lines;
- HELP and TYPE at most once per family, both before its first sample; every family has
  both (sluice always writes them); all samples of a family are contiguous;
- counters are named *_total and are never negative;
- histograms: per label set, _bucket lines with le in increasing order, counts never
  decreasing, the last le="+Inf"; a _sum and a _count, the _count equal to the +Inf bucket;
- no series (name and label set) appears twice.
"""
import json
import math
import re
import sys

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r"[a-zA-Z_][a-zA-Z0-9_]*"
TYPES = ("counter", "gauge", "histogram", "summary", "untyped")


def parse_float(s):
    if s in ("NaN", "+Inf", "-Inf", "Inf"):
        return float(s.replace("Inf", "inf").replace("NaN", "nan"))
    if not re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", s):
        raise ValueError(s)
    return float(s)


def parse_labels(s, pos, errs, ln):
    """Parses {a="b",...} at s[pos] == '{'; returns (dict, position after '}')."""
    labels = {}
    pos += 1
    while True:
        if pos < len(s) and s[pos] == "}":
            return labels, pos + 1
        m = re.compile(LABEL).match(s, pos)
        if not m:
            raise ValueError("bad label name at column %d" % (pos + 1))
        name = m.group(0)
        pos = m.end()
        if s[pos:pos + 2] != '="':
            raise ValueError("expected =\" after label %s" % name)
        pos += 2
        val = []
        while True:
            if pos >= len(s):
                raise ValueError("unterminated label value")
            c = s[pos]
            if c == "\\":
                e = s[pos + 1:pos + 2]
                if e not in ("\\", '"', "n"):
                    raise ValueError("bad escape \\%s in label value" % e)
                val.append({"\\": "\\", '"': '"', "n": "\n"}[e])
                pos += 2
            elif c == '"':
                pos += 1
                break
            elif c == "\n":
                raise ValueError("newline in label value")
            else:
                val.append(c)
                pos += 1
        if name in labels:
            raise ValueError("label %s twice" % name)
        labels[name] = "".join(val)
        if pos < len(s) and s[pos] == ",":
            pos += 1
            continue
        if pos < len(s) and s[pos] == "}":
            return labels, pos + 1
        raise ValueError("expected , or } at column %d" % (pos + 1))


def series_key(name, labels):
    return name + "{" + ",".join('%s="%s"' % (k, labels[k]) for k in sorted(labels)) + "}"


def check(text):
    errs = []
    samples = {}
    if not text.endswith("\n"):
        errs.append("end: the text does not end with a newline")
    help_, type_ = {}, {}
    seen_sample = set()     # families with a sample already
    closed = set()          # families whose samples ended (another family came after)
    current = None
    hist = {}               # (family, labels without le) -> {"buckets": [(le, v)], "sum", "count"}

    def family_of(name):
        for suf in ("_bucket", "_sum", "_count"):
            if name.endswith(suf) and type_.get(name[:-len(suf)]) in ("histogram", "summary"):
                return name[:-len(suf)], suf
        return name, ""

    for ln, line in enumerate(text.split("\n")[:-1] if text.endswith("\n") else text.split("\n"), 1):
        if line == "":
            errs.append("%d: blank line" % ln)
            continue
        if line.startswith("#"):
            m = re.fullmatch(r"# (HELP|TYPE) (%s)(?: (.*))?" % NAME, line)
            if not m:
                if re.match(r"#\s*(HELP|TYPE)\b", line):
                    errs.append("%d: malformed %s line" % (ln, line.split()[1] if len(line.split()) > 1 else line))
                continue
            kind, fam, rest = m.group(1), m.group(2), m.group(3) or ""
            if fam in seen_sample:
                errs.append("%d: %s for %s after its samples" % (ln, kind, fam))
            if kind == "HELP":
                if fam in help_:
                    errs.append("%d: second HELP for %s" % (ln, fam))
                if re.search(r"\\[^\\n]", rest.replace("\\\\", "")):
                    errs.append("%d: bad escape in HELP of %s" % (ln, fam))
                help_[fam] = rest
            else:
                if fam in type_:
                    errs.append("%d: second TYPE for %s" % (ln, fam))
                if rest not in TYPES:
                    errs.append("%d: unknown type '%s' for %s" % (ln, rest, fam))
                type_[fam] = rest
                if rest == "counter" and not fam.endswith("_total"):
                    errs.append("%d: counter %s is not named *_total" % (ln, fam))
            continue
        m = re.compile(NAME).match(line)
        if not m:
            errs.append("%d: not a sample: %r" % (ln, line))
            continue
        name = m.group(0)
        pos = m.end()
        labels = {}
        try:
            if pos < len(line) and line[pos] == "{":
                labels, pos = parse_labels(line, pos, errs, ln)
            rest = line[pos:]
            if not rest.startswith(" "):
                raise ValueError("expected a space before the value")
            parts = rest[1:].split(" ")
            if len(parts) not in (1, 2) or parts[0] == "":
                raise ValueError("expected VALUE [TIMESTAMP]")
            value = parse_float(parts[0])
            if len(parts) == 2 and not re.fullmatch(r"-?\d+", parts[1]):
                raise ValueError("bad timestamp %r" % parts[1])
        except ValueError as e:
            errs.append("%d: %s" % (ln, e))
            continue
        fam, suf = family_of(name)
        if fam not in type_:
            errs.append("%d: sample of %s before (or without) its TYPE" % (ln, fam))
        if fam not in help_:
            errs.append("%d: sample of %s before (or without) its HELP" % (ln, fam))
        if fam != current:
            if fam in closed or fam in seen_sample:
                errs.append("%d: samples of %s are not together" % (ln, fam))
            if current is not None:
                closed.add(current)
            current = fam
        seen_sample.add(fam)
        key = series_key(name, labels)
        if key in samples:
            errs.append("%d: series %s twice" % (ln, key))
        samples[key] = value
        t = type_.get(fam)
        if t == "counter" and not (value >= 0):
            errs.append("%d: counter %s is %s" % (ln, key, parts[0]))
        if t == "histogram":
            base = dict(labels)
            le = base.pop("le", None)
            h = hist.setdefault((fam, series_key("", base)), {"buckets": [], "sum": None, "count": None, "line": ln})
            if suf == "_bucket":
                if le is None:
                    errs.append("%d: bucket without le" % ln)
                    continue
                try:
                    lev = parse_float(le)
                except ValueError:
                    errs.append("%d: le=%r is not a number" % (ln, le))
                    continue
                h["buckets"].append((lev, value, ln))
            elif suf == "_sum":
                h["sum"] = value
            elif suf == "_count":
                h["count"] = value
            else:
                errs.append("%d: histogram %s has a plain sample" % (ln, fam))
    for (fam, lk), h in hist.items():
        where = "%s%s" % (fam, lk)
        b = h["buckets"]
        if not b:
            errs.append("%d: histogram %s has no buckets" % (h["line"], where))
            continue
        for i in range(1, len(b)):
            if not b[i][0] > b[i - 1][0]:
                errs.append("%d: %s: le not increasing" % (b[i][2], where))
            if b[i][1] < b[i - 1][1]:
                errs.append("%d: %s: bucket counts not cumulative" % (b[i][2], where))
        if not math.isinf(b[-1][0]):
            errs.append("%d: %s: the last bucket is not le=\"+Inf\"" % (b[-1][2], where))
        if h["sum"] is None:
            errs.append("%d: %s: no _sum" % (h["line"], where))
        if h["count"] is None:
            errs.append("%d: %s: no _count" % (h["line"], where))
        elif h["count"] != b[-1][1]:
            errs.append("%d: %s: _count %s differs from the +Inf bucket %s" % (h["line"], where, h["count"], b[-1][1]))
    for fam in set(help_) | set(type_):
        if fam not in help_:
            errs.append("end: %s has a TYPE but no HELP" % fam)
        if fam not in type_:
            errs.append("end: %s has a HELP but no TYPE" % fam)
    return errs, samples


def main():
    args = sys.argv[1:]
    as_json = False
    if args and args[0] == "--json":
        as_json = True
        args = args[1:]
    text = open(args[0], encoding="utf-8").read() if args else sys.stdin.read()
    errs, samples = check(text)
    for e in errs:
        print(e, file=sys.stderr)
    if as_json and not errs:
        json.dump(samples, sys.stdout, sort_keys=True)
        print()
    return 1 if errs else 0


if __name__ == "__main__":
    sys.exit(main())
