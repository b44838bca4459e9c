//! Flow events -> one audience's FlowRecords, k-anonymity (Datafly, as deid.transforms.kanon)
//! and their canonical JSON (as deid.contracts._codec.canonical_json writes them).
//! Every step mirrors the Python reference line by line; tests hold the two equal.

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::borrow::Cow;
use std::fmt::Write;

use sha1::{Digest, Sha1};

use crate::phi::Demographics;
use crate::raw::RawFlow;
use crate::ts::{civil, iso16, iso_week, py_floordiv};

/// The releasable flow fields, in this order everywhere (F_* indexes).
pub const FIELDS: [&str; 14] = [
    "surrogate_id",
    "event_type",
    "occurred",
    "unit_code",
    "unit_type",
    "prior_unit_code",
    "prior_unit_type",
    "patient_class",
    "acuity",
    "arrival_mode",
    "age_band",
    "sex",
    "zip3",
    "wait_minutes",
];
pub const F_SURROGATE: usize = 0;
pub const F_EVENT_TYPE: usize = 1;
pub const F_OCCURRED: usize = 2;
pub const F_UNIT_CODE: usize = 3;
pub const F_UNIT_TYPE: usize = 4;
pub const F_PRIOR_UNIT_CODE: usize = 5;
pub const F_PRIOR_UNIT_TYPE: usize = 6;
pub const F_PATIENT_CLASS: usize = 7;
pub const F_ACUITY: usize = 8;
pub const F_ARRIVAL: usize = 9;
pub const F_AGE_BAND: usize = 10;
pub const F_SEX: usize = 11;
pub const F_ZIP3: usize = 12;
pub const F_WAIT: usize = 13;

pub fn field_index(name: &str) -> Option<usize> {
    FIELDS.iter().position(|f| *f == name)
}

/// DateGranularity, finest first (GRANULARITY_ORDER).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gran {
    Minute,
    Hour,
    Day,
    Week,
    Month,
    Year,
}

impl Gran {
    pub fn parse(s: &str) -> Option<Gran> {
        Some(match s {
            "minute" => Gran::Minute,
            "hour" => Gran::Hour,
            "day" => Gran::Day,
            "week" => Gran::Week,
            "month" => Gran::Month,
            "year" => Gran::Year,
            _ => return None,
        })
    }
    pub fn name(self) -> &'static str {
        match self {
            Gran::Minute => "minute",
            Gran::Hour => "hour",
            Gran::Day => "day",
            Gran::Week => "week",
            Gran::Month => "month",
            Gran::Year => "year",
        }
    }
    /// kanon._OCCURRED_CUTS: the ladder above a granularity (None = withheld).
    fn cuts(self) -> &'static [Option<usize>] {
        match self {
            Gran::Minute | Gran::Hour | Gran::Day => &[Some(0), Some(7), Some(4), None],
            Gran::Week | Gran::Month => &[Some(0), Some(4), None],
            Gran::Year => &[Some(0), None],
        }
    }
}

/// One audience's compiled rule (built by deid/native.py from the AudienceRule).
pub struct Rule {
    pub audience: String,
    pub fields: [bool; 14],
    pub granularity: Gran,
    pub band_labels: Vec<String>,
    pub top_band: String,
    pub wide: HashMap<String, Option<String>>,
    pub qis: Vec<usize>,
    pub k: i64,
    pub ldiv: Option<(usize, i64)>,
    pub max_suppression: f64,
    pub target: f64,
}

/// A field value of a record, compared and hashed by content.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum V<'a> {
    N,
    S(Cow<'a, str>),
    I(i64),
}

impl V<'_> {
    pub fn str(&self) -> Option<&str> {
        match self {
            V::S(s) => Some(s),
            _ => None,
        }
    }
}

/// flow.EventFacts.
pub struct Facts {
    pub iso16: String,
    pub day_number: i64,
    pub age: Option<i64>,
    pub wait: Option<i64>,
    pub born_that_day: bool,
}

const WAIT_EVENTS: [&str; 3] = ["admit", "transfer", "class_change"];

