//! deid_core: the native per-window core of the DE-ID stream worker.
//!
//! `transform_flow_window` takes one window's raw messages and returns, per audience, the
//! released canonical JSON texts of its flow records and their SHA-256 digests, exactly as
//! deid.transforms.window.transform_window would produce them. It declines (returns a
//! reason instead) whatever it does not reproduce exactly; the caller then runs the Python
//! reference for the window. Messages it does not decode itself (other record types, or
//! anything its strict decoder refuses) are returned by index for the reference decoder.

use std::collections::HashMap;

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};
use sha2::{Digest, Sha256};

pub mod flow;
pub mod phi;
pub mod raw;
pub mod ts;
pub mod verify;

use flow::{Event, Gran, Header, Rule};

#[derive(FromPyObject)]
struct RuleSpec {
    #[pyo3(item)]
    audience: String,
    #[pyo3(item)]
    fields: Vec<String>,
    #[pyo3(item)]
    granularity: String,
    #[pyo3(item)]
    band_labels: Vec<String>,
    #[pyo3(item)]
    top_band: String,
    #[pyo3(item)]
    wide: HashMap<String, Option<String>>,
    #[pyo3(item)]
    qis: Vec<String>,
    #[pyo3(item)]
    k: i64,
    #[pyo3(item)]
    l_diversity: Option<(String, i64)>,
    #[pyo3(item)]
    max_suppression: f64,
    #[pyo3(item)]
    target: f64,
    #[pyo3(item)]
    verify_disallowed: Vec<String>,
    #[pyo3(item)]
    verify_floor_rank: usize,
    #[pyo3(item)]
    verify_allowed_bands: Vec<String>,
}

fn field(name: &str) -> PyResult<usize> {
    flow::field_index(name)
        .ok_or_else(|| pyo3::exceptions::PyValueError::new_err(format!("not a flow field: {name}")))
}

