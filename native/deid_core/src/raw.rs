//! A strict decoder for `raw.flow_event` v1 messages: it accepts a subset of what the
//! reference decoder accepts (a flat JSON object, strings without escapes, integers, null,
//! booleans; the contract's types, vocabularies and checks) and reads it the same way.
//! Anything else is refused (None) and left to the reference decoder, which also words the
//! dead-letter reason.

use crate::ts::parse_ts;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum J<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Str(&'a str),
}

pub const FLOW_EVENT_TYPES: &[&str] = &[
    "admit",
    "transfer",
    "discharge",
    "register",
    "preadmit",
    "class_change",
    "update",
    "cancel_admit",
    "cancel_transfer",
    "cancel_discharge",
    "pending_admit",
    "pending_transfer",
    "pending_discharge",
    "bed_swap",
    "leave_of_absence",
    "return_from_loa",
    "merge",
    "cancel_pending_admit",
    "cancel_pending_discharge",
    "cancel_pending_transfer",
];
pub const UNIT_TYPES: &[&str] = &[
    "adult_icu",
    "pediatric_icu",
    "neonatal_icu",
    "medical_surgical",
    "pediatrics",
    "psychiatric",
    "burn",
    "isolation",
    "obstetrics",
    "emergency",
    "operating_room",
    "step_down",
    "observation",
    "rehabilitation",
    "other",
];
pub const PATIENT_CLASSES: &[&str] = &[
    "emergency",
    "inpatient",
    "observation",
    "outpatient",
    "preadmit",
];
pub const ARRIVAL_MODES: &[&str] = &["ambulance", "walk_in"];
pub const SEXES: &[&str] = &["female", "male", "other", "unknown"];

fn ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'\r') {
        i += 1;
    }
    i
}

fn string(s: &str, i: usize) -> Option<(&str, usize)> {
    let b = s.as_bytes();
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let start = i + 1;
    let end = start + memchr::memchr2(b'"', b'\\', &b[start..])?;
    // An escape (the reference decodes it) or a raw control character (invalid JSON).
    if b[end] != b'"' || b[start..end].iter().any(|&c| c < 0x20) {
        return None;
    }
    Some((&s[start..end], end + 1))
}

/// A flat JSON object's members, or None for anything this parser does not take.
pub fn parse_flat(s: &str) -> Option<Vec<(&str, J<'_>)>> {
    let b = s.as_bytes();
    let mut i = ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i = ws(b, i + 1);
    let mut out: Vec<(&str, J<'_>)> = Vec::with_capacity(24);
    if b.get(i) == Some(&b'}') {
        i += 1;
    } else {
        loop {
            let (key, next) = string(s, i)?;
            i = ws(b, next);
            if b.get(i) != Some(&b':') {
                return None;
            }
            i = ws(b, i + 1);
            let value = match *b.get(i)? {
                b'"' => {
                    let (v, next) = string(s, i)?;
                    i = next;
                    J::Str(v)
                }
                b'n' if b[i..].starts_with(b"null") => {
                    i += 4;
                    J::Null
                }
                b't' if b[i..].starts_with(b"true") => {
                    i += 4;
                    J::Bool(true)
                }
                b'f' if b[i..].starts_with(b"false") => {
                    i += 5;
                    J::Bool(false)
                }
                b'-' | b'0'..=b'9' => {
                    let start = i;
                    if b[i] == b'-' {
                        i += 1;
                    }
                    let ds = i;
                    while i < b.len() && b[i].is_ascii_digit() {
                        i += 1;
                    }
                    let n = i - ds;
                    if n == 0 || n > 18 || (n > 1 && b[ds] == b'0') {
                        return None;
                    }
                    if i < b.len() && matches!(b[i], b'.' | b'e' | b'E') {
                        return None;
                    }
                    J::Int(s[start..i].parse().ok()?)
                }
                _ => return None,
            };
            if out.iter().any(|(k, _)| *k == key) {
                return None; // duplicate keys: the reference decides
            }
            out.push((key, value));
            i = ws(b, i);
            match b.get(i) {
                Some(b',') => i = ws(b, i + 1),
                Some(b'}') => {
                    i += 1;
                    break;
                }
                _ => return None,
            }
        }
    }
    if ws(b, i) != b.len() {
        return None;
    }
    Some(out)
}

#[derive(Debug, Clone)]
pub struct RawFlow<'a> {
    pub site_code: &'a str,
    pub event_id: &'a str,
    pub produced_at: i64,
    pub event_type: &'a str,
    pub occurred_at: i64,
    pub unit_code: Option<&'a str>,
    pub unit_type: Option<&'a str>,
    pub prior_unit_code: Option<&'a str>,
    pub prior_unit_type: Option<&'a str>,
    pub patient_class: Option<&'a str>,
    pub acuity: Option<i64>,
    pub arrival_mode: Option<&'a str>,
    pub decision_to_admit_at: Option<i64>,
    pub surrogate_id: &'a str,
    pub merged_surrogate_id: Option<&'a str>,
    pub key_id: &'a str,
    pub phi_ciphertext: &'a str,
    pub source: &'a str,
}

fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, &c)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                c == b'-'
            } else {
                c.is_ascii_digit() || (b'a'..=b'f').contains(&c)
            }
        })
}

fn opt_str<'a>(v: Option<J<'a>>) -> Option<Option<&'a str>> {
    match v {
        None | Some(J::Null) => Some(None),
        Some(J::Str(s)) => Some(Some(s)),
        _ => None,
    }
}

fn opt_enum<'a>(v: Option<J<'a>>, vocab: &[&str]) -> Option<Option<&'a str>> {
    match opt_str(v)? {
        None => Some(None),
        Some(s) if vocab.contains(&s) => Some(Some(s)),
        Some(_) => None,
    }
}

fn opt_ts(v: Option<J<'_>>) -> Option<Option<i64>> {
    match opt_str(v)? {
        None => Some(None),
        Some(s) => Some(Some(parse_ts(s)?)),
    }
}

fn req_str<'a>(v: Option<J<'a>>) -> Option<&'a str> {
    match v {
        Some(J::Str(s)) => Some(s),
        _ => None,
    }
}

/// The flow event in `data` if this decoder takes it and its site is `site_code`.
pub fn decode_flow<'a>(data: &'a [u8], site_code: &str) -> Option<RawFlow<'a>> {
    let s = std::str::from_utf8(data).ok()?;
    let members = parse_flat(s)?;
    // One pass over the members into named slots (unknown keys are ignored, as by both
    // reference decoders).
    const NAMES: [&str; 20] = [
        "record_type",
        "schema_version",
        "site_code",
        "event_id",
        "produced_at",
        "event_type",
        "occurred_at",
        "unit_code",
        "unit_type",
        "prior_unit_code",
        "prior_unit_type",
        "patient_class",
        "acuity",
        "arrival_mode",
        "decision_to_admit_at",
        "surrogate_id",
        "merged_surrogate_id",
        "key_id",
        "phi_ciphertext",
        "source",
    ];
    let mut slots: [Option<J<'_>>; 20] = [None; 20];
    for (key, value) in &members {
        if let Some(n) = NAMES.iter().position(|name| name == key) {
            slots[n] = Some(*value);
        }
    }
    let get = |name: &str| NAMES.iter().position(|n| *n == name).and_then(|n| slots[n]);
    if get("record_type") != Some(J::Str("raw.flow_event"))
        || get("schema_version") != Some(J::Int(1))
    {
        return None;
    }
    let site = req_str(get("site_code"))?;
    if site != site_code || site.is_empty() {
        return None;
    }
    let event_id = req_str(get("event_id"))?;
    if !is_uuid(event_id) {
        return None;
    }
    let produced_at = parse_ts(req_str(get("produced_at"))?)?;
    let event_type = req_str(get("event_type"))?;
    if !FLOW_EVENT_TYPES.contains(&event_type) {
        return None;
    }
    let occurred_at = parse_ts(req_str(get("occurred_at"))?)?;
    let acuity = match get("acuity") {
        None | Some(J::Null) => None,
        Some(J::Int(a)) if (1..=5).contains(&a) => Some(a),
        _ => return None,
    };
    let surrogate_id = req_str(get("surrogate_id"))?;
    let key_id = req_str(get("key_id"))?;
    let phi_ciphertext = req_str(get("phi_ciphertext"))?;
    if surrogate_id.is_empty() || key_id.is_empty() || phi_ciphertext.is_empty() {
        return None;
    }
    let source = match get("source") {
        None => "unknown",
        Some(J::Str(s)) => s,
        _ => return None,
    };
    Some(RawFlow {
        site_code: site,
        event_id,
        produced_at,
        event_type,
        occurred_at,
        unit_code: opt_str(get("unit_code"))?,
        unit_type: opt_enum(get("unit_type"), UNIT_TYPES)?,
        prior_unit_code: opt_str(get("prior_unit_code"))?,
        prior_unit_type: opt_enum(get("prior_unit_type"), UNIT_TYPES)?,
        patient_class: opt_enum(get("patient_class"), PATIENT_CLASSES)?,
        acuity,
        arrival_mode: opt_enum(get("arrival_mode"), ARRIVAL_MODES)?,
        decision_to_admit_at: opt_ts(get("decision_to_admit_at"))?,
        surrogate_id,
        merged_surrogate_id: opt_str(get("merged_surrogate_id"))?,
        key_id,
        phi_ciphertext,
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_objects() {
        assert!(parse_flat(r#"{"a":1,"b":"x","c":null,"d":true}"#).is_some());
        assert!(parse_flat(r#"{"a":1,"a":2}"#).is_none());
        assert!(parse_flat(r#"{"a":"x\"y"}"#).is_none());
        assert!(parse_flat(r#"{"a":1.5}"#).is_none());
        assert!(parse_flat(r#"{"a":[1]}"#).is_none());
        assert!(parse_flat(r#"{"a":01}"#).is_none());
        assert!(parse_flat(r#"{"a":1} x"#).is_none());
    }
}