pub fn event_facts(raw: &RawFlow<'_>, demo: &Demographics) -> Facts {
    let c = civil(raw.occurred_at);
    let mut age = None;
    let mut born_that_day = false;
    if let Some((by, bm, bd)) = demo.birth {
        let a = c.y - by - i64::from((c.m, c.d) < (bm, bd));
        age = if a < 0 { None } else { Some(a) };
        born_that_day = (by, bm, bd) == (c.y, c.m, c.d);
    }
    let mut wait = None;
    if let Some(dta) = raw.decision_to_admit_at {
        if WAIT_EVENTS.contains(&raw.event_type) {
            // int((occurred_at - dta).total_seconds() // 60), in Python's float arithmetic.
            let seconds = (raw.occurred_at - dta) as f64 / 1e6;
            let minutes = py_floordiv(seconds, 60.0) as i64;
            wait = if minutes >= 0 { Some(minutes) } else { None };
        }
    }
    Facts {
        iso16: iso16(&c),
        day_number: c.day_number,
        age,
        wait,
        born_that_day,
    }
}

/// One FlowRecord of one audience, before serialisation.
pub struct Rec<'a> {
    pub ev: usize,
    pub vals: [V<'a>; 14],
    pub date_gran: Option<&'static str>,
    pub generalised: Vec<usize>,
    pub event_id: String,
}

pub struct Event<'a> {
    pub raw: RawFlow<'a>,
    pub demo: Demographics,
    pub facts: Facts,
}

const NAMESPACE: [u8; 16] = [
    0x6f, 0x1f, 0x0c, 0x1e, 0x4a, 0x53, 0x4d, 0x0b, 0x9a, 0x55, 0x2f, 0x6c, 0x1f, 0x7e, 0x3b, 0x10,
];

/// census.derived_event_id: uuid5(namespace, "source|audience|version") as text.
pub fn derived_event_id(source: &str, suffix: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut h = Sha1::new();
    h.update(NAMESPACE);
    h.update(source.as_bytes());
    h.update(suffix);
    let digest = h.finalize();
    let mut hex = [0u8; 40];
    for (n, &byte) in digest.iter().enumerate() {
        hex[2 * n] = DIGITS[usize::from(byte >> 4)];
        hex[2 * n + 1] = DIGITS[usize::from(byte & 15)];
    }
    // f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{variant[h[16]]}{h[17:20]}-{h[20:32]}"
    let nibble = usize::from(digest[8] >> 4);
    let mut out = [0u8; 36];
    out[..8].copy_from_slice(&hex[..8]);
    out[8] = b'-';
    out[9..13].copy_from_slice(&hex[8..12]);
    out[13] = b'-';
    out[14] = b'5';
    out[15..18].copy_from_slice(&hex[13..16]);
    out[18] = b'-';
    out[19] = DIGITS[(nibble & 0x3) | 0x8];
    out[20..23].copy_from_slice(&hex[17..20]);
    out[23] = b'-';
    out[24..36].copy_from_slice(&hex[20..32]);
    String::from_utf8(out.to_vec()).unwrap_or_default()
}

fn opt<'a>(v: Option<&'a str>) -> V<'a> {
    v.map_or(V::N, |s| V::S(Cow::Borrowed(s)))
}

fn generalise(f: &Facts, g: Gran) -> V<'static> {
    match g {
        Gran::Minute => V::S(Cow::Owned(format!("{}Z", &f.iso16[..16]))),
        Gran::Hour => V::S(Cow::Owned(format!("{}Z", &f.iso16[..13]))),
        Gran::Week => {
            let (y, w) = iso_week(f.day_number);
            V::S(Cow::Owned(format!("{y:04}-W{w:02}")))
        }
        _ => V::N, // day, month, year are cuts (see audience_records)
    }
}

