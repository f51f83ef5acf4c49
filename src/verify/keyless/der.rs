//! A minimal DER reader for the parts of X.509 keyless verification needs (extensions, names,
//! the TBS to rebuild for an SCT): tag-length-value elements over a borrowed slice, definite
//! lengths only, no panics on any input.

/// One DER element: its tag byte, its content, and the whole encoding (tag, length, content).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Element<'a> {
    /// The identifier octet (single-byte tags only, as X.509 uses).
    pub tag: u8,
    /// The content octets.
    pub content: &'a [u8],
    /// The whole element.
    pub raw: &'a [u8],
}

/// The SEQUENCE tag.
pub const SEQUENCE: u8 = 0x30;
/// The OBJECT IDENTIFIER tag.
pub const OID: u8 = 0x06;
/// The BOOLEAN tag.
pub const BOOLEAN: u8 = 0x01;
/// The OCTET STRING tag.
pub const OCTET_STRING: u8 = 0x04;
/// The UTF8String tag.
pub const UTF8_STRING: u8 = 0x0c;

/// Why bytes are not the DER expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed DER: {0}")]
pub struct DerError(pub &'static str);

/// Reads one element at the start of `input`; the element and the rest.
///
/// # Errors
/// [`DerError`] on truncation, multi-byte tags, indefinite or non-minimal lengths.
pub fn read(input: &[u8]) -> Result<(Element<'_>, &[u8]), DerError> {
    let (&tag, rest) = input.split_first().ok_or(DerError("truncated"))?;
    if tag & 0x1f == 0x1f {
        return Err(DerError("multi-byte tag"));
    }
    let (&first, rest) = rest.split_first().ok_or(DerError("truncated"))?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return Err(DerError("unsupported length"));
        }
        let bytes = rest.get(..n).ok_or(DerError("truncated"))?;
        if bytes.first() == Some(&0) {
            return Err(DerError("non-minimal length"));
        }
        let len = bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        if len < 0x80 {
            return Err(DerError("non-minimal length"));
        }
        (len, rest.get(n..).ok_or(DerError("truncated"))?)
    };
    let content = rest.get(..len).ok_or(DerError("truncated"))?;
    let header = input.len() - rest.len();
    let raw = input.get(..header + len).ok_or(DerError("truncated"))?;
    Ok((
        Element { tag, content, raw },
        rest.get(len..).unwrap_or_default(),
    ))
}

/// Reads exactly one element filling `input`, with tag `tag`.
///
/// # Errors
/// [`DerError`] when it is malformed, of another tag, or followed by bytes.
pub fn read_only(input: &[u8], tag: u8) -> Result<Element<'_>, DerError> {
    let (e, rest) = read(input)?;
    if e.tag != tag {
        return Err(DerError("unexpected tag"));
    }
    if !rest.is_empty() {
        return Err(DerError("trailing bytes"));
    }
    Ok(e)
}

/// The elements of a constructed element's content, in order.
///
/// # Errors
/// [`DerError`] when one of them is malformed.
pub fn children(content: &[u8]) -> Result<Vec<Element<'_>>, DerError> {
    let mut out = Vec::new();
    let mut rest = content;
    while !rest.is_empty() {
        let (e, r) = read(rest)?;
        out.push(e);
        rest = r;
    }
    Ok(out)
}

/// The DER encoding of an element with `tag` and `content`.
pub fn encode(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend_from_slice(&bytes);
    }
    out.extend_from_slice(content);
    out
}

/// The DER content octets of an OBJECT IDENTIFIER given as arcs (first two arcs < 40 apart
/// as X.509 uses them).
pub fn oid(arcs: &[u64]) -> Vec<u8> {
    let mut out = Vec::new();
    if let [a, b, rest @ ..] = arcs {
        push_base128(&mut out, a * 40 + b);
        for arc in rest {
            push_base128(&mut out, *arc);
        }
    }
    out
}

fn push_base128(out: &mut Vec<u8>, mut v: u64) {
    let mut tmp = vec![(v & 0x7f) as u8];
    v >>= 7;
    while v > 0 {
        tmp.push(((v & 0x7f) as u8) | 0x80);
        v >>= 7;
    }
    out.extend(tmp.into_iter().rev());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elements_round_trip_through_encode_and_read() {
        for len in [0usize, 1, 127, 128, 255, 256, 70_000] {
            let content = vec![7u8; len];
            let enc = encode(OCTET_STRING, &content);
            let (e, rest) = read(&enc).unwrap();
            assert_eq!(
                (e.tag, e.content.len(), e.raw.len()),
                (OCTET_STRING, len, enc.len())
            );
            assert!(rest.is_empty());
        }
    }

    #[test]
    fn malformed_lengths_are_refused() {
        for bad in [
            &[][..],
            &[0x30],
            &[0x30, 0x81, 0x05],
            &[0x30, 0x80],
            &[0x30, 0x82, 0x00, 0x81],
            &[0x30, 0x81, 0x7f],
            &[0x30, 0x03, 1, 2],
            &[0x1f, 0x01, 0x00],
        ] {
            assert!(read(bad).is_err(), "{bad:?}");
        }
        assert!(read_only(&[0x04, 0x00, 0x00], OCTET_STRING).is_err());
        assert!(read_only(&[0x04, 0x00], SEQUENCE).is_err());
    }

    #[test]
    fn oids_encode_as_x509_writes_them() {
        // 1.3.6.1.5.5.7.3.3, id-kp-codeSigning
        assert_eq!(
            oid(&[1, 3, 6, 1, 5, 5, 7, 3, 3]),
            [0x2b, 6, 1, 5, 5, 7, 3, 3]
        );
        // 1.3.6.1.4.1.57264.1.1, Fulcio's issuer (v1)
        assert_eq!(
            oid(&[1, 3, 6, 1, 4, 1, 57264, 1, 1]),
            [0x2b, 6, 1, 4, 1, 0x83, 0xbf, 0x30, 1, 1]
        );
    }

    mod properties {
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(crate::mutation::config())]

            /// Any bytes read as DER either fail or give elements inside the input.
            #[test]
            fn any_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
                if let Ok((e, rest)) = super::super::read(&bytes) {
                    prop_assert_eq!(e.raw.len() + rest.len(), bytes.len());
                    let _ = super::super::children(e.content);
                }
            }
        }
    }
}