fn compile(spec: &RuleSpec) -> PyResult<Rule> {
    let mut fields = [false; 14];
    for f in &spec.fields {
        fields[field(f)?] = true;
    }
    if spec.band_labels.len() != 90 {
        return Err(pyo3::exceptions::PyValueError::new_err(
            "90 band labels expected",
        ));
    }
    Ok(Rule {
        audience: spec.audience.clone(),
        fields,
        granularity: Gran::parse(&spec.granularity)
            .ok_or_else(|| pyo3::exceptions::PyValueError::new_err("granularity"))?,
        band_labels: spec.band_labels.clone(),
        top_band: spec.top_band.clone(),
        wide: spec
            .wide
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        qis: spec.qis.iter().map(|q| field(q)).collect::<PyResult<_>>()?,
        k: spec.k,
        ldiv: match &spec.l_diversity {
            Some((attr, l)) => Some((field(attr)?, *l)),
            None => None,
        },
        max_suppression: spec.max_suppression,
        target: spec.target,
    })
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

fn hex_sha256(text: &str) -> String {
    hex(&Sha256::digest(text.as_bytes()))
}

/// One audience's slice: status 0 = verified here, release; 1 = the Python verifier must
/// examine it (texts are the records that would be released); 2 = held: k-anonymity would
/// suppress more than max_suppression (texts are all the records, generalised).
type Slice = (String, u8, Vec<String>, Vec<String>, usize, usize);
type Outcome = (Option<String>, Vec<usize>, usize, usize, Vec<Slice>);

fn declined(reason: &str) -> Outcome {
    (Some(reason.to_string()), vec![], 0, 0, vec![])
}

/// Transform the flow events of one window. `key_lookup(pairs)` gets the distinct
/// (surrogate_id, key_id) pairs and returns, in the same order, the 32-byte data key, None
/// for a destroyed key (erasure), or False when the key store would refuse the pair.
///
/// Decoding, and everything from decryption to the digests, run with the GIL released, so a
/// worker can seal and commit the previous window on another thread meanwhile.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
#[pyo3(signature = (messages, site_code, key_lookup, rules, restricted_zip3, policy_version, window_id, produced_at))]
fn transform_flow_window(
    py: Python<'_>,
    messages: &Bound<'_, PyList>,
    site_code: &str,
    key_lookup: &Bound<'_, PyAny>,
    rules: Vec<RuleSpec>,
    restricted_zip3: Vec<String>,
    policy_version: i64,
    window_id: &str,
    produced_at: &str,
) -> PyResult<Outcome> {
    let compiled: Vec<Rule> = rules.iter().map(compile).collect::<PyResult<_>>()?;
    let disallowed: Vec<Vec<usize>> = rules
        .iter()
        .map(|spec| spec.verify_disallowed.iter().map(|f| field(f)).collect())
        .collect::<PyResult<_>>()?;
    let items: Vec<Bound<'_, PyAny>> = messages.iter().collect();
    if items.len() >= 65_536 {
        return Ok(declined("window too large for the core"));
    }
    // The message bytes stay alive in `items` (and bytes objects are immutable).
    let data: Vec<Option<&[u8]>> = items
        .iter()
        .map(|item| item.downcast::<PyBytes>().ok().map(|b| b.as_bytes()))
        .collect();
    let (raws, others) = py.allow_threads(|| {
        let mut others = Vec::new();
        let mut raws = Vec::with_capacity(data.len());
        for (i, bytes) in data.iter().enumerate() {
            match bytes.and_then(|b| raw::decode_flow(b, site_code)) {
                Some(r) => raws.push(r),
                None => others.push(i),
            }
        }
        (raws, others)
    });
    // Keys: one lookup for the window's distinct (surrogate, key) pairs.
    let mut pair_index: rustc_hash::FxHashMap<(&str, &str), usize> = Default::default();
    let mut pairs: Vec<(String, String)> = Vec::new();
    for r in &raws {
        let next = pairs.len();
        pair_index
            .entry((r.surrogate_id, r.key_id))
            .or_insert_with(|| {
                pairs.push((r.surrogate_id.to_string(), r.key_id.to_string()));
                next
            });
    }
    let found = key_lookup.call1((pairs,))?;
    let found: Vec<Bound<'_, PyAny>> = found.try_iter()?.collect::<PyResult<_>>()?;
    let mut keys: Vec<Key> = Vec::with_capacity(found.len());
    for f in &found {
        if f.is_none() {
            keys.push(Key::Destroyed);
        } else if let Ok(b) = f.downcast::<PyBytes>() {
            match phi::cipher(b.as_bytes()) {
                Some(c) => keys.push(Key::Open(Box::new(c))),
                None => return Ok(declined("bad key length")),
            }
        } else {
            return Ok(declined("key store refuses a key"));
        }
    }
    let window = Window {
        raws,
        keys: &keys,
        pair_index: &pair_index,
        restricted_zip3: &restricted_zip3,
        compiled: &compiled,
        disallowed: &disallowed,
        rules: &rules,
        header: Header::new(policy_version, produced_at, window_id),
        policy_version,
    };
    Ok(match py.allow_threads(|| window.transform()) {
        Ok((n_flows, erased, slices)) => (None, others, n_flows, erased, slices),
        Err(reason) => declined(reason),
    })
}

enum Key {
    Open(Box<aes_gcm::Aes256Gcm>),
    Destroyed,
}

/// One window's decoded flow events and what transforming them needs; no Python objects.
struct Window<'a> {
    raws: Vec<raw::RawFlow<'a>>,
    keys: &'a [Key],
    pair_index: &'a rustc_hash::FxHashMap<(&'a str, &'a str), usize>,
    restricted_zip3: &'a [String],
    compiled: &'a [Rule],
    disallowed: &'a [Vec<usize>],
    rules: &'a [RuleSpec],
    header: Header,
    policy_version: i64,
}

