//! The x86-64 kernels against the portable ones, bit for bit, on every kernel the CPU has.

use super::*;
use crate::testing::Lcg;
use std::vec::Vec;

fn random(rng: &mut Lcg, n: usize) -> Vec<f64> {
    (0..n).map(|_| rng.normal()).collect()
}

/// Every compilation the CPU can run gives the portable kernel's bits, in f32 and f64, for
/// shapes that include 0 and 1 and sizes that are not multiples of the lanes or rows.
#[test]
fn every_kernel_gives_the_portable_bits() {
    let mut rng = Lcg(7);
    let kernels: Vec<Kernel> = [Kernel::Avx2, Kernel::Avx512]
        .into_iter()
        .filter(|&k| k <= detected())
        .collect();
    std::eprintln!(
        "detected {:?}; comparing {kernels:?} against portable",
        detected()
    );
    let shapes = [
        (0, 3, 0),
        (1, 1, 0),
        (3, 0, 2),
        (5, 2, 0),
        (7, 13, 3),
        (64, 64, 0),
        (4, 64, 0),
        (9, 17, 5),
        (2, 8, 8),
        (6, 7, 9),
        (64, 2, 0),
        (21, 1, 0),
        (19, 4, 0),
        (16, 2, 1),
    ];
    for (m, kx, kc) in shapes {
        let w = random(&mut rng, m * (kx + kc));
        let b = random(&mut rng, m);
        let x = random(&mut rng, kx);
        let c = random(&mut rng, kc);
        let w32: Vec<f32> = w.iter().map(|&v| v as f32).collect();
        let b32: Vec<f32> = b.iter().map(|&v| v as f32).collect();
        let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
        let c32: Vec<f32> = c.iter().map(|&v| v as f32).collect();
        let mut want32 = std::vec![0.0f32; m];
        let mut want64 = std::vec![0.0f64; m];
        dense::dense_with::<f32, f32, dense::Portable, ROWS, 1>(
            dense::Portable,
            &w32,
            &b32,
            [&x32],
            [&c32],
            &mut [&mut want32[..]],
        );
        dense::dense_with::<f64, f64, dense::Portable, ROWS, 1>(
            dense::Portable,
            &w,
            &b,
            [&x],
            [&c],
            &mut [&mut want64[..]],
        );
        // Batches: 8 samples in structure-of-arrays form, sample 0 the one above.
        let xs: Vec<[f32; 8]> = (0..kx)
            .map(|k| core::array::from_fn(|s| if s == 0 { x32[k] } else { rng.normal() as f32 }))
            .collect();
        let cs: Vec<[f32; 8]> = (0..kc)
            .map(|k| core::array::from_fn(|s| if s == 0 { c32[k] } else { rng.normal() as f32 }))
            .collect();
        let mut want_soa = std::vec![[0.0f32; 8]; m];
        dense::dense_soa_with::<f32, f32, dense::Portable, 1, 8>(
            dense::Portable,
            &w32,
            &b32,
            &xs,
            &cs,
            &mut want_soa,
        );
        for (r, o) in want_soa.iter().enumerate() {
            assert_eq!(
                o[0].to_bits(),
                want32[r].to_bits(),
                "portable batch = single, m={m} kx={kx} kc={kc} r={r}"
            );
        }
        let bits32 = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        let bits64 = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        for &k in &kernels {
            let mut got32 = std::vec![0.0f32; m];
            let mut got64 = std::vec![0.0f64; m];
            assert!(dense_one::<_, _, false>(k, &w32, &b32, &x32, &c32, &mut got32));
            assert!(dense_one::<_, _, false>(k, &w, &b, &x, &c, &mut got64));
            assert_eq!(bits32(&got32), bits32(&want32), "{k:?} f32 m={m} kx={kx} kc={kc}");
            let mut relu32 = std::vec![0.0f32; m];
            assert!(dense_one::<_, _, true>(k, &w32, &b32, &x32, &c32, &mut relu32));
            let want_relu: Vec<f32> = want32.iter().map(|&v| Activation::Relu.apply(v)).collect();
            assert_eq!(
                bits32(&relu32),
                bits32(&want_relu),
                "{k:?} f32 relu m={m} kx={kx} kc={kc}"
            );
            assert_eq!(bits64(&got64), bits64(&want64), "{k:?} f64 m={m} kx={kx} kc={kc}");
            // f32 computed from f64 weights (the generic compilation).
            let mut mixed = std::vec![0.0f32; m];
            let mut mixed_want = std::vec![0.0f32; m];
            assert!(dense_one::<_, _, false>(k, &w, &b, &x32, &c32, &mut mixed));
            dense::dense_with::<f32, f64, dense::Portable, ROWS, 1>(
                dense::Portable,
                &w,
                &b,
                [&x32],
                [&c32],
                &mut [&mut mixed_want[..]],
            );
            assert_eq!(
                bits32(&mixed),
                bits32(&mixed_want),
                "{k:?} f32 over f64 weights m={m} kx={kx} kc={kc}"
            );
            let mut got_soa = std::vec![[0.0f32; 8]; m];
            assert!(dense_soa::<_, _, 8, false>(k, &w32, &b32, &xs, &cs, &mut got_soa));
            for (g, w) in got_soa.iter().zip(&want_soa) {
                assert_eq!(
                    g.map(f32::to_bits),
                    w.map(f32::to_bits),
                    "{k:?} batch m={m} kx={kx} kc={kc}"
                );
            }
            // Blocks of 16 (the x86-64 block: one 512-bit vector, or two 256-bit ones), with
            // and without the fused ReLU; samples 8..16 repeat 0..8.
            let wide = |v: &[[f32; 8]]| -> Vec<[f32; 16]> {
                v.iter().map(|a| core::array::from_fn(|s| a[s % 8])).collect()
            };
            let (xs16, cs16) = (wide(&xs), wide(&cs));
            for relu in [false, true] {
                let mut got16 = std::vec![[0.0f32; 16]; m];
                if relu {
                    assert!(dense_soa::<_, _, 16, true>(
                        k, &w32, &b32, &xs16, &cs16, &mut got16
                    ));
                } else {
                    assert!(dense_soa::<_, _, 16, false>(
                        k, &w32, &b32, &xs16, &cs16, &mut got16
                    ));
                }
                for (g, w) in got16.iter().zip(&want_soa) {
                    let want: [u32; 16] = core::array::from_fn(|s| {
                        let v = w[s % 8];
                        if relu { Activation::Relu.apply(v) } else { v }.to_bits()
                    });
                    assert_eq!(
                        g.map(f32::to_bits),
                        want,
                        "{k:?} block 16 relu={relu} m={m} kx={kx} kc={kc}"
                    );
                }
            }
        }
        assert!(!dense_one::<_, _, false>(
            Kernel::Portable,
            &w32,
            &b32,
            &x32,
            &c32,
            &mut want32
        ));
    }
}

