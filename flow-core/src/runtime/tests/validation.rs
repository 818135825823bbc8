//! Hostile bytes: truncations, bit flips, inconsistent descriptions, bad f64 sections and seeded
//! mutations are errors, never panics; f64 weights round-trip.

extern crate std;
use std::vec;
use std::vec::Vec;

use super::*;

pub(super) fn reject(bytes: &[u8]) -> Error {
    let store = aligned(bytes);
    match Evaluator::<f32, 4096>::new(as_bytes(&store, bytes.len())) {
        Ok(_) => panic!("accepted invalid bytes"),
        Err(e) => e,
    }
}

#[test]
fn truncations_and_bit_flips_are_rejected() {
    let mut rng = Lcg(3);
    let bytes = random_maf(2, 0, 2, &[8], &mut rng).to_bytes("{\"a\":1}");
    for n in 0..bytes.len() {
        let e = reject(&bytes[..n]);
        assert!(
            matches!(e, Error::Format(FormatError::Truncated | FormatError::BadMagic)),
            "{n}: {e:?}"
        );
    }
    for i in 0..bytes.len() * 8 {
        let mut b = bytes.clone();
        b[i / 8] ^= 1 << (i % 8);
        let e = reject(&b);
        let want_checksum = i / 8 >= 16; // the header fields before the CRC have their own errors
        if want_checksum {
            assert_eq!(e, Error::Format(FormatError::ChecksumMismatch), "bit {i}");
        }
    }
}

/// Re-seal a modified file (fix the CRC) so the structural checks are reached.
fn reseal(b: &mut [u8]) {
    let crc = file::crc32(&b[16..]);
    b[12..16].copy_from_slice(&crc.to_le_bytes());
}

#[test]
fn inconsistent_models_are_rejected_with_the_right_error() {
    let mut rng = Lcg(4);
    let parts = random_maf(3, 0, 2, &[8], &mut rng);
    // A nonzero weight under the mask.
    let mut p = parts.clone();
    let k = p.weights.iter().position(|&w| w == 0.0).unwrap();
    p.weights[k] = 0.5;
    assert_eq!(
        reject(&p.to_bytes("")),
        Error::Invalid(Invalid::NotAutoregressive { layer: 0 })
    );
    // A NaN weight.
    let mut p = parts.clone();
    p.weights[5] = f64::NAN;
    assert_eq!(
        reject(&p.to_bytes("")),
        Error::Invalid(Invalid::NonFiniteWeight { index: 5 })
    );
    // An order with a rank outside 0..D.
    let mut p = parts.clone();
    p.ints[0] = p.desc.dim as u16;
    assert_eq!(
        reject(&p.to_bytes("")),
        Error::Invalid(Invalid::BadOrder { layer: 0 })
    );
    // Sizes that do not chain.
    let mut p = parts.clone();
    if let LayerDesc::AffineAutoregressive { net, .. } = &mut p.desc.layers[1] {
        net.sizes[0] = 4;
    }
    assert_eq!(
        reject(&p.to_bytes("")),
        Error::Invalid(Invalid::NetShape { layer: 1 })
    );
    // A span past the end.
    let mut p = parts.clone();
    if let LayerDesc::AffineAutoregressive { net, .. } = &mut p.desc.layers[0] {
        net.params.offset = 1 << 30;
    }
    assert!(matches!(
        reject(&p.to_bytes("")),
        Error::Invalid(Invalid::BadSpan { layer: 0 })
    ));
    // Negative base scale.
    let mut p = parts.clone();
    let n = p.weights.len();
    p.weights[n - 1] = -1.0;
    assert_eq!(reject(&p.to_bytes("")), Error::Invalid(Invalid::BadBase));
    // Bad version, magic; a lying length field.
    let good = parts.to_bytes("");
    let mut b = good.clone();
    b[4] = 9;
    assert_eq!(reject(&b), Error::Format(FormatError::UnsupportedVersion(9)));
    let mut b = good.clone();
    b[0] = b'X';
    assert_eq!(reject(&b), Error::Format(FormatError::BadMagic));
    let mut b = good.clone();
    b[24] = b[24].wrapping_add(1);
    reseal(&mut b);
    assert_eq!(reject(&b), Error::Format(FormatError::BadLayout));
    // Scratch capacity too small.
    let store = aligned(&good);
    assert!(matches!(
        Evaluator::<f32, 16>::new(as_bytes(&store, good.len())),
        Err(Error::ScratchTooSmall { .. })
    ));
    // Misaligned bytes.
    let mut shifted = vec![0u8];
    shifted.extend_from_slice(&good);
    let store = aligned(&shifted);
    assert!(matches!(
        Evaluator::<f32, 4096>::new(&as_bytes(&store, shifted.len())[1..]),
        Err(Error::Format(FormatError::Misaligned))
    ));
}

