#!/usr/bin/env python3
"""Turns one bench/run's results into a table on stdout and the generated part of BENCHMARKS.md.

    bench/report.py RESULTS_DIR OUTPUT_MD

RESULTS_DIR holds meta.json (written by bench/run), and per operation OP: vault-OP.json (the load
generator's report), raw-OP.out (pgbench's output) and raw-OP-log/ (pgbench's per-transaction
log), plus rss.log ("unix-time phase VmRSS-kB" samples). Only the text between the markers
BEGIN and END in OUTPUT_MD is rewritten; everything else in it (hand-written notes) is kept.
Exits 0 even when targets fail: the table says so.
"""

import datetime
import json
import math
import os
import platform
import re
import subprocess
import sys

BEGIN = "<!-- bench:begin -->"
END = "<!-- bench:end -->"

# The operations measured against the lean baseline too, and its target: UserGet and UserCreate
# at least as fast as the least schema doing the same durable work with a commit per operation.
LEAN_TARGET = {"userget": 1.0, "usercreate": 1.0, "roleget": None}

# name, API operation, single-record (p99 target applies), ratio target (None: none)
OPS = [
    ("userget", "UserGet", True, 1.0),
    ("roleget", "UserGet by a role xtoken (50 policies, masking)", True, None),
    ("usercreate", "UserCreate", True, 1.0),
    ("tokencreate", "TokenCreate", True, None),
    ("tokenget", "TokenGet", True, None),
    ("userbulk", "UserCreateBulk", False, 0.5),
]
P99_TARGET_MS = 10.0
RSS_TARGET_MB = 64.0

RAW_WORK = {
    "userget": "select by the email digest's unique index + audit insert, one transaction",
    "roleget": "the same as UserGet: select by the email digest's unique index + audit insert",
    "usercreate": "user insert (login/email/phone digests, unique) + audit insert, one transaction",
    "tokencreate": "token insert (uuid/base digests, unique) + audit insert, one transaction",
    "tokenget": "token select by the uuid digest's key + audit insert, one transaction",
    "userbulk": "one INSERT of BATCH users + one audit insert, one transaction",
}


def read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def percentile(sorted_values, q):
    if not sorted_values:
        return None
    # Nearest rank.
    index = min(len(sorted_values) - 1, max(0, math.ceil(q * len(sorted_values)) - 1))
    return sorted_values[index]


def raw_result(results, op, batch):
    """pgbench's figures for one script, with p50/p99 from its per-transaction log."""
    try:
        with open(os.path.join(results, f"raw-{op}.out")) as f:
            text = f.read()
    except OSError:
        return None
    tps = re.search(r"^tps = ([0-9.]+)", text, re.M)
    avg = re.search(r"^latency average = ([0-9.]+) ms", text, re.M)
    failed = re.search(r"^number of failed transactions: (\d+)", text, re.M)
    if not tps:
        return {"error": (text.strip().splitlines() or ["pgbench gave no result"])[-1]}
    latencies = []
    log_dir = os.path.join(results, f"raw-{op}-log")
    if os.path.isdir(log_dir):
        for name in os.listdir(log_dir):
            with open(os.path.join(log_dir, name)) as f:
                for line in f:
                    fields = line.split()
                    # client_id transaction_no time(us) script_no epoch epoch_us
                    if len(fields) >= 3 and fields[2].isdigit():
                        latencies.append(int(fields[2]) / 1000.0)
    latencies.sort()
    tps = float(tps.group(1))
    return {
        "ops_per_sec": tps,
        "rows_per_sec": tps * batch if op == "userbulk" else None,
        "avg_ms": float(avg.group(1)) if avg else None,
        "p50_ms": percentile(latencies, 0.50),
        "p99_ms": percentile(latencies, 0.99),
        "failed": int(failed.group(1)) if failed else 0,
    }


def rss_by_phase(results):
    peaks = {}
    try:
        with open(os.path.join(results, "rss.log")) as f:
            for line in f:
                fields = line.split()
                if len(fields) == 3 and fields[2].isdigit():
                    peaks[fields[1]] = max(peaks.get(fields[1], 0), int(fields[2]))
    except OSError:
        pass
    return peaks


