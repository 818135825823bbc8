//! Hostile model bytes: the runtime evaluator (and so the macro's checker, which shares its
//! validator) must return `Err` or evaluate, never panic, never read out of bounds, never hang.
#![no_main]

use flow_core::testing::exercise_model_bytes;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The in-place reader needs 4-byte (f32 weights) or 8-byte (f64) alignment: copy into u64 storage.
    let mut store = vec![0u64; data.len().div_ceil(8)];
    flow_core::bytemuck::cast_slice_mut::<u64, u8>(&mut store)[..data.len()].copy_from_slice(data);
    let bytes = &mut flow_core::bytemuck::cast_slice_mut::<u64, u8>(&mut store)[..data.len()];
    // Half of the inputs get a correct length and checksum, so mutations reach the description
    // decoder and the validator instead of stopping at the CRC.
    if bytes.len() >= 32 && bytes[bytes.len() - 1] & 1 == 0 {
        let n = bytes.len() as u32;
        bytes[8..12].copy_from_slice(&n.to_le_bytes());
        let crc = flow_core::model::file::crc32(&bytes[16..]);
        bytes[12..16].copy_from_slice(&crc.to_le_bytes());
    }
    let bytes = &*bytes;
    // Both scalar types must take f32- and f64-weight files (format versions 1 and 2).
    exercise_model_bytes::<f32>(bytes);
    exercise_model_bytes::<f64>(bytes);
});