/// flow.audience_records for one rule.
pub fn audience_records<'a>(
    events: &'a [Event<'a>],
    rule: &'a Rule,
    policy_version: i64,
) -> Vec<Rec<'a>> {
    let want_occurred = rule.fields[F_OCCURRED];
    let want_age = rule.fields[F_AGE_BAND];
    let g0 = rule.granularity;
    let newborn_coarsens = matches!(g0, Gran::Day | Gran::Week);
    let suffix = format!("|{}|{}", rule.audience, policy_version).into_bytes();
    let mut week_labels: HashMap<i64, V<'static>> = HashMap::default();
    let mut out = Vec::with_capacity(events.len());
    for (i, e) in events.iter().enumerate() {
        let raw = &e.raw;
        let keep = |f: usize, v: V<'a>| if rule.fields[f] { v } else { V::N };
        let (g, generalised) = if newborn_coarsens && e.facts.born_that_day {
            (Gran::Month, vec![F_OCCURRED])
        } else {
            (g0, Vec::new())
        };
        let mut occurred = V::N;
        let mut date_gran = None;
        if want_occurred {
            occurred = match g {
                Gran::Day => V::S(Cow::Borrowed(&e.facts.iso16[..10])),
                Gran::Month => V::S(Cow::Borrowed(&e.facts.iso16[..7])),
                Gran::Year => V::S(Cow::Borrowed(&e.facts.iso16[..4])),
                Gran::Week => week_labels
                    .entry(e.facts.day_number)
                    .or_insert_with(|| generalise(&e.facts, g))
                    .clone(),
                _ => generalise(&e.facts, g),
            };
            date_gran = Some(g.name());
        }
        let mut age_band = V::N;
        if want_age {
            if let Some(age) = e.facts.age {
                let label = if age < 90 {
                    &rule.band_labels[age as usize]
                } else {
                    &rule.top_band
                };
                age_band = V::S(Cow::Borrowed(label.as_str()));
            }
        }
        let vals = [
            keep(F_SURROGATE, V::S(Cow::Borrowed(raw.surrogate_id))),
            V::S(Cow::Borrowed(raw.event_type)),
            occurred,
            keep(F_UNIT_CODE, opt(raw.unit_code)),
            keep(F_UNIT_TYPE, opt(raw.unit_type)),
            keep(F_PRIOR_UNIT_CODE, opt(raw.prior_unit_code)),
            keep(F_PRIOR_UNIT_TYPE, opt(raw.prior_unit_type)),
            keep(F_PATIENT_CLASS, opt(raw.patient_class)),
            keep(F_ACUITY, raw.acuity.map_or(V::N, V::I)),
            keep(F_ARRIVAL, opt(raw.arrival_mode)),
            age_band,
            keep(F_SEX, opt(e.demo.sex)),
            keep(
                F_ZIP3,
                e.demo
                    .zip3
                    .as_deref()
                    .map_or(V::N, |z| V::S(Cow::Borrowed(z))),
            ),
            keep(F_WAIT, e.facts.wait.map_or(V::N, V::I)),
        ];
        out.push(Rec {
            ev: i,
            vals,
            date_gran,
            generalised,
            event_id: derived_event_id(raw.event_id, &suffix),
        });
    }
    out
}

/// kanon.enforce_k's outcome: which records stay.
pub struct KResult {
    pub keep: Vec<bool>,
    pub suppressed: usize,
}

fn granularity_label(text: &str) -> Option<&'static str> {
    // generalise.granularity_of, for the cuts the ladder makes (7: month, 4: year).
    let b = text.as_bytes();
    match b.len() {
        4 if b.iter().all(u8::is_ascii_digit) => Some("year"),
        7 if b[4] == b'-' => Some("month"),
        _ => None,
    }
}

struct Column {
    codes: Vec<u32>,
    distinct: usize,
}

fn encode<'v>(values: &[V<'v>]) -> Column {
    let mut ids: HashMap<&V<'v>, u32> = HashMap::default();
    let mut codes = Vec::with_capacity(values.len());
    for v in values {
        let next = ids.len() as u32;
        codes.push(*ids.entry(v).or_insert(next));
    }
    Column {
        codes,
        distinct: ids.len(),
    }
}