#[test]
fn seeded_mutations_of_the_description_never_panic() {
    let mut rng = Lcg(5);
    let good = random_maf(2, 1, 2, &[6], &mut rng).to_bytes("");
    let desc_len = u32::from_le_bytes([good[16], good[17], good[18], good[19]]) as usize;
    let mut accepted = 0;
    for _ in 0..20_000 {
        let mut b = good.clone();
        let flips = 1 + (rng.uniform() * 4.0) as usize;
        for _ in 0..flips {
            let at = 32 + (rng.uniform() * desc_len as f64) as usize;
            b[at] = (rng.uniform() * 256.0) as u8;
        }
        reseal(&mut b);
        let store = aligned(&b);
        if let Ok(mut ev) = Evaluator::<f32, 8192>::new(as_bytes(&store, b.len())) {
            accepted += 1;
            let mut x = [0.0f32; 2];
            let c = [0.1f32];
            let _ = ev.log_prob(&[0.5, -0.5], &c);
            let _ = ev.sample(&[0.5, -0.5], &c, &mut x);
        }
    }
    std::eprintln!("mutations accepted as valid models: {accepted} of 20000");
}

/// A random MAF stored with `f64` weights (format version 2).
fn random_maf_f64(seed: u64) -> ModelParts {
    let mut rng = Lcg(seed);
    let mut parts = random_maf(3, 1, 2, &[8, 8], &mut rng);
    parts.weight_type = WeightType::F64;
    // Weights that f32 cannot hold exactly (the random ones already are; make sure of one).
    let k = parts.weights.iter().position(|&w| w != 0.0).unwrap();
    parts.weights[k] = 0.1;
    parts
}

#[test]
fn f64_weights_round_trip_and_evaluate_exactly_in_f64_and_rounded_in_f32() {
    let parts = random_maf_f64(6);
    let bytes = parts.to_bytes("{\"m\":1}");
    assert_eq!(u16::from_le_bytes([bytes[4], bytes[5]]), file::VERSION_F64);
    let (back, meta) = ModelParts::from_bytes(&bytes).unwrap();
    assert_eq!(back, parts);
    assert_eq!(meta, "{\"m\":1}");
    // The same model stored as f32 is a version-1 file.
    let mut parts32 = parts.clone();
    parts32.weight_type = WeightType::F32;
    let bytes32 = parts32.to_bytes("{\"m\":1}");
    assert_eq!(u16::from_le_bytes([bytes32[4], bytes32[5]]), file::VERSION);

    let (store, store32) = (aligned(&bytes), aligned(&bytes32));
    let mut ev64 = Evaluator::<f64, 4096>::new(as_bytes(&store, bytes.len())).unwrap();
    let mut ev32 = Evaluator::<f32, 4096>::new(as_bytes(&store, bytes.len())).unwrap();
    let mut ev32_of_f32_file = Evaluator::<f32, 4096>::new(as_bytes(&store32, bytes32.len())).unwrap();
    assert_eq!(ev64.model().weights, Weights::F64(&parts.weights[..]));
    assert_eq!(ev64.model().n_params(), parts.weights.len());
    let exact = flow_of::<f64, f64>(&parts.desc, &parts.weights, &parts.ints);
    let mut scratch = vec![0.0; exact.scratch_len()];
    let mut rng = Lcg(7);
    let mut moved = 0;
    for _ in 0..300 {
        let x: Vec<f64> = (0..3).map(|_| rng.normal() * 1.5).collect();
        let c = [rng.normal()];
        // f64: the stored f64 weights, exactly.
        let lp = assert_same(&mut ev64, &exact, &x, &c);
        // f32: each weight rounded as it is read, i.e. what the f32 file of the same model gives.
        let (x32, c32): (Vec<f32>, [f32; 1]) = (x.iter().map(|&v| v as f32).collect(), [c[0] as f32]);
        let a = ev32.log_prob(&x32, &c32).unwrap();
        let b = ev32_of_f32_file.log_prob(&x32, &c32).unwrap();
        assert_eq!(a.to_bits(), b.to_bits());
        let (mut za, mut zb) = ([0.0f32; 3], [0.0f32; 3]);
        ev32.inverse(&x32, &c32, &mut za).unwrap();
        ev32_of_f32_file.inverse(&x32, &c32, &mut zb).unwrap();
        assert_eq!(za.map(f32::to_bits), zb.map(f32::to_bits));
        // And the f64 weights matter in f64.
        let f32_weights = parts32.stored_weights();
        let rounded = flow_of::<f64, f64>(&parts.desc, &f32_weights, &parts.ints);
        moved += usize::from(rounded.log_prob(&x, &c, &mut scratch) != lp);
    }
    assert!(
        moved > 250,
        "rounding the weights to f32 moved only {moved} of 300 log-densities"
    );
}