def vault_log_errors(results, limit=5):
    """The vault's distinct ERROR log messages (never personal data, by the vault's rules), by count."""
    counts = {}
    try:
        with open(os.path.join(results, "vault.err"), errors="replace") as f:
            for line in f:
                line = re.sub(r"\x1b\[[0-9;]*m", "", line).strip()
                match = re.match(r"^\S+\s+ERROR\s+(.*)$", line)
                if match:
                    message = match.group(1)[:200]
                    counts[message] = counts.get(message, 0) + 1
    except OSError:
        pass
    return sorted(counts.items(), key=lambda item: -item[1])[:limit]


def machine(meta):
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    memory = "unknown"
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                    break
    except OSError:
        pass
    return [
        ("CPU", f"{os.cpu_count()} × {model} ({platform.machine()})"),
        ("Memory", memory),
        ("Kernel", platform.release()),
        ("Vault database", "SQLite file (WAL)" if meta.get("backend") == "sqlite" else "PostgreSQL"),
        ("PostgreSQL", meta.get("pg_version", "unknown")),
        ("Vault", meta.get("commit", "unknown")),
        ("Date", meta.get("date", "unknown")),
        ("Users loaded", f"{meta['users']:,} (through UserCreateBulk, {meta['load_seconds']:.0f} s)"),
        ("Tokens made before TokenGet", f"{meta['tokens']:,}" if "tokenget" in meta["ops"] else "none"),
        (
            "Load",
            f"{meta['connections']} connections, {meta['warmup']} s warm-up, {meta['seconds']} s measured "
            f"per operation; UserCreateBulk {meta['batch']:,} records a call",
        ),
    ]


def fmt(value, digits=1, suffix=""):
    if value is None:
        return "—"
    if isinstance(value, float) and value >= 1000:
        return f"{value:,.0f}{suffix}"
    return f"{value:,.{digits}f}{suffix}"


def verdict(ok):
    return "PASS" if ok else "FAIL"


def rows(results, meta):
    batch = meta["batch"]
    peaks = rss_by_phase(results)
    out = []
    for op, name, single, ratio_target in OPS:
        if op not in meta["ops"]:
            continue
        vault = read_json(os.path.join(results, f"vault-{op}.json"))
        raw = raw_result(results, op, batch)
        checks = []
        ratio = None
        if vault and raw and "error" not in raw:
            if op == "userbulk":
                ratio = vault["records_per_sec"] / raw["rows_per_sec"] if raw["rows_per_sec"] else None
            else:
                ratio = vault["ops_per_sec"] / raw["ops_per_sec"] if raw["ops_per_sec"] else None
        if op == "roleget":
            # The target: a role token costs at most a tenth of root's UserGet rate.
            root = read_json(os.path.join(results, "vault-userget.json"))
            if root and vault and root["ops_per_sec"]:
                share = vault["ops_per_sec"] / root["ops_per_sec"]
                checks.append((f"{share:.2f}× root UserGet ≥ 0.9×", share >= 0.9))
        lean = raw_result(results, f"lean-{op}", batch) if op in LEAN_TARGET else None
        lean_ratio = None
        if vault and lean and "error" not in lean and lean["ops_per_sec"]:
            lean_ratio = vault["ops_per_sec"] / lean["ops_per_sec"]
        if LEAN_TARGET.get(op) is not None:
            target = LEAN_TARGET[op]
            checks.append((f"ops/s ≥ {target:.1f}× lean", lean_ratio is not None and lean_ratio >= target))
        if ratio_target is not None:
            what = "records/s" if op == "userbulk" else "ops/s"
            checks.append((f"{what} ≥ {ratio_target:.1f}× raw", ratio is not None and ratio >= ratio_target))
        if single:
            p99 = vault["p99_ms"] if vault and vault["ops"] else None
            checks.append((f"p99 ≤ {P99_TARGET_MS:.0f} ms", p99 is not None and p99 <= P99_TARGET_MS))
        checks.append(("no errors", bool(vault) and vault["errors"] == 0 and vault["ops"] > 0))
        out.append(
            {
                "op": op,
                "name": name,
                "vault": vault,
                "raw": raw,
                "ratio": ratio,
                "lean": lean,
                "lean_ratio": lean_ratio,
                "rss_mb": peaks[op] / 1024 if op in peaks else None,
                "checks": checks,
            }
        )
    return out


