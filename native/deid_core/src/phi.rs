//! The PHI of a flow event: base64, AES-256-GCM (as deid.keystore encrypts it), and the only
//! three things a release derives from it (deid.transforms.flow.demographics): date of
//! birth, administrative sex and ZIP3. Anything the reference reads differently is refused.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;

use crate::raw::SEXES;
use crate::ts::parse_date;

const PHI_FORMAT: u8 = 1;
const NONCE: usize = 12;

/// What a release derives from PHI.
#[derive(Clone, Debug, PartialEq)]
pub struct Demographics {
    pub birth: Option<(i64, i64, i64)>,
    pub sex: Option<&'static str>,
    pub zip3: Option<String>,
}

/// Decrypt a PHI ciphertext; None when it does not open (the reference words the error).
pub fn decrypt(cipher: &Aes256Gcm, surrogate_id: &str, key_id: &str, b64: &str) -> Option<Vec<u8>> {
    let blob = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    if blob.len() < 1 + NONCE + 16 || blob[0] != PHI_FORMAT {
        return None;
    }
    let aad = format!("deid/phi/v1|{surrogate_id}|{key_id}");
    cipher
        .decrypt(
            Nonce::from_slice(&blob[1..1 + NONCE]),
            Payload {
                msg: &blob[1 + NONCE..],
                aad: aad.as_bytes(),
            },
        )
        .ok()
}

pub fn cipher(key: &[u8]) -> Option<Aes256Gcm> {
    Aes256Gcm::new_from_slice(key).ok()
}

// str.strip() removes these (and other, non-ASCII, white space, refused below).
fn py_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c | 0x1c..=0x1f)
}

/// deid.zip3.zip3 for an ASCII string; None for non-ASCII text (refused: Python's
/// strip() and isdigit() read some of it differently), Some(result) otherwise.
pub fn zip3(z: &str, restricted: &[String]) -> Option<Option<String>> {
    if !z.is_ascii() {
        return None;
    }
    if z.is_empty() {
        return Some(None);
    }
    let b = z.as_bytes();
    let mut start = 0;
    let mut end = b.len();
    while start < end && py_space(b[start]) {
        start += 1;
    }
    while end > start && py_space(b[end - 1]) {
        end -= 1;
    }
    let digits: Vec<u8> = b[start..end]
        .iter()
        .copied()
        .filter(|&c| c != b'-' && c != b' ')
        .collect();
    if !(digits.len() == 5 || digits.len() == 9) || !digits.iter().all(u8::is_ascii_digit) {
        return Some(None);
    }
    let prefix = String::from_utf8(digits[..3].to_vec()).ok()?;
    if restricted.contains(&prefix) {
        Some(Some("000".to_string()))
    } else {
        Some(Some(prefix))
    }
}

fn plain_numbers(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Number(n) => n.is_i64(),
        serde_json::Value::Array(items) => items.iter().all(plain_numbers),
        serde_json::Value::Object(map) => map.values().all(plain_numbers),
        _ => true,
    }
}

fn birth_of(s: &str) -> Option<Option<(i64, i64, i64)>> {
    // date.fromisoformat(s[:10]): only the plain YYYY-MM-DD form is taken here.
    let b = s.as_bytes();
    if b.len() < 10 || !b[..10].is_ascii() {
        return None;
    }
    let head = &b[..10];
    let shaped = head[4] == b'-'
        && head[7] == b'-'
        && head
            .iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shaped {
        return None;
    }
    Some(parse_date(head)) // a shaped but impossible date is None, as ValueError is
}

/// demographics(json_loads(plaintext)); None when the reference might read it otherwise.
pub fn demographics(plaintext: &[u8], restricted: &[String]) -> Option<Demographics> {
    // The common case: a flat object of plain values, read without building a tree.
    if let Some(members) = std::str::from_utf8(plaintext)
        .ok()
        .and_then(crate::raw::parse_flat)
    {
        let get = |name: &str| members.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
        use crate::raw::J;
        let birth = match get("birth_date") {
            Some(J::Str(s)) => birth_of(s)?,
            _ => None,
        };
        let sex = match get("sex") {
            Some(J::Str(s)) => SEXES.iter().copied().find(|v| *v == s),
            _ => None,
        };
        let zip = match get("zip") {
            Some(J::Str(z)) => zip3(z, restricted)?,
            _ => None,
        };
        return Some(Demographics {
            birth,
            sex,
            zip3: zip,
        });
    }
    let value: serde_json::Value = serde_json::from_slice(plaintext).ok()?;
    if !plain_numbers(&value) {
        return None; // big or fractional numbers: parsers may disagree, the reference decides
    }
    let obj = value.as_object()?;
    let birth = match obj.get("birth_date") {
        Some(serde_json::Value::String(s)) => birth_of(s)?,
        _ => None,
    };
    let sex = match obj.get("sex") {
        Some(serde_json::Value::String(s)) => SEXES.iter().copied().find(|v| *v == s.as_str()),
        _ => None,
    };
    let zip = match obj.get("zip") {
        Some(serde_json::Value::String(z)) => zip3(z, restricted)?,
        _ => None,
    };
    Some(Demographics {
        birth,
        sex,
        zip3: zip,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zip_codes() {
        let r = vec!["036".to_string()];
        assert_eq!(zip3(" 02139-1234 ", &r), Some(Some("021".into())));
        assert_eq!(zip3("03601", &r), Some(Some("000".into())));
        assert_eq!(zip3("1234", &r), Some(None));
        assert_eq!(zip3("", &r), Some(None));
        assert_eq!(zip3("０２１３９", &r), None);
    }

    #[test]
    fn birth_dates() {
        let d = demographics(br#"{"birth_date":"2001-02-30","sex":"male"}"#, &[]).unwrap();
        assert_eq!(d.birth, None);
        assert_eq!(d.sex, Some("male"));
        assert!(demographics(br#"{"birth_date":"20010203"}"#, &[]).is_none());
        assert!(demographics(br#"[1]"#, &[]).is_none());
        // The flat fast path and the tree agree.
        let flat = demographics(
            br#"{"birth_date":"1970-05-06","sex":"female","zip":"02139"}"#,
            &[],
        );
        let tree = demographics(
            br#"{"birth_date":"1970-05-06","sex":"female","zip":"02139","x":[1]}"#,
            &[],
        );
        assert_eq!(flat, tree);
        assert!(flat.unwrap().birth.is_some());
    }
}
