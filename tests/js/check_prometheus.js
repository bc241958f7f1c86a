#!/usr/bin/env node
// Strict check of Prometheus text expositions (format 0.0.4), for tests/e2e_metrics.sh.
// Each file is parsed by an independent parser from npm (parse-prometheus-text-format, a port
// of the Prometheus Go text parser: it throws on a malformed line), and checked line by line
// here against the format and our naming rules:
//   - every family has exactly one # HELP and one # TYPE, before its samples; families are
//     contiguous; a sample belongs to the family of its TYPE (histograms: _bucket/_sum/_count);
//   - names and label names are valid, label values properly escaped, no duplicate label
//     name, no duplicate series; values are Go floats; the file ends with a newline, no CR;
//   - counters end in _total; gauges do not; a name that counts bytes ends in _bytes or
//     _bytes_total; a duration or a point in time ends in _seconds (no _ms, no milliseconds);
//   - histograms: le ascending and cumulative, the last bucket is +Inf and equals _count,
//     _sum present, for every label set.
// The parser's view (families and sample counts) must agree with ours.
// Usage: node check_prometheus.js [--require NAME]... FILE...   (exit 0 ok, 1 not, 2 usage)
'use strict';
const fs = require('fs');
let parse;
try {
    parse = require('parse-prometheus-text-format');
} catch (e) {
    console.error('check_prometheus: parse-prometheus-text-format is not installed: run scripts/deps.sh (npm ci in tests/js)');
    process.exit(2);
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const FLOAT = /^(?:[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?Inf|NaN)$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

// Labels of a sample line from just after '{'; returns [labels, index after '}'] or throws.
function parseLabels(line, i) {
    const labels = [];
    for (;;) {
        if (line[i] === '}') return [labels, i + 1];
        const eq = line.indexOf('=', i);
        if (eq < 0) throw new Error('label without =');
        const name = line.slice(i, eq);
        if (!LABEL.test(name)) throw new Error(`bad label name '${name}'`);
        if (line[eq + 1] !== '"') throw new Error(`label ${name}: value not quoted`);
        let j = eq + 2, value = '';
        for (;; j++) {
            if (j >= line.length) throw new Error(`label ${name}: unterminated value`);
            const c = line[j];
            if (c === '"') break;
            if (c === '\\') {
                const n = line[++j];
                if (n === 'n') value += '\n';
                else if (n === '\\' || n === '"') value += n;
                else throw new Error(`label ${name}: bad escape \\${n}`);
            } else value += c;
        }
        if (labels.some(l => l[0] === name)) throw new Error(`duplicate label ${name}`);
        labels.push([name, value]);
        i = j + 1;
        if (line[i] === ',') i++;
        else if (line[i] !== '}') throw new Error(`label ${name}: expected , or } after the value`);
    }
}

function unitProblems(name, type) {
    const p = [];
    if (type === 'counter' && !name.endsWith('_total')) p.push('a counter must end in _total');
    if (type !== 'counter' && name.endsWith('_total')) p.push(`a ${type} must not end in _total`);
    const base = name.replace(/_total$/, '');
    if (/(^|_)(ms|millis|milliseconds|usec|microseconds)(_|$)/.test(base)) p.push('durations are in _seconds');
    if (/bytes/.test(base) && !base.endsWith('_bytes')) p.push('a byte count must end in _bytes (or _bytes_total)');
    if (/(duration|latency|_time(_|$)|timestamp|seconds|expiry|next_update)/.test(base) && !base.endsWith('_seconds'))
        p.push('a duration or a point in time must end in _seconds');
    if (type === 'histogram' && !/_(seconds|bytes)$/.test(base)) p.push('a histogram must end in its unit');
    return p;
}

function check(text) {
    const errors = [];
    const err = (n, m) => errors.push(`line ${n}: ${m}`);
    if (text.includes('\r')) errors.push('carriage return in the exposition');
    if (!text.endsWith('\n')) errors.push('the exposition does not end with a newline');
    const fams = new Map(); // name -> {help, type, samples, closed}
    const order = [];
    const series = new Set();
    const histo = new Map(); // family -> labelkey -> {buckets: [[le, v]], sum, count}
    let cur = null;
    const lines = text.split('\n');
    if (lines[lines.length - 1] === '') lines.pop();
    lines.forEach((line, k) => {
        const n = k + 1;
        if (line === '') return err(n, 'empty line');
        if (line.startsWith('#')) {
            const m = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
            if (!m) return line.startsWith('# ') ? undefined : err(n, 'comment without a space after #');
            const [, kw, name, rest] = m;
            if (!NAME.test(name)) return err(n, `bad metric name '${name}'`);
            let f = fams.get(name);
            if (f && f.closed) return err(n, `family ${name} appears again after another family`);
            if (!f) {
                if (cur) cur.closed = true;
                f = { name, help: null, type: null, samples: 0, closed: false };
                fams.set(name, f);
                order.push(name);
            }
            cur = f;
            if (f.samples) return err(n, `# ${kw} ${name} after its samples`);
            if (kw === 'HELP') {
                if (f.help !== null) return err(n, `second # HELP for ${name}`);
                if (!rest.trim()) return err(n, `empty # HELP for ${name}`);
                f.help = rest;
            } else {
                if (f.type !== null) return err(n, `second # TYPE for ${name}`);
                if (!TYPES.has(rest)) return err(n, `unknown type '${rest}'`);
                f.type = rest;
            }
            return;
        }
        const nm = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line);
        if (!nm) return err(n, 'sample line without a metric name');
        const name = nm[0];
        let i = name.length, labels = [];
        if (line[i] === '{') {
            try {
                [labels, i] = parseLabels(line, i + 1);
            } catch (e) {
                return err(n, `${name}: ${e.message}`);
            }
        }
        const rest = line.slice(i);
        const vm = /^ (\S+)( -?\d+)?$/.exec(rest);
        if (!vm) return err(n, `${name}: expected ' VALUE [TIMESTAMP]', got '${rest}'`);
        if (!FLOAT.test(vm[1])) return err(n, `${name}: value '${vm[1]}' is not a float`);
        if (!cur) return err(n, `${name}: sample before any # TYPE`);
        let suffix = '';
        if (name !== cur.name) {
            const s = name.slice(cur.name.length);
            const ok = name.startsWith(cur.name) &&
                ((cur.type === 'histogram' && ['_bucket', '_sum', '_count'].includes(s)) ||
                 (cur.type === 'summary' && ['_sum', '_count'].includes(s)));
            if (!ok) return err(n, `sample ${name} is not of family ${cur.name} (every family needs # HELP and # TYPE)`);
            suffix = s;
        }
        const key = name + '{' + labels.map(l => `${l[0]}=${JSON.stringify(l[1])}`).sort().join(',') + '}';
        if (series.has(key)) return err(n, `duplicate series ${key}`);
        series.add(key);
        cur.samples++;
        if (cur.type === 'histogram') {
            const le = labels.find(l => l[0] === 'le');
            const lk = labels.filter(l => l[0] !== 'le').map(l => `${l[0]}=${l[1]}`).sort().join(',');
            if (!histo.has(cur.name)) histo.set(cur.name, new Map());
            const h = histo.get(cur.name);
            if (!h.has(lk)) h.set(lk, { buckets: [], sum: null, count: null, line: n });
            const e = h.get(lk);
            const v = Number(vm[1].replace(/^\+?Inf$/, 'Infinity').replace(/^-Inf$/, '-Infinity'));
            if (suffix === '_bucket') {
                if (!le) return err(n, `${name}: bucket without le`);
                e.buckets.push([le[1] === '+Inf' ? Infinity : Number(le[1]), v, le[1]]);
            } else if (suffix === '_sum') e.sum = v;
            else if (suffix === '_count') e.count = v;
            else return err(n, `histogram ${cur.name}: a sample must be _bucket, _sum or _count`);
        }
    });
    for (const name of order) {
        const f = fams.get(name);
        if (f.help === null) errors.push(`${name}: no # HELP`);
        if (f.type === null) errors.push(`${name}: no # TYPE`);
        if (f.samples === 0) errors.push(`${name}: no sample`);
        if (f.type) for (const p of unitProblems(name, f.type)) errors.push(`${name}: ${p}`);
    }
    for (const [name, h] of histo) {
        for (const [lk, e] of h) {
            const what = `${name}{${lk}}`;
            if (e.buckets.length === 0) { errors.push(`${what}: no bucket`); continue; }
            for (let j = 1; j < e.buckets.length; j++) {
                if (!(e.buckets[j][0] > e.buckets[j - 1][0])) errors.push(`${what}: le ${e.buckets[j][2]} not ascending`);
                if (e.buckets[j][1] < e.buckets[j - 1][1]) errors.push(`${what}: bucket le=${e.buckets[j][2]} not cumulative`);
            }
            const last = e.buckets[e.buckets.length - 1];
            if (last[0] !== Infinity) errors.push(`${what}: no le="+Inf" bucket`);
            if (e.count === null || e.sum === null) errors.push(`${what}: _sum or _count missing`);
            else if (last[1] !== e.count) errors.push(`${what}: +Inf bucket ${last[1]} != _count ${e.count}`);
        }
    }
    return { errors, fams, order, samples: series.size };
}

function main(argv) {
    const required = [], files = [];
    for (let i = 0; i < argv.length; i++) {
        if (argv[i] === '--require' && i + 1 < argv.length) required.push(argv[++i]);
        else if (argv[i].startsWith('--')) { console.error(`check_prometheus: unknown option ${argv[i]}`); return 2; }
        else files.push(argv[i]);
    }
    if (!files.length) { console.error('usage: check_prometheus.js [--require NAME]... FILE...'); return 2; }
    let bad = 0;
    for (const file of files) {
        const text = fs.readFileSync(file, 'utf8');
        const errors = [];
        let parsed = null;
        try {
            parsed = parse(text);
        } catch (e) {
            errors.push(`the npm parser refuses it: ${e.message}`);
        }
        const own = check(text);
        errors.push(...own.errors);
        if (parsed) {
            const names = parsed.map(f => f.name);
            const missing = own.order.filter(n => !names.includes(n)), extra = names.filter(n => !own.fams.has(n));
            if (missing.length || extra.length)
                errors.push(`the npm parser sees other families (missing ${missing}, extra ${extra})`);
            for (const f of parsed) {
                if (!f.help) errors.push(`${f.name}: the npm parser found no HELP`);
                if (!f.type || f.type === 'UNTYPED') errors.push(`${f.name}: the npm parser found no TYPE`);
            }
        }
        for (const r of required)
            if (!own.fams.has(r)) errors.push(`required family ${r} is missing`);
        if (errors.length) {
            bad++;
            console.log(`FAIL ${file}:`);
            for (const e of errors.slice(0, 40)) console.log(`  ${e}`);
        } else {
            console.log(`ok ${file}: ${own.order.length} families, ${own.samples} samples`);
        }
    }
    return bad ? 1 : 0;
}

process.exit(main(process.argv.slice(2)));
