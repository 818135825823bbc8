// Expansion snapshot (see flow-macros/src/tests.rs); FLOW_MACROS_BLESS=1 rewrites it.
pub(crate) struct TinyCond;
#[allow(
    clippy::all,
    clippy::pedantic,
    clippy::nursery,
    non_upper_case_globals,
    missing_docs
)]
const _: () = {
    const _: &[u8] = ::core::include_bytes!(
        ::core::concat!(::core::env!("CARGO_MANIFEST_DIR"),
        "/tests/models/tiny_cond.flow")
    );
    /// Scratch elements every method needs: `Flow::scratch_len` of `FLOW`, measured by the macro.
    const SCRATCH: usize = 44;
    static L0_SIZES: [usize; 3] = [3, 2, 4];
    static L0_PARAMS: ::flow_core::block::Aligned<[f32; 20]> = ::flow_core::block::Aligned([
        f32::from_bits(0xbf46_76e1),
        f32::from_bits(0x0000_0000),
        f32::from_bits(0x3dfd_b5d5),
        f32::from_bits(0x3e9e_1ce3),
        f32::from_bits(0x0000_0000),
        f32::from_bits(0xbf06_7309),
        f32::from_bits(0x3e3c_a8b6),
        f32::from_bits(0xbde8_2eac),
        f32::from_bits(0x0000_0000),
        f32::from_bits(0x0000_0000),
        f32::from_bits(0x0000_0000),
        f32::from_bits(0x0000_0000),
        f32::from_bits(0x3ec5_0d30),
        f32::from_bits(0xbf47_ca63),
        f32::from_bits(0x3e33_fff1),
        f32::from_bits(0xbf32_a94d),
        f32::from_bits(0xbf2b_186a),
        f32::from_bits(0xbf13_4dd6),
        f32::from_bits(0xbdb2_cfe3),
        f32::from_bits(0xbefa_e8b3),
    ]);
    static BASE_PARAMS: [f32; 5] = [
        f32::from_bits(0xbdfd_577a),
        f32::from_bits(0x3e8c_56a6),
        f32::from_bits(0x3f29_f4a5),
        f32::from_bits(0x3ecd_23ee),
        f32::from_bits(0x3faf_b13f),
    ];
    static FLOW: ::flow_core::Flow<
        f64,
        ::flow_core::layers::affine_ar::AffineAutoregressive<'static, f32>,
        ::flow_core::base::CholeskyNormal<'static, f32>,
    > = ::flow_core::Flow::new(
        ::flow_core::layers::affine_ar::AffineAutoregressive {
            net: ::flow_core::nn::Mlp {
                sizes: &L0_SIZES,
                params: &L0_PARAMS.0,
                activation: ::flow_core::nn::Activation::Tanh,
                residual: false,
            },
            dim: 2,
            scale: ::flow_core::layers::affine_ar::AffineScale::SoftplusEps {
                eps: f64::from_bits(0x3f50_624d_d2f1_a9fc),
            },
            layout: ::flow_core::layers::affine_ar::AffineLayout::ScaleShift,
            direction: ::flow_core::layers::affine_ar::Direction::Iaf,
        },
        ::flow_core::base::CholeskyNormal {
            dim: 2,
            params: &BASE_PARAMS,
        },
    );
    #[automatically_derived]
    impl TinyCond {
        /// Data dimension D.
        pub const DIM: usize = 2;
        /// Context dimension C (0: unconditional).
        pub const CONTEXT_DIM: usize = 1;
        /// Number of parameters (layers, then base).
        pub const PARAMS: usize = 25;
        /// Bytes of weights in `static` arrays (flash).
        pub const WEIGHT_BYTES: usize = 100;
        /// Bytes of the largest scratch array a method puts on the stack (the batch methods: `BLOCK` samples').
        pub const SCRATCH_BYTES: usize = 8 * SCRATCH * ::flow_core::block::BLOCK;
        /// log p(x) given the context `ctx` (baked from `tests/models/tiny_cond.flow`).
        pub fn log_prob(x: &[f64; 2], ctx: &[f64; 1]) -> f64 {
            let mut scratch = [0.0; SCRATCH];
            FLOW.log_prob(x, ctx, &mut scratch)
        }
        /// ∇ₓ log p(x) given the context `ctx` (baked from `tests/models/tiny_cond.flow`).
        pub fn grad_log_prob(x: &[f64; 2], ctx: &[f64; 1]) -> [f64; 2] {
            let mut scratch = [0.0; SCRATCH];
            let mut g = [0.0; 2];
            FLOW.grad_log_prob(x, ctx, &mut g, &mut scratch);
            g
        }
        /// Data → base: the base point z and log|det ∂z/∂x| given the context `ctx` (baked from `tests/models/tiny_cond.flow`).
        pub fn inverse(x: &[f64; 2], ctx: &[f64; 1]) -> ([f64; 2], f64) {
            let mut scratch = [0.0; SCRATCH];
            let mut z = [0.0; 2];
            let ldj = FLOW.inverse(x, ctx, &mut z, &mut scratch);
            (z, ldj)
        }
        /// Base → data: the data point x and log|det ∂x/∂z| given the context `ctx` (baked from `tests/models/tiny_cond.flow`).
        pub fn forward(z: &[f64; 2], ctx: &[f64; 1]) -> ([f64; 2], f64) {
            let mut scratch = [0.0; SCRATCH];
            let mut x = [0.0; 2];
            let ldj = FLOW.forward(z, ctx, &mut x, &mut scratch);
            (x, ldj)
        }
        /// A sample from standard-normal base noise `eps` given the context `ctx` (baked from `tests/models/tiny_cond.flow`).
        pub fn sample(eps: &[f64; 2], ctx: &[f64; 1]) -> [f64; 2] {
            let mut scratch = [0.0; SCRATCH];
            let mut x = [0.0; 2];
            FLOW.sample(eps, ctx, &mut x, &mut scratch);
            x
        }
        /// A sample with standard-normal noise drawn from `rng` given the context `ctx` (baked from `tests/models/tiny_cond.flow`).
        pub fn sample_with<R: ::flow_core::baked::RngCore + ?Sized>(
            rng: &mut R,
            ctx: &[f64; 1],
        ) -> [f64; 2] {
            let mut scratch = [0.0; SCRATCH];
            let mut x = [0.0; 2];
            FLOW.sample_with(rng, ctx, &mut x, &mut scratch);
            x
        }
        /// A sample from standard-normal base noise `eps` and its log p from the same pass, without inverting (the sample is `sample`'s) given the context `ctx` (baked from `tests/models/tiny_cond.flow`).
        pub fn sample_and_log_prob(eps: &[f64; 2], ctx: &[f64; 1]) -> ([f64; 2], f64) {
            let mut scratch = [0.0; SCRATCH];
            let mut x = [0.0; 2];
            let lp = FLOW.sample_and_log_prob(eps, ctx, &mut x, &mut scratch);
            (x, lp)
        }
        /// `sample_and_log_prob` of each row of `eps`: samples into the rows of `xs`, log p into `out` (the first min(eps.len(), xs.len(), out.len()) rows) given the context `ctx` (baked from `tests/models/tiny_cond.flow`).
        pub fn sample_and_log_prob_batch(
            eps: &[[f64; 2]],
            ctx: &[f64; 1],
            xs: &mut [[f64; 2]],
            out: &mut [f64],
        ) {
            let mut scratch = ::flow_core::block::Aligned(
                [0.0; SCRATCH * ::flow_core::block::BLOCK],
            );
            FLOW.sample_and_log_prob_batch(
                eps.as_flattened(),
                ctx,
                xs.as_flattened_mut(),
                out,
                &mut scratch.0,
            );
        }
        /// log p of each row of `xs` into `out` (the first min(xs.len(), out.len()) rows) given the context `ctx` (baked from `tests/models/tiny_cond.flow`).
        pub fn log_prob_batch(xs: &[[f64; 2]], ctx: &[f64; 1], out: &mut [f64]) {
            let mut scratch = ::flow_core::block::Aligned(
                [0.0; SCRATCH * ::flow_core::block::BLOCK],
            );
            FLOW.log_prob_batch(xs.as_flattened(), ctx, out, &mut scratch.0);
        }
        /// Samples from the base noise in each row of `eps` into the rows of `xs` (the first min(eps.len(), xs.len()) rows) given the context `ctx` (baked from `tests/models/tiny_cond.flow`).
        pub fn sample_batch(eps: &[[f64; 2]], ctx: &[f64; 1], xs: &mut [[f64; 2]]) {
            let mut scratch = ::flow_core::block::Aligned(
                [0.0; SCRATCH * ::flow_core::block::BLOCK],
            );
            FLOW.sample_batch(
                eps.as_flattened(),
                ctx,
                xs.as_flattened_mut(),
                &mut scratch.0,
            );
        }
        /// ∇ₓ log p of each row of `xs` into the rows of `grads` and log p into `out` (the first min(xs.len(), grads.len(), out.len()) rows) given the context `ctx` (baked from `tests/models/tiny_cond.flow`).
        pub fn grad_log_prob_batch(
            xs: &[[f64; 2]],
            ctx: &[f64; 1],
            grads: &mut [[f64; 2]],
            out: &mut [f64],
        ) {
            let mut scratch = ::flow_core::block::Aligned(
                [0.0; SCRATCH * ::flow_core::block::BLOCK],
            );
            FLOW.grad_log_prob_batch(
                xs.as_flattened(),
                ctx,
                grads.as_flattened_mut(),
                out,
                &mut scratch.0,
            );
        }
    }
    #[automatically_derived]
    impl ::flow_core::baked::BakedFlow<f64> for TinyCond {
        const DIM: usize = 2;
        const CONTEXT_DIM: usize = 1;
        const PARAMS: usize = 25;
        const WEIGHT_BYTES: usize = 100;
        const SCRATCH_BYTES: usize = 8 * SCRATCH * ::flow_core::block::BLOCK;
        type Layers = ::flow_core::layers::affine_ar::AffineAutoregressive<'static, f32>;
        type Base = ::flow_core::base::CholeskyNormal<'static, f32>;
        fn flow(
            &self,
        ) -> &'static ::flow_core::Flow<
            f64,
            ::flow_core::layers::affine_ar::AffineAutoregressive<'static, f32>,
            ::flow_core::base::CholeskyNormal<'static, f32>,
        > {
            &FLOW
        }
        fn log_prob(
            &self,
            x: &[f64],
            ctx: &[f64],
        ) -> ::core::result::Result<f64, ::flow_core::runtime::Error> {
            ::flow_core::baked::expect_len(2, x.len())?;
            ::flow_core::baked::expect_len(1, ctx.len())?;
            let mut scratch = [0.0; SCRATCH];
            ::core::result::Result::Ok(FLOW.log_prob(x, ctx, &mut scratch))
        }
        fn grad_log_prob(
            &self,
            x: &[f64],
            ctx: &[f64],
            g: &mut [f64],
        ) -> ::core::result::Result<f64, ::flow_core::runtime::Error> {
            ::flow_core::baked::expect_len(2, x.len())?;
            ::flow_core::baked::expect_len(1, ctx.len())?;
            ::flow_core::baked::expect_len(2, g.len())?;
            let mut scratch = [0.0; SCRATCH];
            ::core::result::Result::Ok(FLOW.grad_log_prob(x, ctx, g, &mut scratch))
        }
        fn inverse(
            &self,
            x: &[f64],
            ctx: &[f64],
            z: &mut [f64],
        ) -> ::core::result::Result<f64, ::flow_core::runtime::Error> {
            ::flow_core::baked::expect_len(2, x.len())?;
            ::flow_core::baked::expect_len(1, ctx.len())?;
            ::flow_core::baked::expect_len(2, z.len())?;
            let mut scratch = [0.0; SCRATCH];
            ::core::result::Result::Ok(FLOW.inverse(x, ctx, z, &mut scratch))
        }
        fn forward(
            &self,
            z: &[f64],
            ctx: &[f64],
            x: &mut [f64],
        ) -> ::core::result::Result<f64, ::flow_core::runtime::Error> {
            ::flow_core::baked::expect_len(2, z.len())?;
            ::flow_core::baked::expect_len(1, ctx.len())?;
            ::flow_core::baked::expect_len(2, x.len())?;
            let mut scratch = [0.0; SCRATCH];
            ::core::result::Result::Ok(FLOW.forward(z, ctx, x, &mut scratch))
        }
        fn sample(
            &self,
            eps: &[f64],
            ctx: &[f64],
            x: &mut [f64],
        ) -> ::core::result::Result<(), ::flow_core::runtime::Error> {
            ::flow_core::baked::expect_len(2, eps.len())?;
            ::flow_core::baked::expect_len(1, ctx.len())?;
            ::flow_core::baked::expect_len(2, x.len())?;
            let mut scratch = [0.0; SCRATCH];
            FLOW.sample(eps, ctx, x, &mut scratch);
            ::core::result::Result::Ok(())
        }
        fn sample_and_log_prob(
            &self,
            eps: &[f64],
            ctx: &[f64],
            x: &mut [f64],
        ) -> ::core::result::Result<f64, ::flow_core::runtime::Error> {
            ::flow_core::baked::expect_len(2, eps.len())?;
            ::flow_core::baked::expect_len(1, ctx.len())?;
            ::flow_core::baked::expect_len(2, x.len())?;
            let mut scratch = [0.0; SCRATCH];
            ::core::result::Result::Ok(
                FLOW.sample_and_log_prob(eps, ctx, x, &mut scratch),
            )
        }
        fn sample_and_log_prob_batch(
            &self,
            eps: &[f64],
            ctx: &[f64],
            xs: &mut [f64],
            out: &mut [f64],
        ) -> ::core::result::Result<(), ::flow_core::runtime::Error> {
            ::flow_core::baked::expect_len(out.len().saturating_mul(2), eps.len())?;
            ::flow_core::baked::expect_len(eps.len(), xs.len())?;
            ::flow_core::baked::expect_len(1, ctx.len())?;
            let mut scratch = ::flow_core::block::Aligned(
                [0.0; SCRATCH * ::flow_core::block::BLOCK],
            );
            FLOW.sample_and_log_prob_batch(eps, ctx, xs, out, &mut scratch.0);
            ::core::result::Result::Ok(())
        }
        fn sample_with<R: ::flow_core::baked::RngCore + ?Sized>(
            &self,
            rng: &mut R,
            ctx: &[f64],
            x: &mut [f64],
        ) -> ::core::result::Result<(), ::flow_core::runtime::Error> {
            ::flow_core::baked::expect_len(1, ctx.len())?;
            ::flow_core::baked::expect_len(2, x.len())?;
            let mut scratch = [0.0; SCRATCH];
            FLOW.sample_with(rng, ctx, x, &mut scratch);
            ::core::result::Result::Ok(())
        }
        fn log_prob_batch(
            &self,
            xs: &[f64],
            ctx: &[f64],
            out: &mut [f64],
        ) -> ::core::result::Result<(), ::flow_core::runtime::Error> {
            ::flow_core::baked::expect_len(out.len().saturating_mul(2), xs.len())?;
            ::flow_core::baked::expect_len(1, ctx.len())?;
            let mut scratch = ::flow_core::block::Aligned(
                [0.0; SCRATCH * ::flow_core::block::BLOCK],
            );
            FLOW.log_prob_batch(xs, ctx, out, &mut scratch.0);
            ::core::result::Result::Ok(())
        }
        fn sample_batch(
            &self,
            eps: &[f64],
            ctx: &[f64],
            xs: &mut [f64],
        ) -> ::core::result::Result<(), ::flow_core::runtime::Error> {
            ::flow_core::baked::expect_len(eps.len(), xs.len())?;
            ::flow_core::baked::expect_len(eps.len() / 2 * 2, eps.len())?;
            ::flow_core::baked::expect_len(1, ctx.len())?;
            let mut scratch = ::flow_core::block::Aligned(
                [0.0; SCRATCH * ::flow_core::block::BLOCK],
            );
            FLOW.sample_batch(eps, ctx, xs, &mut scratch.0);
            ::core::result::Result::Ok(())
        }
        fn grad_log_prob_batch(
            &self,
            xs: &[f64],
            ctx: &[f64],
            grads: &mut [f64],
            out: &mut [f64],
        ) -> ::core::result::Result<(), ::flow_core::runtime::Error> {
            ::flow_core::baked::expect_len(out.len().saturating_mul(2), xs.len())?;
            ::flow_core::baked::expect_len(xs.len(), grads.len())?;
            ::flow_core::baked::expect_len(1, ctx.len())?;
            let mut scratch = ::flow_core::block::Aligned(
                [0.0; SCRATCH * ::flow_core::block::BLOCK],
            );
            FLOW.grad_log_prob_batch(xs, ctx, grads, out, &mut scratch.0);
            ::core::result::Result::Ok(())
        }
    }
};