def cells(row):
    vault, raw = row["vault"], row["raw"]
    if vault:
        if row["op"] == "userbulk":
            ops = f"{vault['ops_per_sec']:.2f} calls/s = {fmt(vault['records_per_sec'], 0)} rec/s"
        else:
            ops = fmt(vault["ops_per_sec"])
        vault_cells = [ops, fmt(vault["p50_ms"], 2), fmt(vault["p99_ms"], 2), str(vault["errors"])]
    else:
        vault_cells = ["no result", "—", "—", "—"]
    if raw and "error" not in raw:
        if row["op"] == "userbulk":
            raw_ops = f"{raw['ops_per_sec']:.2f} tx/s = {fmt(raw['rows_per_sec'], 0)} rows/s"
        else:
            raw_ops = fmt(raw["ops_per_sec"])
        raw_cells = [raw_ops, fmt(raw["p50_ms"], 2), fmt(raw["p99_ms"], 2), fmt(raw["avg_ms"], 2)]
    else:
        raw_cells = ["no result", "—", "—", "—"]
    ratio = f"{row['ratio']:.2f}×" if row["ratio"] is not None else "—"
    lean = row["lean"]
    lean_ops = fmt(lean["ops_per_sec"]) if lean and "error" not in lean else "—"
    lean_ratio = f"{row['lean_ratio']:.2f}×" if row["lean_ratio"] is not None else "—"
    checks = "; ".join(f"{what} {verdict(ok)}" for what, ok in row["checks"])
    return [row["name"], *vault_cells, *raw_cells, ratio, lean_ops, lean_ratio, fmt(row["rss_mb"]), checks]


HEADER = [
    "Operation",
    "Vault ops/s",
    "p50 ms",
    "p99 ms",
    "Errors",
    "Raw PG ops/s",
    "Raw p50 ms",
    "Raw p99 ms",
    "Raw avg ms",
    "Vault/raw",
    "Lean PG ops/s",
    "Vault/lean",
    "Vault RSS MB",
    "Targets",
]


def text_table(table):
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    lines = []
    for n, r in enumerate(table):
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_table(table):
    lines = ["| " + " | ".join(table[0]) + " |", "|" + "---|" * len(table[0])]
    lines += ["| " + " | ".join(r) + " |" for r in table[1:]]
    return "\n".join(lines)