#[test]
fn bad_f64_sections_are_rejected_with_errors() {
    let parts = random_maf_f64(8);
    let good = parts.to_bytes("{}");
    // A weight beyond the f32 range (f32 evaluation would read infinity), a NaN, an infinity.
    for (v, k) in [(1e300, 4), (f64::NAN, 5), (f64::NEG_INFINITY, 6)] {
        let mut p = parts.clone();
        p.weights[k] = v;
        assert_eq!(
            reject(&p.to_bytes("")),
            Error::Invalid(Invalid::NonFiniteWeight { index: k }),
            "{v}"
        );
    }
    // A base scale that is positive in f64 but 0 in f32.
    let mut p = parts.clone();
    let n = p.weights.len();
    p.weights[n - 1] = 1e-300;
    assert_eq!(reject(&p.to_bytes("")), Error::Invalid(Invalid::BadBase));
    // The version field says f32 (or f64 for an f32 file): the section lengths no longer add up.
    let mut b = good.clone();
    b[4..6].copy_from_slice(&file::VERSION.to_le_bytes());
    assert_eq!(reject(&b), Error::Format(FormatError::BadLayout));
    let mut p32 = parts.clone();
    p32.weight_type = WeightType::F32;
    let mut b = p32.to_bytes("");
    b[4..6].copy_from_slice(&file::VERSION_F64.to_le_bytes());
    assert!(matches!(reject(&b), Error::Format(_)));
    // A weight count that does not match the section.
    let mut b = good.clone();
    b[24] = b[24].wrapping_add(1);
    reseal(&mut b);
    assert_eq!(reject(&b), Error::Format(FormatError::BadLayout));
    // 4-byte aligned but not 8-byte aligned memory.
    let mut shifted = vec![0u8; 4];
    shifted.extend_from_slice(&good);
    let store = aligned(&shifted);
    assert_eq!(
        Evaluator::<f64, 4096>::new(&as_bytes(&store, shifted.len())[4..]).err(),
        Some(Error::Format(FormatError::Misaligned))
    );
    // Truncations and bit flips, as for f32 files.
    for n in 0..good.len() {
        assert!(matches!(
            reject(&good[..n]),
            Error::Format(FormatError::Truncated | FormatError::BadMagic)
        ));
    }
    for i in 16 * 8..good.len() * 8 {
        let mut b = good.clone();
        b[i / 8] ^= 1 << (i % 8);
        assert_eq!(
            reject(&b),
            Error::Format(FormatError::ChecksumMismatch),
            "bit {i}"
        );
    }
}

#[test]
fn seeded_mutations_of_f64_weights_and_description_never_panic() {
    let good = random_maf_f64(9).to_bytes("");
    let sec = file::split(&good).unwrap();
    let desc_len = sec.desc.len();
    let w_start = good.len() - sec.weights.len() - sec.ints.len();
    let mut rng = Lcg(10);
    let mut accepted = 0;
    for round in 0..20_000 {
        let mut b = good.clone();
        for _ in 0..1 + (rng.uniform() * 4.0) as usize {
            // Half of the rounds hit the description, half the weights (exponent bytes included).
            let at = if round % 2 == 0 {
                32 + (rng.uniform() * desc_len as f64) as usize
            } else {
                w_start + (rng.uniform() * sec.weights.len() as f64) as usize
            };
            b[at] = (rng.uniform() * 256.0) as u8;
        }
        reseal(&mut b);
        let store = aligned(&b);
        let bytes = as_bytes(&store, b.len());
        for ok in [
            exercise_model_bytes::<f32>(bytes),
            exercise_model_bytes::<f64>(bytes),
        ] {
            accepted += usize::from(ok);
        }
    }
    std::eprintln!("f64 mutations accepted as valid models: {accepted} of 40000 evaluations");
}
