//! Reading the header and sections of a model file, and (with `alloc`) writing one.

use super::ModelDesc;

/// `b"NFLW"`.
pub const MAGIC: [u8; 4] = *b"NFLW";
/// The format version this crate reads and writes.
pub const VERSION: u16 = 1;
/// Header length in bytes.
pub const HEADER_LEN: usize = 32;

/// Why a model file was rejected. Every invalid input maps to one of these; none panics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormatError {
    /// Fewer bytes than the header or than the length the header announces.
    Truncated,
    /// The first four bytes are not `NFLW`.
    BadMagic,
    /// A format version this reader does not know.
    UnsupportedVersion(u16),
    /// Header length or section lengths inconsistent with the file length.
    BadLayout,
    /// The CRC-32 does not match: the bytes were corrupted.
    ChecksumMismatch,
    /// The description does not decode.
    CorruptDescription,
    /// The metadata is not UTF-8.
    CorruptMetadata,
    /// The weight section is not 4-byte aligned in memory (see [`crate::runtime::Aligned`]).
    Misaligned,
    /// Big-endian targets are not supported by the in-place reader.
    UnsupportedEndian,
}

impl core::fmt::Display for FormatError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            FormatError::Truncated => write!(f, "truncated model file"),
            FormatError::BadMagic => write!(f, "not a model file (bad magic; expected NFLW)"),
            FormatError::UnsupportedVersion(v) => {
                write!(f, "unsupported format version {v} (this reader knows {VERSION})")
            }
            FormatError::BadLayout => write!(f, "inconsistent section lengths in the header"),
            FormatError::ChecksumMismatch => write!(f, "checksum mismatch (corrupted file)"),
            FormatError::CorruptDescription => write!(f, "corrupt model description"),
            FormatError::CorruptMetadata => write!(f, "metadata is not UTF-8"),
            FormatError::Misaligned => write!(f, "model bytes are not 4-byte aligned in memory"),
            FormatError::UnsupportedEndian => write!(f, "big-endian targets are not supported"),
        }
    }
}

/// CRC-32 (IEEE 802.3, reflected, as zlib's `crc32`).
pub fn crc32(bytes: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut t = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
                k += 1;
            }
            t[i] = c;
            i += 1;
        }
        t
    };
    let mut c = !0u32;
    for &b in bytes {
        c = TABLE[((c ^ b as u32) & 0xFF) as usize] ^ (c >> 8);
    }
    !c
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(w)
}

/// The sections of a model file, borrowed from its bytes.
#[derive(Clone, Copy, Debug)]
pub struct Sections<'a> {
    /// Postcard bytes of the [`ModelDesc`].
    pub desc: &'a [u8],
    /// UTF-8 JSON metadata.
    pub meta: &'a str,
    /// Weight bytes (`4 ×` count, little-endian `f32`).
    pub weights: &'a [u8],
    /// Integer bytes (`2 ×` count, little-endian `u16`).
    pub ints: &'a [u8],
}

/// Checks the header and checksum and splits the file into its sections.
pub fn split(bytes: &[u8]) -> Result<Sections<'_>, FormatError> {
    if bytes.len() < HEADER_LEN {
        return Err(if bytes.len() >= 4 && bytes[..4] != MAGIC {
            FormatError::BadMagic
        } else {
            FormatError::Truncated
        });
    }
    if bytes[..4] != MAGIC {
        return Err(FormatError::BadMagic);
    }
    let version = u16::from_le_bytes([bytes[4], bytes[5]]);
    if version != VERSION {
        return Err(FormatError::UnsupportedVersion(version));
    }
    if u16::from_le_bytes([bytes[6], bytes[7]]) as usize != HEADER_LEN {
        return Err(FormatError::BadLayout);
    }
    let total = u32_at(bytes, 8) as usize;
    if total > bytes.len() {
        return Err(FormatError::Truncated);
    }
    if total < HEADER_LEN {
        return Err(FormatError::BadLayout);
    }
    let bytes = &bytes[..total];
    if crc32(&bytes[16..]) != u32_at(bytes, 12) {
        return Err(FormatError::ChecksumMismatch);
    }
    let desc_len = u32_at(bytes, 16) as usize;
    let meta_len = u32_at(bytes, 20) as usize;
    let n_weights = u32_at(bytes, 24) as usize;
    let n_ints = u32_at(bytes, 28) as usize;
    let desc_end = HEADER_LEN.checked_add(desc_len).ok_or(FormatError::BadLayout)?;
    let meta_end = desc_end.checked_add(meta_len).ok_or(FormatError::BadLayout)?;
    let w_start = meta_end.checked_add(3).ok_or(FormatError::BadLayout)? & !3;
    let w_end = n_weights
        .checked_mul(4)
        .and_then(|n| n.checked_add(w_start))
        .ok_or(FormatError::BadLayout)?;
    let i_end = n_ints
        .checked_mul(2)
        .and_then(|n| n.checked_add(w_end))
        .ok_or(FormatError::BadLayout)?;
    if i_end != total {
        return Err(FormatError::BadLayout);
    }
    let meta = core::str::from_utf8(&bytes[desc_end..meta_end]).map_err(|_| FormatError::CorruptMetadata)?;
    Ok(Sections {
        desc: &bytes[HEADER_LEN..desc_end],
        meta,
        weights: &bytes[w_start..w_end],
        ints: &bytes[w_end..i_end],
    })
}

/// Decodes the description (no allocation).
pub fn decode_desc(desc: &[u8]) -> Result<ModelDesc, FormatError> {
    match postcard::take_from_bytes::<ModelDesc>(desc) {
        Ok((d, [])) => Ok(d),
        _ => Err(FormatError::CorruptDescription),
    }
}

/// Writes a model file (host side).
#[cfg(any(test, feature = "alloc"))]
pub fn write(desc: &ModelDesc, meta: &str, weights: &[f32], ints: &[u16]) -> alloc::vec::Vec<u8> {
    use alloc::vec::Vec;
    let desc_bytes: Vec<u8> =
        postcard::to_allocvec(desc).expect("postcard serialization into a Vec cannot fail");
    let mut out = Vec::with_capacity(
        HEADER_LEN + desc_bytes.len() + meta.len() + 4 * weights.len() + 2 * ints.len() + 4,
    );
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&(HEADER_LEN as u16).to_le_bytes());
    out.extend_from_slice(&[0; 8]); // total length and CRC, filled below
    out.extend_from_slice(&(desc_bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(&(meta.len() as u32).to_le_bytes());
    out.extend_from_slice(&(weights.len() as u32).to_le_bytes());
    out.extend_from_slice(&(ints.len() as u32).to_le_bytes());
    out.extend_from_slice(&desc_bytes);
    out.extend_from_slice(meta.as_bytes());
    while out.len() % 4 != 0 {
        out.push(0);
    }
    for w in weights {
        out.extend_from_slice(&w.to_le_bytes());
    }
    for i in ints {
        out.extend_from_slice(&i.to_le_bytes());
    }
    let total = out.len() as u32;
    out[8..12].copy_from_slice(&total.to_le_bytes());
    let crc = crc32(&out[16..]);
    out[12..16].copy_from_slice(&crc.to_le_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }
}