/// Partial sums that round to −0 stay −0 in every kernel: eleven products that round to −0 make
/// all eight lanes −0 in the first block, and the tail of three must leave lanes 3–7 alone
/// (adding a masked-out 0 would make them +0, and the result +0).
#[test]
fn negative_zero_partial_sums_keep_their_sign() {
    let tiny = f32::from_bits(1); // 2⁻¹⁴⁹: tiny · (−tiny) rounds to −0
    let w = [tiny; 11];
    let x = [-tiny; 11];
    let b = [-0.0f32];
    let mut want = [1.0f32];
    dense::dense_with::<f32, f32, dense::Portable, ROWS, 1>(
        dense::Portable,
        &w,
        &b,
        [&x],
        [&[]],
        &mut [&mut want[..]],
    );
    assert_eq!(want[0].to_bits(), (-0.0f32).to_bits());
    for k in [Kernel::Avx2, Kernel::Avx512]
        .into_iter()
        .filter(|&k| k <= detected())
    {
        let mut got = [1.0f32];
        assert!(dense_one::<_, _, false>(k, &w, &b, &x, &[], &mut got));
        assert_eq!(got[0].to_bits(), want[0].to_bits(), "{k:?}");
    }
}

/// Rows of one, two or four inputs whose products all round to −0 sum to +0 (their zero lanes
/// make them +0), so a −0 bias gives +0 in every kernel, as in the portable one.
#[test]
fn short_rows_of_negative_zero_products_sum_to_positive_zero() {
    let tiny = f32::from_bits(1);
    for n in [1, 2, 4] {
        let w = std::vec![tiny; 8 * n];
        let x = std::vec![-tiny; n];
        let b = [-0.0f32; 8];
        let mut want = [1.0f32; 8];
        dense::dense_with::<f32, f32, dense::Portable, ROWS, 1>(
            dense::Portable,
            &w,
            &b,
            [&x],
            [&[]],
            &mut [&mut want[..]],
        );
        assert_eq!(want.map(f32::to_bits), [0.0f32.to_bits(); 8], "portable n={n}");
        for k in [Kernel::Avx2, Kernel::Avx512]
            .into_iter()
            .filter(|&k| k <= detected())
        {
            let mut got = [1.0f32; 8];
            assert!(dense_one::<_, _, false>(k, &w, &b, &x, &[], &mut got));
            assert_eq!(got.map(f32::to_bits), want.map(f32::to_bits), "{k:?} n={n}");
        }
    }
}

