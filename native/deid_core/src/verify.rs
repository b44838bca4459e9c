//! Independent check of a flow slice before release, written apart from the transform (it
//! reads only the finished records and their exact text). It is conservative: `true` means
//! deid.transforms.verify.verify_slice would find nothing either; on `false` the caller has
//! the Python verifier examine the slice and word (or clear) the problems.
//!
//! Checked: policy version and audience in the text, fields the audience may not receive,
//! occurred no finer than the rule (and at least a day), age bands the rule allows (90+
//! top-coded), ZIP3 three digits and never a restricted area's, k over the quasi-identifiers
//! and l-diversity, and the identifier-pattern needles of verify.scan_text over every byte.

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use crate::flow::{Rec, F_AGE_BAND, F_OCCURRED, F_ZIP3, V};

/// What the verifier needs of the rule, derived in Python by deid.transforms.verify's own
/// helpers (allowed_age_bands, the granularity ranks, RELEASABLE_FIELDS - rule.fields).
pub struct Checks {
    pub audience: String,
    pub policy_version: i64,
    pub disallowed: Vec<usize>,
    pub floor_rank: usize,
    pub allowed_bands: HashSet<String>,
    pub restricted_zip3: HashSet<String>,
    pub qis: Vec<usize>,
    pub k: i64,
    pub ldiv: Option<(usize, i64)>,
}

/// generalise.granularity_of as a rank (minute 0 .. year 5), re-derived from the text.
fn rank_of(text: &str) -> Option<usize> {
    if !text.is_ascii() {
        return None;
    }
    let b = text.as_bytes();
    match b.len() {
        4 if b.iter().all(u8::is_ascii_digit) => Some(5),
        7 if b[4] == b'-' => Some(4),
        8 if &b[4..6] == b"-W" => Some(3),
        10 if b[4] == b'-' && b[7] == b'-' => Some(2),
        14 if b[10] == b'T' && b[13] == b'Z' => Some(1),
        17 if b[10] == b'T' && b[16] == b'Z' => Some(0),
        _ => None,
    }
}

const D: u8 = 1;
const S: u8 = 2;
const U: u8 = 3;
const SP: u8 = 4;

/// scan_text's translation: digits, "-" and ".", the space and capitals to marker bytes.
const MARK: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = i as u8;
        i += 1;
    }
    let mut c = b'0';
    while c <= b'9' {
        t[c as usize] = D;
        c += 1;
    }
    t[b'-' as usize] = S;
    t[b'.' as usize] = S;
    t[b' ' as usize] = SP;
    let mut c = b'A';
    while c <= b'Z' {
        t[c as usize] = U;
        c += 1;
    }
    t
};

const NEEDLES: [&[u8]; 7] = [
    &[D, D, D, S, D, D, S, D, D, D, D],
    b"@",
    &[D, D, D, S, D, D, D, S, D, D, D, D],
    &[D, D, D, SP, D, D, D, SP, D, D, D, D],
    &[b')', D, D, D, S, D, D, D, D],
    &[b')', SP, D, D, D, S, D, D, D, D],
    &[D, SP, U],
];

fn marked_at(text: &[u8], i: usize) -> u8 {
    text.get(i).map_or(0, |&c| MARK[usize::from(c)])
}

fn needle_at(text: &[u8], i: usize, needle: &[u8]) -> bool {
    needle
        .iter()
        .enumerate()
        .all(|(j, &n)| marked_at(text, i + j) == n)
}

/// True when no needle of verify.scan_text occurs in `text` (so its patterns cannot match).
/// Every needle holds a "-" or "." between digits, a space, ")" or "@": only the places
/// of those bytes are examined, each against the needles that can hold it there.
pub fn no_needles(text: &[u8]) -> bool {
    // JSON text never holds a raw control byte (the markers 1 to 4 of the plain scan).
    debug_assert!(!text.iter().any(|&b| b < 5));
    if memchr::memchr(b'@', text).is_some() {
        return false;
    }
    for p in memchr::memchr2_iter(b'-', b'.', text) {
        // ssn and the first phone needle: a separator after three digits.
        if p >= 3 && (needle_at(text, p - 3, NEEDLES[0]) || needle_at(text, p - 3, NEEDLES[2])) {
            return false;
        }
    }
    for q in memchr::memchr_iter(b' ', text) {
        if (q >= 3 && needle_at(text, q - 3, NEEDLES[3]))
            || (q >= 1 && needle_at(text, q - 1, NEEDLES[6]))
            || (q >= 1 && needle_at(text, q - 1, NEEDLES[5]))
        {
            return false;
        }
    }
    for r in memchr::memchr_iter(b')', text) {
        if needle_at(text, r, NEEDLES[4]) || needle_at(text, r, NEEDLES[5]) {
            return false;
        }
    }
    true
}