impl Window<'_> {
    /// (flow events, erased, slices), or the reason the core declines the window.
    fn transform(self) -> Result<(usize, usize, Vec<Slice>), &'static str> {
        let policy_version = self.policy_version;
        let n_flows = self.raws.len();
        let mut erased = 0;
        let mut events: Vec<Event<'_>> = Vec::with_capacity(n_flows);
        for r in self.raws {
            let key = &self.keys[self.pair_index[&(r.surrogate_id, r.key_id)]];
            let cipher = match key {
                Key::Destroyed => {
                    erased += 1;
                    continue;
                }
                Key::Open(c) => c,
            };
            let Some(plain) = phi::decrypt(cipher, r.surrogate_id, r.key_id, r.phi_ciphertext)
            else {
                return Err("ciphertext does not open");
            };
            let Some(demo) = phi::demographics(&plain, self.restricted_zip3) else {
                return Err("PHI not read exactly");
            };
            let facts = flow::event_facts(&r, &demo);
            events.push(Event {
                raw: r,
                demo,
                facts,
            });
        }
        let restricted: rustc_hash::FxHashSet<String> =
            self.restricted_zip3.iter().cloned().collect();
        let mut slices = Vec::with_capacity(self.compiled.len());
        for ((rule, spec), disallowed) in self
            .compiled
            .iter()
            .zip(self.rules.iter())
            .zip(self.disallowed.iter())
        {
            let mut recs = flow::audience_records(&events, rule, policy_version);
            let k = flow::enforce_k(&mut recs, &events, rule);
            let n_out = recs.len();
            let held = n_out > 0 && (k.suppressed as f64) > rule.max_suppression * (n_out as f64);
            let chosen: Vec<&flow::Rec<'_>> = recs
                .iter()
                .zip(k.keep.iter())
                .filter(|(_, &keep)| held || keep)
                .map(|(r, _)| r)
                .collect();
            let audience = flow::audience_fragment(&rule.audience);
            let mut texts = Vec::with_capacity(chosen.len());
            for r in &chosen {
                let mut s = String::with_capacity(1024);
                flow::canonical(&mut s, r, &events[r.ev], &audience, &self.header);
                texts.push(s);
            }
            if held {
                slices.push((rule.audience.clone(), 2, texts, vec![], k.suppressed, n_out));
                continue;
            }
            let checks = verify::Checks {
                audience: rule.audience.clone(),
                policy_version,
                disallowed: disallowed.clone(),
                floor_rank: spec.verify_floor_rank,
                allowed_bands: spec.verify_allowed_bands.iter().cloned().collect(),
                restricted_zip3: restricted.clone(),
                qis: rule.qis.clone(),
                k: rule.k,
                ldiv: rule.ldiv,
            };
            let ok = verify::slice_ok(&chosen, &texts, &checks);
            let hashes = texts.iter().map(|t| hex_sha256(t)).collect();
            slices.push((
                rule.audience.clone(),
                if ok { 0 } else { 1 },
                texts,
                hashes,
                k.suppressed,
                n_out,
            ));
        }
        Ok((n_flows, erased, slices))
    }
}

/// The identity worker's decode and re-encode: per message, the canonical JSON of the
/// RawFlowEvent it holds and its SHA-256, or None where the reference decoder must run.
#[pyfunction]
fn reencode_flow_events(
    messages: &Bound<'_, PyList>,
    site_code: &str,
) -> Vec<Option<(String, String)>> {
    messages
        .iter()
        .map(|item| {
            let b = item.downcast::<PyBytes>().ok()?;
            let r = raw::decode_flow(b.as_bytes(), site_code)?;
            let mut s = String::with_capacity(b.as_bytes().len() + 16);
            flow::canonical_raw(&mut s, &r);
            let h = hex_sha256(&s);
            Some((s, h))
        })
        .collect()
}

/// The vocabularies compiled into this module (tests compare them with deid's enums).
#[pyfunction]
fn vocabularies() -> HashMap<&'static str, Vec<&'static str>> {
    HashMap::from([
        ("FlowEventType", raw::FLOW_EVENT_TYPES.to_vec()),
        ("UnitType", raw::UNIT_TYPES.to_vec()),
        ("PatientClass", raw::PATIENT_CLASSES.to_vec()),
        ("ArrivalMode", raw::ARRIVAL_MODES.to_vec()),
        ("Sex", raw::SEXES.to_vec()),
        ("flow_fields", flow::FIELDS.to_vec()),
    ])
}

#[pymodule]
fn deid_core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(transform_flow_window, m)?)?;
    m.add_function(wrap_pyfunction!(reencode_flow_events, m)?)?;
    m.add_function(wrap_pyfunction!(vocabularies, m)?)?;
    Ok(())
}