/// The fused ReLU is `Activation::Relu`: `−0` and NaN become `+0`, in blocks of 8 and 16 and
/// for one sample.
#[test]
fn fused_relu_maps_negative_zero_and_nan_to_zero() {
    let tiny = f32::from_bits(1);
    // Eight products that round to −0 make the tree −0; a −0 bias keeps the output −0.
    let w = [tiny; 24];
    let b = [-0.0f32, f32::NAN, 2.0];
    let x8: Vec<[f32; 8]> = std::vec![[-tiny; 8]; 8];
    let x16: Vec<[f32; 16]> = std::vec![[-tiny; 16]; 8];
    let mut plain = std::vec![[1.0f32; 8]; 3];
    dense::dense_soa_with::<f32, f32, dense::Portable, 1, 8>(dense::Portable, &w, &b, &x8, &[], &mut plain);
    assert_eq!(plain[0][0].to_bits(), (-0.0f32).to_bits());
    assert!(plain[1][0].is_nan());
    for k in [Kernel::Avx2, Kernel::Avx512]
        .into_iter()
        .filter(|&k| k <= detected())
    {
        let mut got8 = std::vec![[1.0f32; 8]; 3];
        let mut got16 = std::vec![[1.0f32; 16]; 3];
        assert!(dense_soa::<_, _, 8, true>(k, &w, &b, &x8, &[], &mut got8));
        assert!(dense_soa::<_, _, 16, true>(k, &w, &b, &x16, &[], &mut got16));
        for (r, want) in [0.0f32, 0.0, 2.0].into_iter().enumerate() {
            assert!(
                got8[r]
                    .iter()
                    .chain(&got16[r])
                    .all(|v| v.to_bits() == want.to_bits()),
                "{k:?} row {r}"
            );
        }
        // One sample, 13 rows: the 8-row, 4-row and 1-row paths.
        let w13 = [tiny; 8 * 13];
        let b13: [f32; 13] = core::array::from_fn(|r| b[r % 3]);
        let mut one = [1.0f32; 13];
        assert!(dense_one::<_, _, true>(k, &w13, &b13, &[-tiny; 8], &[], &mut one));
        let want13: [u32; 13] = core::array::from_fn(|r| [0.0f32, 0.0, 2.0][r % 3].to_bits());
        assert_eq!(one.map(f32::to_bits), want13, "{k:?} one sample");
    }
}

/// The fused multiply-add rounds once: `(1 + 2⁻²³)(1 − 2⁻²³) − 1 = −2⁻⁴⁶` exactly, which a
/// multiply then an add rounds to 0.
#[test]
fn the_multiply_add_is_fused_on_every_path() {
    let (a, b, c) = (1.0 + f32::EPSILON, 1.0 - f32::EPSILON, -1.0f32);
    let exact = -(2.0f32.powi(-46));
    assert_eq!(crate::Real::fmadd(a, b, c), exact);
    assert_eq!(dense::Portable.mul_add(a, b, c), exact);
    if detected() >= Kernel::Avx2 {
        // SAFETY: the CPU has FMA (detected above).
        assert_eq!(unsafe { fmaf_native(a, b, c) }, exact);
    }
}