/// kanon.enforce_k: Datafly generalisation, then suppression of small classes (and of
/// classes with fewer than l values of the l-diversity attribute). Writes the generalised
/// values into `recs`.
pub fn enforce_k<'a>(recs: &mut [Rec<'a>], events: &'a [Event<'a>], rule: &'a Rule) -> KResult {
    let n = recs.len();
    let qis = &rule.qis;
    if n == 0 {
        return KResult {
            keep: vec![],
            suppressed: 0,
        };
    }
    if qis.is_empty() || (rule.k <= 1 && rule.ldiv.is_none()) {
        return KResult {
            keep: vec![true; n],
            suppressed: 0,
        };
    }
    let depth: Vec<usize> = qis
        .iter()
        .map(|&q| match q {
            F_AGE_BAND => 3,
            F_OCCURRED => recs
                .iter()
                .filter(|r| r.vals[F_OCCURRED] != V::N)
                .map(|r| {
                    r.date_gran
                        .and_then(Gran::parse)
                        .map_or(1, |g| g.cuts().len())
                })
                .max()
                .unwrap_or(1),
            _ => 2,
        })
        .collect();
    // Values of each quasi-identifier at each level, computed when first needed.
    let mut values: Vec<HashMap<usize, Vec<V<'a>>>> = vec![HashMap::default(); qis.len()];
    let mut columns: Vec<HashMap<usize, Column>> =
        (0..qis.len()).map(|_| HashMap::default()).collect();
    let level_values = |qi: usize, level: usize, recs: &[Rec<'a>]| -> Vec<V<'a>> {
        let q = qis[qi];
        if level == 0 {
            return recs.iter().map(|r| r.vals[q].clone()).collect();
        }
        if level >= depth[qi] - 1 {
            return vec![V::N; recs.len()];
        }
        match q {
            F_AGE_BAND => recs
                .iter()
                .map(|r| match &r.vals[F_AGE_BAND] {
                    V::S(label) => match rule.wide.get(label.as_ref()) {
                        Some(Some(w)) => V::S(Cow::Borrowed(w.as_str())),
                        Some(None) => V::N,
                        None => r.vals[F_AGE_BAND].clone(), // never: labels come from the rule
                    },
                    other => other.clone(),
                })
                .collect(),
            _ => recs
                .iter()
                .map(|r| {
                    if r.vals[F_OCCURRED] == V::N {
                        return V::N;
                    }
                    let ladder = r
                        .date_gran
                        .and_then(Gran::parse)
                        .map_or(&[][..], |g| g.cuts());
                    if ladder.is_empty() {
                        return V::N;
                    }
                    match ladder[level.min(ladder.len() - 1)] {
                        None => V::N,
                        Some(cut) => V::S(Cow::Borrowed(&events[r.ev].facts.iso16[..cut])),
                    }
                })
                .collect(),
        }
    };
    let mut levels = vec![0usize; qis.len()];
    let allowed_small = (n as f64 * rule.target.min(rule.max_suppression)) as usize;
    let ensure = |qi: usize,
                  level: usize,
                  values: &mut Vec<HashMap<usize, Vec<V<'a>>>>,
                  columns: &mut Vec<HashMap<usize, Column>>,
                  recs: &[Rec<'a>]| {
        if !columns[qi].contains_key(&level) {
            let vs = level_values(qi, level, recs);
            columns[qi].insert(level, encode(&vs));
            values[qi].insert(level, vs);
        }
    };
    // Class keys: each quasi-identifier's value code in 16 bits (the caller guarantees at
    // most 8 quasi-identifiers and fewer than 65,536 records).
    let count = |levels: &[usize], columns: &Vec<HashMap<usize, Column>>| {
        let mut keys: Vec<u128> = vec![0; n];
        for (qi, level) in levels.iter().enumerate() {
            let codes = &columns[qi][level].codes;
            for (key, &code) in keys.iter_mut().zip(codes.iter()) {
                *key = (*key << 16) | u128::from(code);
            }
        }
        let mut counts: HashMap<u128, usize> = HashMap::default();
        for &key in &keys {
            *counts.entry(key).or_insert(0) += 1;
        }
        (keys, counts)
    };
    for qi in 0..qis.len() {
        ensure(qi, 0, &mut values, &mut columns, recs);
    }
    let (mut keys, mut counts) = count(&levels, &columns);
    let k = rule.k.max(0) as usize;
    loop {
        let small: usize = counts.values().filter(|&&c| c < k).sum();
        if small <= allowed_small {
            break;
        }
        let mut best: Option<(usize, &str, usize)> = None;
        for (qi, &q) in qis.iter().enumerate() {
            if levels[qi] + 1 >= depth[qi] {
                continue;
            }
            let d = columns[qi][&levels[qi]].distinct;
            let name = FIELDS[q];
            if best.is_none_or(|(bd, bn, _)| (d, name) > (bd, bn)) {
                best = Some((d, name, qi));
            }
        }
        let Some((_, _, qi)) = best else { break };
        levels[qi] += 1;
        ensure(qi, levels[qi], &mut values, &mut columns, recs);
        (keys, counts) = count(&levels, &columns);
    }
    let mut keep: Vec<bool> = keys.iter().map(|key| counts[key] >= k).collect();
    if let Some((attr, ell)) = rule.ldiv {
        let mut seen: HashMap<u128, HashSet<&V<'a>>> = HashMap::default();
        for (i, key) in keys.iter().enumerate() {
            if keep[i] {
                seen.entry(*key).or_default().insert(&recs[i].vals[attr]);
            }
        }
        let poor: HashSet<u128> = seen
            .iter()
            .filter(|(_, v)| (v.len() as i64) < ell)
            .map(|(key, _)| *key)
            .collect();
        let _ = &poor;
        for (i, key) in keys.iter().enumerate() {
            if keep[i] && poor.contains(key) {
                keep[i] = false;
            }
        }
    }
    for (qi, &q) in qis.iter().enumerate() {
        let level = levels[qi];
        if level == 0 {
            continue;
        }
        let column = &values[qi][&level];
        for (r, value) in recs.iter_mut().zip(column.iter()) {
            if r.vals[q] != *value {
                r.vals[q] = value.clone();
                if !r.generalised.contains(&q) {
                    r.generalised.push(q);
                }
                if q == F_OCCURRED {
                    r.date_gran = value.str().and_then(granularity_label);
                }
            }
        }
    }
    let suppressed = keep.iter().filter(|&&k| !k).count();
    KResult { keep, suppressed }
}