/// The plain scan (every position, every needle), for the tests.
#[cfg(test)]
fn no_needles_plain(text: &[u8]) -> bool {
    (0..text.len()).all(|i| NEEDLES.iter().all(|n| !needle_at(text, i, n)))
}

/// True when the slice (its records and their exact texts) passes every check.
pub fn slice_ok(recs: &[&Rec<'_>], texts: &[String], c: &Checks) -> bool {
    let version = format!(",\"policy_version\":{},", c.policy_version);
    let audience = format!(",\"audience\":\"{}\",", c.audience);
    let finders = [
        memchr::memmem::Finder::new(version.as_bytes()),
        memchr::memmem::Finder::new(audience.as_bytes()),
        memchr::memmem::Finder::new(b",\"record_type\":\"regional.flow\","),
    ];
    for t in texts {
        let b = t.as_bytes();
        if finders.iter().any(|f| f.find(b).is_none()) || !no_needles(b) {
            return false;
        }
    }
    for r in recs {
        for &f in &c.disallowed {
            match &r.vals[f] {
                V::N => {}
                V::S(s) if s.is_empty() => {}
                _ => return false,
            }
        }
        match &r.vals[F_OCCURRED] {
            V::N => {}
            V::S(s) => match rank_of(s) {
                Some(rank) if rank >= c.floor_rank.max(2) => {}
                _ => return false,
            },
            V::I(_) => return false,
        }
        match &r.vals[F_AGE_BAND] {
            V::N => {}
            V::S(s) if c.allowed_bands.contains(s.as_ref()) => {}
            _ => return false,
        }
        match &r.vals[F_ZIP3] {
            V::N => {}
            V::S(z)
                if z.len() == 3
                    && z.bytes().all(|b| b.is_ascii_digit())
                    && !c.restricted_zip3.contains(z.as_ref()) => {}
            _ => return false,
        }
    }
    if c.qis.is_empty() {
        return true;
    }
    let mut classes: HashMap<Vec<&V<'_>>, (usize, HashSet<&V<'_>>)> = HashMap::default();
    for r in recs {
        let key: Vec<&V<'_>> = c.qis.iter().map(|&q| &r.vals[q]).collect();
        let entry = classes.entry(key).or_default();
        entry.0 += 1;
        if let Some((attr, _)) = c.ldiv {
            entry.1.insert(&r.vals[attr]);
        }
    }
    classes.values().all(|(count, values)| {
        (*count as i64) >= c.k && c.ldiv.is_none_or(|(_, ell)| (values.len() as i64) >= ell)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needles() {
        assert!(no_needles(
            br#"{"a":"2026-11-23","id":"6f1f0c1e-4a53-4d0b-9a55-2f6c1f7e3b10"}"#
        ));
        assert!(!no_needles(b"x 123-45-6789 y"));
        assert!(!no_needles(b"a@b"));
        assert!(!no_needles(b"(555) 123-4567"));
        assert!(!no_needles(b"12 Main St"));
    }

    #[test]
    fn fast_scan_equals_plain_scan() {
        let samples: [&[u8]; 10] = [
            b"123-45-6789",
            b"x(555) 123-4567",
            b"(555)123-4567",
            b"555 123 4567",
            b"12 Main",
            b"2026-11-23T19:10:00.123456Z",
            b"a-1-22-333-4444.55555 6 X",
            b"999.999.9999",
            b"))) 1 A",
            b"a@b",
        ];
        for s in samples {
            assert_eq!(
                no_needles(s),
                no_needles_plain(s),
                "{}",
                String::from_utf8_lossy(s)
            );
        }
        // Every short string over the marker alphabet.
        let alphabet = [b'1', b'-', b' ', b'A', b')', b'x'];
        let mut buf = vec![0u8; 7];
        for mut n in 0..alphabet.len().pow(7) {
            for slot in buf.iter_mut() {
                *slot = alphabet[n % alphabet.len()];
                n /= alphabet.len();
            }
            assert_eq!(no_needles(&buf), no_needles_plain(&buf));
        }
    }

    #[test]
    fn ranks() {
        assert_eq!(rank_of("2026"), Some(5));
        assert_eq!(rank_of("2026-11-23T19Z"), Some(1));
        assert_eq!(rank_of("x"), None);
    }
}
