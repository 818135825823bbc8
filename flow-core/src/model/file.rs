//! Reading the header and sections of a model file, and (with `alloc`) writing one.

use super::ModelDesc;

/// `b"NFLW"`.
pub const MAGIC: [u8; 4] = *b"NFLW";
/// Format version of files whose weights are `f32` (every file written before `f64` weights
/// existed, and every `f32` file since: their bytes did not change).
pub const VERSION: u16 = 1;
/// Format version of files whose weights are `f64`: version 1 with 8-byte weights at an 8-byte
/// aligned offset. Writers use it only for `f64` weights, so that readers that know only version
/// 1 reject these files with [`FormatError::UnsupportedVersion`] instead of misreading them.
pub const VERSION_F64: u16 = 2;
/// Header length in bytes.
pub const HEADER_LEN: usize = 32;

/// How the weight section stores each weight.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum WeightType {
    /// Little-endian `f32` (format version 1): the deployment precision.
    #[default]
    F32,
    /// Little-endian `f64` (format version 2): parameters trained in float64 (e.g. FlowJAX),
    /// kept exactly. `f32` evaluation rounds each weight to `f32` when it reads it.
    F64,
}

impl WeightType {
    /// Bytes per weight, which is also the weight section's alignment: 4 or 8.
    pub const fn size(self) -> usize {
        match self {
            WeightType::F32 => 4,
            WeightType::F64 => 8,
        }
    }

    /// The format version of files with these weights.
    pub const fn version(self) -> u16 {
        match self {
            WeightType::F32 => VERSION,
            WeightType::F64 => VERSION_F64,
        }
    }

    /// The weight type of a format version this reader knows.
    pub const fn of_version(version: u16) -> Option<Self> {
        match version {
            VERSION => Some(WeightType::F32),
            VERSION_F64 => Some(WeightType::F64),
            _ => None,
        }
    }

    /// `"f32"` or `"f64"`.
    pub const fn name(self) -> &'static str {
        match self {
            WeightType::F32 => "f32",
            WeightType::F64 => "f64",
        }
    }
}

impl core::fmt::Display for WeightType {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// A weight section as numbers, borrowed: what a file stores, in its own type.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Weights<'a> {
    /// Version 1 files.
    F32(&'a [f32]),
    /// Version 2 files.
    F64(&'a [f64]),
}

impl Weights<'_> {
    /// Number of weights.
    pub fn len(&self) -> usize {
        match self {
            Weights::F32(w) => w.len(),
            Weights::F64(w) => w.len(),
        }
    }

    /// True without weights.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The type of the weights.
    pub fn weight_type(&self) -> WeightType {
        match self {
            Weights::F32(_) => WeightType::F32,
            Weights::F64(_) => WeightType::F64,
        }
    }
}

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
    /// The weight section is not aligned in memory to its weight size, 4 bytes (`f32`) or 8
    /// (`f64`); see [`crate::runtime::Aligned`].
    Misaligned,
    /// Big-endian targets are not supported by the in-place reader.
    UnsupportedEndian,
}

impl core::fmt::Display for FormatError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            FormatError::Truncated => write!(f, "truncated model file"),
            FormatError::BadMagic => write!(f, "not a model file (bad magic; expected NFLW)"),
            FormatError::UnsupportedVersion(v) => write!(
                f,
                "unsupported format version {v} (this reader knows {VERSION} with f32 weights and {VERSION_F64} with f64 weights)"
            ),
            FormatError::BadLayout => write!(f, "inconsistent section lengths in the header"),
            FormatError::ChecksumMismatch => write!(f, "checksum mismatch (corrupted file)"),
            FormatError::CorruptDescription => write!(f, "corrupt model description"),
            FormatError::CorruptMetadata => write!(f, "metadata is not UTF-8"),
            FormatError::Misaligned => write!(
                f,
                "model bytes are not aligned in memory (4 bytes for f32 weights, 8 for f64)"
            ),
            FormatError::UnsupportedEndian => write!(f, "big-endian targets are not supported"),
        }
    }
}

impl core::error::Error for FormatError {}

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
    /// How the weight section stores each weight (from the format version).
    pub weight_type: WeightType,
    /// Weight bytes (`size ×` count, little-endian `f32` or `f64`).
    pub weights: &'a [u8],
    /// Integer bytes (`2 ×` count, little-endian `u16`).
    pub ints: &'a [u8],
}

impl<'a> Sections<'a> {
    /// The weights decoded from their little-endian bytes (any alignment), as `f64` (exact for
    /// `f32` weights).
    pub fn weight_values(&self) -> impl Iterator<Item = f64> + 'a {
        let wt = self.weight_type;
        self.weights.chunks_exact(wt.size()).map(move |c| match wt {
            WeightType::F32 => f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64,
            WeightType::F64 => f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]),
        })
    }
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
    let weight_type = WeightType::of_version(version).ok_or(FormatError::UnsupportedVersion(version))?;
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
    let size = weight_type.size();
    let w_start = meta_end.checked_add(size - 1).ok_or(FormatError::BadLayout)? & !(size - 1);
    let w_end = n_weights
        .checked_mul(size)
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
        weight_type,
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

/// Writes a model file (host side): version 1 for `f32` weights, version 2 for `f64` weights.
#[cfg(any(test, feature = "alloc"))]
pub fn write(desc: &ModelDesc, meta: &str, weights: Weights<'_>, ints: &[u16]) -> alloc::vec::Vec<u8> {
    use alloc::vec::Vec;
    let desc_bytes: Vec<u8> =
        postcard::to_allocvec(desc).expect("postcard serialization into a Vec cannot fail");
    let wt = weights.weight_type();
    let mut out = Vec::with_capacity(
        HEADER_LEN + desc_bytes.len() + meta.len() + wt.size() * (weights.len() + 1) + 2 * ints.len(),
    );
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&wt.version().to_le_bytes());
    out.extend_from_slice(&(HEADER_LEN as u16).to_le_bytes());
    out.extend_from_slice(&[0; 8]); // total length and CRC, filled below
    out.extend_from_slice(&(desc_bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(&(meta.len() as u32).to_le_bytes());
    out.extend_from_slice(&(weights.len() as u32).to_le_bytes());
    out.extend_from_slice(&(ints.len() as u32).to_le_bytes());
    out.extend_from_slice(&desc_bytes);
    out.extend_from_slice(meta.as_bytes());
    while out.len() % wt.size() != 0 {
        out.push(0);
    }
    match weights {
        Weights::F32(ws) => ws.iter().for_each(|w| out.extend_from_slice(&w.to_le_bytes())),
        Weights::F64(ws) => ws.iter().for_each(|w| out.extend_from_slice(&w.to_le_bytes())),
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