/// Shared header values of one window's records, as JSON fragments written once.
pub struct Header {
    /// `,"policy_version":N`
    policy_version: String,
    /// `,"produced_at":"..."`
    produced_at: String,
    /// `,"window_id":"..."`
    window_id: String,
}

impl Header {
    pub fn new(policy_version: i64, produced_at: &str, window_id: &str) -> Header {
        let mut p = String::from(",\"produced_at\":");
        json_str(&mut p, produced_at);
        let mut w = String::from(",\"window_id\":");
        json_str(&mut w, window_id);
        Header {
            policy_version: format!(",\"policy_version\":{policy_version}"),
            produced_at: p,
            window_id: w,
        }
    }
}

/// `,"audience":"..."` for one slice.
pub fn audience_fragment(audience: &str) -> String {
    let mut a = String::from(",\"audience\":");
    json_str(&mut a, audience);
    a
}

/// An identifier that is escape-free by construction (validated UUID, hex, site code).
fn json_id(out: &mut String, s: &str) {
    debug_assert!(json_safe(s));
    out.push('"');
    out.push_str(s);
    out.push('"');
}

fn json_str(out: &mut String, s: &str) {
    out.push('"');
    if !s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        out.push_str(s);
        out.push('"');
        return;
    }
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// True when `s` needs no JSON escape (no quote, backslash or control character).
pub fn json_safe(s: &str) -> bool {
    !s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\')
}

/// A field value. Every string value of a record is escape-free by construction (the raw
/// decoder refuses escapes and control characters; labels are checked when compiled).
fn json_v(out: &mut String, v: &V<'_>) {
    match v {
        V::N => out.push_str("null"),
        V::S(s) => {
            debug_assert!(json_safe(s));
            out.push('"');
            out.push_str(s);
            out.push('"');
        }
        V::I(i) => {
            let _ = write!(out, "{i}");
        }
    }
}