def generated(meta, data, table, hwm_mb, rss_ok):
    errors = [
        f"- {r['name']}: {r['vault']['errors']} errors, first: `{r['vault']['first_error']}`"
        for r in data
        if r["vault"] and r["vault"]["errors"]
    ]
    errors += [f"- {r['name']} (raw): {r['raw']['error']}" for r in data if r["raw"] and "error" in r["raw"]]
    errors += [f"- {r['name']} (lean): {r['lean']['error']}" for r in data if r["lean"] and "error" in r["lean"]]
    errors += [f"- vault log, {count}×: `{message}`" for message, count in vault_log_errors(meta["results"])]
    batch = f"{meta['batch']:,}"
    raw_lines = [
        f"- {name}: {RAW_WORK[op].replace('BATCH', batch)} (`bench/sql/{op}.sql`)"
        for op, name, _, _ in OPS
        if op in meta["ops"]
    ]
    parts = [
        BEGIN,
        "<!-- Generated by bench/run: everything between these markers is rewritten by the next run. -->",
        "",
        f"Command: `{meta['command']}`",
        "",
        markdown_table(table),
        "",
        f"Vault peak RSS (VmHWM, whole run including the load): **{hwm_mb:.1f} MB**, "
        f"target ≤ {RSS_TARGET_MB:.0f} MB: **{verdict(rss_ok)}**. "
        "The RSS column is the largest VmRSS sampled (every second) while that operation ran.",
        "",
        "| Machine | |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in machine(meta)],
        "",
        "How it is measured: the vault is a release `bunker serve` on a fresh "
        + ("SQLite file (its embedded default)" if meta.get("backend") == "sqlite" else "PostgreSQL database")
        + "; the "
        "load generator (`bench/loadgen`, a separate process) keeps the given number of HTTP/1.1 "
        "keep-alive connections, each sending its next request as soon as the previous answer is in, "
        "and records every latency of the measured window in an HDR histogram; an error is an answer "
        "other than HTTP 200 with `\"status\":\"ok\"`. The raw baseline is pgbench "
        f"(`-M prepared -c {meta['connections']} -j 2`, same warm-up and duration) on a fresh database "
        "of the same server, with tables shaped like the vault's (`bench/sql/schema.sql`: same "
        "columns, keys and indexes; digests of 32 bytes; sealed columns of the sizes measured on the "
        f"vault's rows: key {meta['sizes']['keysize']} B, record {meta['sizes']['recsize']} B, "
        f"token {meta['sizes']['tokdata']} B, audit payload {meta['sizes']['payload']} B) preloaded "
        "with the same number of users. Each raw transaction does the durable work of one call:",
        "",
        *raw_lines,
        "",
        "The raw transactions leave out, by the baseline's definition, work the vault also does: "
        "the search-gram digests it writes with every new user (for UserSearch), and the audit "
        "event it writes per record of a bulk call (the raw bulk writes one audit row).",
        "",
        "The lean baseline (UserGet and UserCreate, `bench/sql/lean_*.sql`) is the least schema doing "
        "the same durable work, written by hand: one users table (the sealed key and record in one "
        "column, login, email and phone digests under unique indexes), one audit table with a "
        "bigserial key, a commit per operation, pgbench with prepared statements on a database of "
        "its own, preloaded alike. Vault/lean compares ops/s.",
        "",
        "Raw p50/p99 come from pgbench's per-transaction log, raw avg is pgbench's latency average. "
        "Vault/raw compares ops/s (records/s against rows/s for UserCreateBulk).",
    ]
    if errors:
        parts += ["", "Errors:", "", *errors]
    parts += [END]
    return "\n".join(parts)


def write_markdown(path, block):
    try:
        with open(path) as f:
            current = f.read()
    except OSError:
        current = None
    if current is not None and BEGIN in current and END in current:
        head, rest = current.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        text = head + block + tail
    elif current is not None:
        # No markers yet: put the generated part first, keep the rest below it.
        text = "# Benchmarks\n\n" + block + "\n\n" + current
    else:
        text = (
            "# Benchmarks\n\n"
            "Produced by `bench/run` (see the README's Benchmark section); the part between the "
            "markers is rewritten by each run, the rest is kept.\n\n"
            + block
            + "\n\n## Causes found and fixed\n\n(Hand-written: what the measurements showed and what was changed.)\n"
        )
    with open(path, "w") as f:
        f.write(text)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    results, output = sys.argv[1], sys.argv[2]
    meta = read_json(os.path.join(results, "meta.json"))
    if meta is None:
        sys.exit(f"report: no meta.json in {results}")
    meta["results"] = results
    data = rows(results, meta)
    table = [HEADER] + [cells(r) for r in data]
    hwm_mb = meta.get("vm_hwm_kb", 0) / 1024
    rss_ok = 0 < hwm_mb <= RSS_TARGET_MB
    print(text_table(table))
    print()
    print(f"Vault peak RSS (VmHWM): {hwm_mb:.1f} MB (target ≤ {RSS_TARGET_MB:.0f} MB: {verdict(rss_ok)})")
    for r in data:
        if r["vault"] and r["vault"]["errors"]:
            print(f"{r['name']}: first error: {r['vault']['first_error']}")
    for message, count in vault_log_errors(results):
        print(f"vault log, {count}x: {message}")
    if output:
        write_markdown(output, generated(meta, data, table, hwm_mb, rss_ok))
        print(f"wrote {output}")


if __name__ == "__main__":
    main()
