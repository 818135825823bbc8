//! Hostile model bytes: the runtime evaluator (and so the macro's checker, which shares its
//! validator) must return `Err` or evaluate, never panic, never read out of bounds, never hang.
#![no_main]

use flow_core::runtime::Evaluator;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The in-place reader needs 4-byte alignment: copy into u64 storage.
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
    if let Ok(mut ev) = Evaluator::<f32, 16384>::new(bytes) {
        let (d, c) = (ev.dim(), ev.context_dim());
        let x = vec![0.5f32; d];
        let ctx = vec![0.1f32; c];
        let mut out = vec![0.0f32; d];
        let _ = ev.log_prob(&x, &ctx);
        let _ = ev.inverse(&x, &ctx, &mut out);
        let _ = ev.sample(&x, &ctx, &mut out);
        let _ = ev.grad_log_prob(&x, &ctx, &mut out);
    }
});