/// canonical_json(FlowRecord dict): keys sorted, no whitespace, UTF-8 as is.
pub fn canonical(out: &mut String, r: &Rec<'_>, e: &Event<'_>, audience: &str, h: &Header) {
    out.push_str("{\"acuity\":");
    json_v(out, &r.vals[F_ACUITY]);
    out.push_str(",\"age_band\":");
    json_v(out, &r.vals[F_AGE_BAND]);
    out.push_str(",\"arrival_mode\":");
    json_v(out, &r.vals[F_ARRIVAL]);
    out.push_str(audience);
    out.push_str(",\"date_granularity\":");
    match r.date_gran {
        Some(g) => json_str(out, g),
        None => out.push_str("null"),
    }
    out.push_str(",\"event_id\":");
    json_id(out, &r.event_id);
    out.push_str(",\"event_type\":");
    json_v(out, &r.vals[F_EVENT_TYPE]);
    out.push_str(",\"generalised\":[");
    for (n, &f) in r.generalised.iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        json_id(out, FIELDS[f]);
    }
    out.push_str("],\"occurred\":");
    json_v(out, &r.vals[F_OCCURRED]);
    out.push_str(",\"patient_class\":");
    json_v(out, &r.vals[F_PATIENT_CLASS]);
    out.push_str(&h.policy_version);
    out.push_str(",\"prior_unit_code\":");
    json_v(out, &r.vals[F_PRIOR_UNIT_CODE]);
    out.push_str(",\"prior_unit_type\":");
    json_v(out, &r.vals[F_PRIOR_UNIT_TYPE]);
    out.push_str(&h.produced_at);
    out.push_str(",\"record_type\":\"regional.flow\",\"schema_version\":1,\"sex\":");
    json_v(out, &r.vals[F_SEX]);
    out.push_str(",\"site_code\":");
    json_id(out, e.raw.site_code);
    out.push_str(",\"source_event_id\":");
    json_id(out, e.raw.event_id);
    out.push_str(",\"surrogate_id\":");
    json_v(out, &r.vals[F_SURROGATE]);
    out.push_str(",\"unit_code\":");
    json_v(out, &r.vals[F_UNIT_CODE]);
    out.push_str(",\"unit_type\":");
    json_v(out, &r.vals[F_UNIT_TYPE]);
    out.push_str(",\"wait_minutes\":");
    json_v(out, &r.vals[F_WAIT]);
    out.push_str(&h.window_id);
    out.push_str(",\"zip3\":");
    json_v(out, &r.vals[F_ZIP3]);
    out.push('}');
}

/// canonical_json(RawFlowEvent.to_dict()): what the identity worker re-encodes.
pub fn canonical_raw(out: &mut String, r: &RawFlow<'_>) {
    use crate::ts::format_utc;
    let opt_s = |out: &mut String, v: Option<&str>| match v {
        Some(s) => json_str(out, s),
        None => out.push_str("null"),
    };
    out.push_str("{\"acuity\":");
    match r.acuity {
        Some(a) => {
            let _ = write!(out, "{a}");
        }
        None => out.push_str("null"),
    }
    out.push_str(",\"arrival_mode\":");
    opt_s(out, r.arrival_mode);
    out.push_str(",\"decision_to_admit_at\":");
    match r.decision_to_admit_at {
        Some(t) => {
            out.push('"');
            format_utc(t, out);
            out.push('"');
        }
        None => out.push_str("null"),
    }
    out.push_str(",\"event_id\":");
    json_str(out, r.event_id);
    out.push_str(",\"event_type\":");
    json_str(out, r.event_type);
    out.push_str(",\"key_id\":");
    json_str(out, r.key_id);
    out.push_str(",\"merged_surrogate_id\":");
    opt_s(out, r.merged_surrogate_id);
    out.push_str(",\"occurred_at\":\"");
    format_utc(r.occurred_at, out);
    out.push_str("\",\"patient_class\":");
    opt_s(out, r.patient_class);
    out.push_str(",\"phi_ciphertext\":");
    json_str(out, r.phi_ciphertext);
    out.push_str(",\"prior_unit_code\":");
    opt_s(out, r.prior_unit_code);
    out.push_str(",\"prior_unit_type\":");
    opt_s(out, r.prior_unit_type);
    out.push_str(",\"produced_at\":\"");
    format_utc(r.produced_at, out);
    out.push_str("\",\"record_type\":\"raw.flow_event\",\"schema_version\":1,\"site_code\":");
    json_str(out, r.site_code);
    out.push_str(",\"source\":");
    json_str(out, r.source);
    out.push_str(",\"surrogate_id\":");
    json_str(out, r.surrogate_id);
    out.push_str(",\"unit_code\":");
    opt_s(out, r.unit_code);
    out.push_str(",\"unit_type\":");
    opt_s(out, r.unit_type);
    out.push('}');
}
