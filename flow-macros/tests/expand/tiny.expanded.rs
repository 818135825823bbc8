// Expansion snapshot (see flow-macros/src/tests.rs); FLOW_MACROS_BLESS=1 rewrites it.
/// A tiny MAF.
pub struct Tiny;
#[allow(
    clippy::all,
    clippy::pedantic,
    clippy::nursery,
    non_upper_case_globals,
    missing_docs
)]
const _: () = {
    const _: &[u8] = ::core::include_bytes!(
        ::core::concat!(::core::env!("CARGO_MANIFEST_DIR"), "/tests/models/tiny.flow")
    );
    /// Scratch elements every method needs: `Flow::scratch_len` of `FLOW`, measured by the macro.
    const SCRATCH: usize = 32;
    static L0_SIZES: [usize; 3] = [2, 2, 4];
    static L0_PARAMS: ::flow_core::block::Aligned<[f32; 18]> = ::flow_core::block::Aligned([
        f32::from_bits(0xbee2_92d9),
        f32::from_bits(0x0000_0000),
        f32::from_bits(0x3f39_9ad2),
        f32::from_bits(0x0000_0000),
        f32::from_bits(0xbf18_46d4),
        f32::from_bits(0x3e59_200e),
        f32::from_bits(0x0000_0000),
        f32::from_bits(0x0000_0000),
        f32::from_bits(0x0000_0000),
        f32::from_bits(0x0000_0000),
        f32::from_bits(0x3ef8_f21c),
        f32::from_bits(0x3e05_46d7),
        f32::from_bits(0x3f23_ade6),
        f32::from_bits(0xbe45_be2e),
        f32::from_bits(0xbd17_ccc3),
        f32::from_bits(0x3f2c_edb9),
        f32::from_bits(0xbe84_43e2),
        f32::from_bits(0x3e4e_241d),
    ]);
    static L1_SIZES: [usize; 3] = [2, 2, 4];
    static L1_PARAMS: ::flow_core::block::Aligned<[f32; 18]> = ::flow_core::block::Aligned([
        f32::from_bits(0x0000_0000),
        f32::from_bits(0xbeb2_cedd),
        f32::from_bits(0x0000_0000),
        f32::from_bits(0xbedf_c81b),
        f32::from_bits(0x3deb_7ad1),
        f32::from_bits(0x3f32_c34b),
        f32::from_bits(0xbe7e_1855),
        f32::from_bits(0x3f26_d6e3),
        f32::from_bits(0x3f4b_3e01),
        f32::from_bits(0x3f1f_7dda),
        f32::from_bits(0x0000_0000),
        f32::from_bits(0x0000_0000),
        f32::from_bits(0x0000_0000),
        f32::from_bits(0x0000_0000),
        f32::from_bits(0x3ebe_661a),
        f32::from_bits(0x3cc7_978f),
        f32::from_bits(0x3e75_a358),
        f32::from_bits(0x3de0_d3ea),
    ]);
    static BASE_PARAMS: [f32; 4] = [
        f32::from_bits(0xbe3d_a861),
        f32::from_bits(0xbe82_cb05),
        f32::from_bits(0x3faf_f45e),
        f32::from_bits(0x3f03_2a12),
    ];
    static FLOW: ::flow_core::Flow<
        f32,
        ::flow_core::layers::chain::Chain<
            ::flow_core::layers::affine_ar::AffineAutoregressive<'static, f32>,
            ::flow_core::layers::affine_ar::AffineAutoregressive<'static, f32>,
        >,
        ::flow_core::base::DiagNormal<'static, f32>,
    > = ::flow_core::Flow::new(
        ::flow_core::layers::chain::Chain(
            ::flow_core::layers::affine_ar::AffineAutoregressive {
                net: ::flow_core::nn::Mlp {
                    sizes: &L0_SIZES,
                    params: &L0_PARAMS.0,
                    activation: ::flow_core::nn::Activation::Relu,
                    residual: false,
                },
                dim: 2,
                scale: ::flow_core::layers::affine_ar::AffineScale::SoftclipExp {
                    bound: f64::from_bits(0x401b_a18a_998f_ffa0),
                },
                layout: ::flow_core::layers::affine_ar::AffineLayout::ShiftScale,
                direction: ::flow_core::layers::affine_ar::Direction::Maf,
            },
            ::flow_core::layers::affine_ar::AffineAutoregressive {
                net: ::flow_core::nn::Mlp {
                    sizes: &L1_SIZES,
                    params: &L1_PARAMS.0,
                    activation: ::flow_core::nn::Activation::Relu,
                    residual: false,
                },
                dim: 2,
                scale: ::flow_core::layers::affine_ar::AffineScale::SoftclipExp {
                    bound: f64::from_bits(0x401b_a18a_998f_ffa0),
                },
                layout: ::flow_core::layers::affine_ar::AffineLayout::ShiftScale,
                direction: ::flow_core::layers::affine_ar::Direction::Maf,
            },
        ),
        ::flow_core::base::DiagNormal {
            params: &BASE_PARAMS,
        },
    );
    #[automatically_derived]
    impl Tiny {
        /// Data dimension D.
        pub const DIM: usize = 2;
        /// Context dimension C (0: unconditional).
        pub const CONTEXT_DIM: usize = 0;
        /// Number of parameters (layers, then base).
        pub const PARAMS: usize = 40;
        /// Bytes of weights in `static` arrays (flash).
        pub const WEIGHT_BYTES: usize = 160;
        /// Bytes of the largest scratch array a method puts on the stack (the batch methods: `BLOCK` samples').
        pub const SCRATCH_BYTES: usize = 4 * SCRATCH * ::flow_core::block::BLOCK;
        /// log p(x) (baked from `tests/models/tiny.flow`).
        pub fn log_prob(x: &[f32; 2]) -> f32 {
            let mut scratch = [0.0; SCRATCH];
            FLOW.log_prob(x, &[], &mut scratch)
        }
        /// ∇ₓ log p(x) (baked from `tests/models/tiny.flow`).
        pub fn grad_log_prob(x: &[f32; 2]) -> [f32; 2] {
            let mut scratch = [0.0; SCRATCH];
            let mut g = [0.0; 2];
            FLOW.grad_log_prob(x, &[], &mut g, &mut scratch);
            g
        }
        /// Data → base: the base point z and log|det ∂z/∂x| (baked from `tests/models/tiny.flow`).
        pub fn inverse(x: &[f32; 2]) -> ([f32; 2], f32) {
            let mut scratch = [0.0; SCRATCH];
            let mut z = [0.0; 2];
            let ldj = FLOW.inverse(x, &[], &mut z, &mut scratch);
            (z, ldj)
        }
        /// Base → data: the data point x and log|det ∂x/∂z| (baked from `tests/models/tiny.flow`).
        pub fn forward(z: &[f32; 2]) -> ([f32; 2], f32) {
            let mut scratch = [0.0; SCRATCH];
            let mut x = [0.0; 2];
            let ldj = FLOW.forward(z, &[], &mut x, &mut scratch);
            (x, ldj)
        }
        /// A sample from standard-normal base noise `eps` (baked from `tests/models/tiny.flow`).
        pub fn sample(eps: &[f32; 2]) -> [f32; 2] {
            let mut scratch = [0.0; SCRATCH];
            let mut x = [0.0; 2];
            FLOW.sample(eps, &[], &mut x, &mut scratch);
            x
        }
        /// A sample with standard-normal noise drawn from `rng` (baked from `tests/models/tiny.flow`).
        pub fn sample_with<R: ::flow_core::baked::RngCore + ?Sized>(
            rng: &mut R,
        ) -> [f32; 2] {
            let mut scratch = [0.0; SCRATCH];
            let mut x = [0.0; 2];
            FLOW.sample_with(rng, &[], &mut x, &mut scratch);
            x
        }
        /// A sample from standard-normal base noise `eps` and its log p from the same pass, without inverting (the sample is `sample`'s) (baked from `tests/models/tiny.flow`).
        pub fn sample_and_log_prob(eps: &[f32; 2]) -> ([f32; 2], f32) {
            let mut scratch = [0.0; SCRATCH];
            let mut x = [0.0; 2];
            let lp = FLOW.sample_and_log_prob(eps, &[], &mut x, &mut scratch);
            (x, lp)
        }
        /// `sample_and_log_prob` of each row of `eps`: samples into the rows of `xs`, log p into `out` (the first min(eps.len(), xs.len(), out.len()) rows) (baked from `tests/models/tiny.flow`).
        pub fn sample_and_log_prob_batch(
            eps: &[[f32; 2]],
            xs: &mut [[f32; 2]],
            out: &mut [f32],
        ) {
            let mut scratch = ::flow_core::block::Aligned(
                [0.0; SCRATCH * ::flow_core::block::BLOCK],
            );
            FLOW.sample_and_log_prob_batch(
                eps.as_flattened(),
                &[],
                xs.as_flattened_mut(),
                out,
                &mut scratch.0,
            );
        }
        /// log p of each row of `xs` into `out` (the first min(xs.len(), out.len()) rows) (baked from `tests/models/tiny.flow`).
        pub fn log_prob_batch(xs: &[[f32; 2]], out: &mut [f32]) {
            let mut scratch = ::flow_core::block::Aligned(
                [0.0; SCRATCH * ::flow_core::block::BLOCK],
            );
            FLOW.log_prob_batch(xs.as_flattened(), &[], out, &mut scratch.0);
        }
        /// Samples from the base noise in each row of `eps` into the rows of `xs` (the first min(eps.len(), xs.len()) rows) (baked from `tests/models/tiny.flow`).
        pub fn sample_batch(eps: &[[f32; 2]], xs: &mut [[f32; 2]]) {
            let mut scratch = ::flow_core::block::Aligned(
                [0.0; SCRATCH * ::flow_core::block::BLOCK],
            );
            FLOW.sample_batch(
                eps.as_flattened(),
                &[],
                xs.as_flattened_mut(),
                &mut scratch.0,
            );
        }
        /// ∇ₓ log p of each row of `xs` into the rows of `grads` and log p into `out` (the first min(xs.len(), grads.len(), out.len()) rows) (baked from `tests/models/tiny.flow`).
        pub fn grad_log_prob_batch(
            xs: &[[f32; 2]],
            grads: &mut [[f32; 2]],
            out: &mut [f32],
        ) {
            let mut scratch = ::flow_core::block::Aligned(
                [0.0; SCRATCH * ::flow_core::block::BLOCK],
            );
            FLOW.grad_log_prob_batch(
                xs.as_flattened(),
                &[],
                grads.as_flattened_mut(),
                out,
                &mut scratch.0,
            );
        }
    }
    #[automatically_derived]
    impl ::flow_core::baked::BakedFlow<f32> for Tiny {
        const DIM: usize = 2;
        const CONTEXT_DIM: usize = 0;
        const PARAMS: usize = 40;
        const WEIGHT_BYTES: usize = 160;
        const SCRATCH_BYTES: usize = 4 * SCRATCH * ::flow_core::block::BLOCK;
        type Layers = ::flow_core::layers::chain::Chain<
            ::flow_core::layers::affine_ar::AffineAutoregressive<'static, f32>,
            ::flow_core::layers::affine_ar::AffineAutoregressive<'static, f32>,
        >;
        type Base = ::flow_core::base::DiagNormal<'static, f32>;
        fn flow(
            &self,
        ) -> &'static ::flow_core::Flow<
            f32,
            ::flow_core::layers::chain::Chain<
                ::flow_core::layers::affine_ar::AffineAutoregressive<'static, f32>,
                ::flow_core::layers::affine_ar::AffineAutoregressive<'static, f32>,
            >,
            ::flow_core::base::DiagNormal<'static, f32>,
        > {
            &FLOW
        }
        fn log_prob(
            &self,
            x: &[f32],
            ctx: &[f32],
        ) -> ::core::result::Result<f32, ::flow_core::runtime::Error> {
            ::flow_core::baked::expect_len(2, x.len())?;
            ::flow_core::baked::expect_len(0, ctx.len())?;
            let mut scratch = [0.0; SCRATCH];
            ::core::result::Result::Ok(FLOW.log_prob(x, ctx, &mut scratch))
        }
        fn grad_log_prob(
            &self,
            x: &[f32],
            ctx: &[f32],
            g: &mut [f32],
        ) -> ::core::result::Result<f32, ::flow_core::runtime::Error> {
            ::flow_core::baked::expect_len(2, x.len())?;
            ::flow_core::baked::expect_len(0, ctx.len())?;
            ::flow_core::baked::expect_len(2, g.len())?;
            let mut scratch = [0.0; SCRATCH];
            ::core::result::Result::Ok(FLOW.grad_log_prob(x, ctx, g, &mut scratch))
        }
        fn inverse(
            &self,
            x: &[f32],
            ctx: &[f32],
            z: &mut [f32],
        ) -> ::core::result::Result<f32, ::flow_core::runtime::Error> {
            ::flow_core::baked::expect_len(2, x.len())?;
            ::flow_core::baked::expect_len(0, ctx.len())?;
            ::flow_core::baked::expect_len(2, z.len())?;
            let mut scratch = [0.0; SCRATCH];
            ::core::result::Result::Ok(FLOW.inverse(x, ctx, z, &mut scratch))
        }
        fn forward(
            &self,
            z: &[f32],
            ctx: &[f32],
            x: &mut [f32],
        ) -> ::core::result::Result<f32, ::flow_core::runtime::Error> {
            ::flow_core::baked::expect_len(2, z.len())?;
            ::flow_core::baked::expect_len(0, ctx.len())?;
            ::flow_core::baked::expect_len(2, x.len())?;
            let mut scratch = [0.0; SCRATCH];
            ::core::result::Result::Ok(FLOW.forward(z, ctx, x, &mut scratch))
        }
        fn sample(
            &self,
            eps: &[f32],
            ctx: &[f32],
            x: &mut [f32],
        ) -> ::core::result::Result<(), ::flow_core::runtime::Error> {
            ::flow_core::baked::expect_len(2, eps.len())?;
            ::flow_core::baked::expect_len(0, ctx.len())?;
            ::flow_core::baked::expect_len(2, x.len())?;
            let mut scratch = [0.0; SCRATCH];
            FLOW.sample(eps, ctx, x, &mut scratch);
            ::core::result::Result::Ok(())
        }
        fn sample_and_log_prob(
            &self,
            eps: &[f32],
            ctx: &[f32],
            x: &mut [f32],
        ) -> ::core::result::Result<f32, ::flow_core::runtime::Error> {
            ::flow_core::baked::expect_len(2, eps.len())?;
            ::flow_core::baked::expect_len(0, ctx.len())?;
            ::flow_core::baked::expect_len(2, x.len())?;
            let mut scratch = [0.0; SCRATCH];
            ::core::result::Result::Ok(
                FLOW.sample_and_log_prob(eps, ctx, x, &mut scratch),
            )
        }
        fn sample_and_log_prob_batch(
            &self,
            eps: &[f32],
            ctx: &[f32],
            xs: &mut [f32],
            out: &mut [f32],
        ) -> ::core::result::Result<(), ::flow_core::runtime::Error> {
            ::flow_core::baked::expect_len(out.len().saturating_mul(2), eps.len())?;
            ::flow_core::baked::expect_len(eps.len(), xs.len())?;
            ::flow_core::baked::expect_len(0, ctx.len())?;
            let mut scratch = ::flow_core::block::Aligned(
                [0.0; SCRATCH * ::flow_core::block::BLOCK],
            );
            FLOW.sample_and_log_prob_batch(eps, ctx, xs, out, &mut scratch.0);
            ::core::result::Result::Ok(())
        }
        fn sample_with<R: ::flow_core::baked::RngCore + ?Sized>(
            &self,
            rng: &mut R,
            ctx: &[f32],
            x: &mut [f32],
        ) -> ::core::result::Result<(), ::flow_core::runtime::Error> {
            ::flow_core::baked::expect_len(0, ctx.len())?;
            ::flow_core::baked::expect_len(2, x.len())?;
            let mut scratch = [0.0; SCRATCH];
            FLOW.sample_with(rng, ctx, x, &mut scratch);
            ::core::result::Result::Ok(())
        }
        fn log_prob_batch(
            &self,
            xs: &[f32],
            ctx: &[f32],
            out: &mut [f32],
        ) -> ::core::result::Result<(), ::flow_core::runtime::Error> {
            ::flow_core::baked::expect_len(out.len().saturating_mul(2), xs.len())?;
            ::flow_core::baked::expect_len(0, ctx.len())?;
            let mut scratch = ::flow_core::block::Aligned(
                [0.0; SCRATCH * ::flow_core::block::BLOCK],
            );
            FLOW.log_prob_batch(xs, ctx, out, &mut scratch.0);
            ::core::result::Result::Ok(())
        }
        fn sample_batch(
            &self,
            eps: &[f32],
            ctx: &[f32],
            xs: &mut [f32],
        ) -> ::core::result::Result<(), ::flow_core::runtime::Error> {
            ::flow_core::baked::expect_len(eps.len(), xs.len())?;
            ::flow_core::baked::expect_len(eps.len() / 2 * 2, eps.len())?;
            ::flow_core::baked::expect_len(0, ctx.len())?;
            let mut scratch = ::flow_core::block::Aligned(
                [0.0; SCRATCH * ::flow_core::block::BLOCK],
            );
            FLOW.sample_batch(eps, ctx, xs, &mut scratch.0);
            ::core::result::Result::Ok(())
        }
        fn grad_log_prob_batch(
            &self,
            xs: &[f32],
            ctx: &[f32],
            grads: &mut [f32],
            out: &mut [f32],
        ) -> ::core::result::Result<(), ::flow_core::runtime::Error> {
            ::flow_core::baked::expect_len(out.len().saturating_mul(2), xs.len())?;
            ::flow_core::baked::expect_len(xs.len(), grads.len())?;
            ::flow_core::baked::expect_len(0, ctx.len())?;
            let mut scratch = ::flow_core::block::Aligned(
                [0.0; SCRATCH * ::flow_core::block::BLOCK],
            );
            FLOW.grad_log_prob_batch(xs, ctx, grads, out, &mut scratch.0);
            ::core::result::Result::Ok(())
        }
    }
};
