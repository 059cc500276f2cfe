//! Private key files, with a gap of the `ssh-key` crate filled: OpenSSH writes an ECDSA private
//! scalar as an `mpint`, which drops leading zero bytes, so about one P-256 key in 256 has a
//! 31-byte scalar; `ssh-key` refuses any under 32 bytes ("length invalid"). Such a file (not
//! encrypted) is read again with the scalar padded to its curve's size.

use data_encoding::BASE64_MIME;

const BEGIN: &str = "-----BEGIN OPENSSH PRIVATE KEY-----";
const END: &str = "-----END OPENSSH PRIVATE KEY-----";

/// The key file's text with a short ECDSA scalar padded, or `None` when there is nothing to pad
/// (another key type, an encrypted key, a scalar of full length, not an OpenSSH key).
pub fn pad_ecdsa_scalar(text: &str) -> Option<String> {
    let body = text.split(BEGIN).nth(1)?.split(END).next()?;
    let compact: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    let blob = BASE64_MIME.decode(compact.as_bytes()).ok()?;
    let fixed = pad_blob(&blob)?;
    let encoded = BASE64_MIME.encode(&fixed);
    let mut lines = String::new();
    for chunk in encoded
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<Vec<_>>()
        .chunks(70)
    {
        lines.extend(chunk);
        lines.push('\n');
    }
    Some(format!("{BEGIN}\n{lines}{END}\n"))
}

struct Reader<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn u32(&mut self) -> Option<u32> {
        let b = self.data.get(self.at..self.at + 4)?;
        self.at += 4;
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn string(&mut self) -> Option<&'a [u8]> {
        let len = usize::try_from(self.u32()?).ok()?;
        let s = self.data.get(self.at..self.at.checked_add(len)?)?;
        self.at += len;
        Some(s)
    }
}

fn put_string(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&u32::try_from(s.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(s);
}

fn pad_blob(blob: &[u8]) -> Option<Vec<u8>> {
    let magic = b"openssh-key-v1\0";
    if !blob.starts_with(magic) {
        return None;
    }
    let mut r = Reader {
        data: blob,
        at: magic.len(),
    };
    let cipher = r.string()?;
    let kdf = r.string()?;
    let kdf_options = r.string()?;
    if cipher != b"none" {
        return None;
    }
    let count = r.u32()?;
    if count != 1 {
        return None;
    }
    let public = r.string()?;
    let private = r.string()?;
    let mut p = Reader {
        data: private,
        at: 0,
    };
    let (check1, check2) = (p.u32()?, p.u32()?);
    let key_type = p.string()?;
    let size = match key_type {
        b"ecdsa-sha2-nistp256" => 32,
        b"ecdsa-sha2-nistp384" => 48,
        b"ecdsa-sha2-nistp521" => 66,
        _ => return None,
    };
    let curve = p.string()?;
    let point = p.string()?;
    let scalar = p.string()?;
    let comment = p.string()?;
    if scalar.len() >= size {
        return None;
    }
    let mut padded = vec![0u8; size - scalar.len()];
    padded.extend_from_slice(scalar);
    let mut section = Vec::new();
    section.extend_from_slice(&check1.to_be_bytes());
    section.extend_from_slice(&check2.to_be_bytes());
    put_string(&mut section, key_type);
    put_string(&mut section, curve);
    put_string(&mut section, point);
    put_string(&mut section, &padded);
    put_string(&mut section, comment);
    // The section is padded to the cipher's block size (8 for "none") with 1, 2, 3, ...
    let mut pad = 1u8;
    while section.len() % 8 != 0 {
        section.push(pad);
        pad += 1;
    }
    let mut out = magic.to_vec();
    put_string(&mut out, cipher);
    put_string(&mut out, kdf);
    put_string(&mut out, kdf_options);
    out.extend_from_slice(&count.to_be_bytes());
    put_string(&mut out, public);
    put_string(&mut out, &section);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keys made by ssh-keygen until one has a 31-byte scalar (one in 256): it loads, and signs
    /// as the same key; a key with a full scalar is left as it is.
    #[test]
    fn an_ecdsa_key_with_a_short_scalar_loads() {
        let dir = std::env::temp_dir().join(format!("lvslab-ecdsa-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("k");
        let mut found = None;
        for _ in 0..3000 {
            let _ = std::fs::remove_file(&path);
            let _ = std::fs::remove_file(path.with_extension("pub"));
            let ok = std::process::Command::new("ssh-keygen")
                .args(["-q", "-t", "ecdsa", "-N", "", "-f"])
                .arg(&path)
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                eprintln!("no ssh-keygen here: nothing to test");
                return;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            match russh::keys::decode_secret_key(&text, None) {
                Ok(_) => assert!(pad_ecdsa_scalar(&text).is_none(), "nothing to pad"),
                Err(_) => {
                    found = Some(text);
                    break;
                }
            }
        }
        let text = found.expect("a key with a short scalar in 3000 tries");
        let fixed = pad_ecdsa_scalar(&text).expect("padded");
        let key = russh::keys::decode_secret_key(&fixed, None).expect("loads once padded");
        let public = std::fs::read_to_string(path.with_extension("pub")).unwrap();
        let public =
            russh::keys::parse_public_key_base64(public.split_whitespace().nth(1).unwrap())
                .unwrap();
        assert_eq!(
            key.public_key().key_data(),
            public.key_data(),
            "the same key"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
