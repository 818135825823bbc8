// Expansion snapshot (see flow-macros/src/tests.rs); FLOW_MACROS_BLESS=1 rewrites it.
pub(crate) struct TinyCond;
#[allow(clippy::all, clippy::pedantic, clippy::nursery)]
#[allow(non_upper_case_globals, missing_docs, long_running_const_eval)]
const _: () = {
    use ::flow_core::baked::{self, fixed};
    use ::flow_core::block::{Aligned, BLOCK};
    /// The model file, whose bytes the weights are decoded from at compile time.
    const MODEL: &[u8] = ::core::include_bytes!(
        ::core::concat!(::core::env!("CARGO_MANIFEST_DIR"),
        "/tests/models/tiny_cond.flow")
    );
    /// Scratch elements every method needs: `Flow::scratch_len` of `FLOW`, measured by the macro.
    const SCRATCH: usize = 44;
    static L0_SIZES: [usize; 3] = [3, 2, 4];
    static L0_PARAMS: Aligned<[f32; 20]> = Aligned(baked::f32_array(MODEL, 112));
    static BASE_PARAMS: [f32; 5] = baked::f32_array(MODEL, 192);
    type FlowLayers = ::flow_core::layers::autoregressive::AffineAutoregressive<
        'static,
        f32,
    >;
    type FlowBase = ::flow_core::base::CholeskyNormal<'static, f32>;
    static FLOW: ::flow_core::Flow<f64, FlowLayers, FlowBase> = ::flow_core::Flow::new(
        ::flow_core::layers::autoregressive::AffineAutoregressive {
            net: ::flow_core::nn::Mlp {
                sizes: &L0_SIZES,
                params: &L0_PARAMS.0,
                activation: ::flow_core::nn::Activation::Tanh,
                residual: false,
            },
            dim: 2,
            transformer: ::flow_core::layers::affine::Affine::new(
                ::flow_core::layers::affine::AffineScale::SoftplusEps {
                    eps: f64::from_bits(0x3f50_624d_d2f1_a9fc),
                },
                ::flow_core::layers::affine::AffineLayout::ScaleShift,
            ),
            direction: ::flow_core::layers::autoregressive::Direction::Iaf,
        },
        ::flow_core::base::CholeskyNormal {
            dim: 2,
            params: &BASE_PARAMS,
        },
    );
    #[automatically_derived]
    impl ::flow_core::baked::BakedFlow<f64> for TinyCond {
        const DIM: usize = 2;
        const CONTEXT_DIM: usize = 1;
        const PARAMS: usize = 25;
        const WEIGHT_BYTES: usize = 100;
        type Layers = FlowLayers;
        type Base = FlowBase;
        type Scratch = [f64; SCRATCH];
        type BlockScratch = Aligned<[f64; SCRATCH * BLOCK]>;
        const FLOW: &'static ::flow_core::Flow<f64, FlowLayers, FlowBase> = &FLOW;
    }
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
        pub const SCRATCH_BYTES: usize = 8 * SCRATCH * BLOCK;
        /// log p(x) given the context `ctx` (baked from `tests/models/tiny_cond.flow`).
        pub fn log_prob(x: &[f64; 2], ctx: &[f64; 1]) -> f64 {
            fixed::log_prob::<Self, f64>(x, ctx)
        }
        /// ∇ₓ log p(x) given the context `ctx` (baked from `tests/models/tiny_cond.flow`).
        pub fn grad_log_prob(x: &[f64; 2], ctx: &[f64; 1]) -> [f64; 2] {
            fixed::grad_log_prob::<Self, f64, 2>(x, ctx)
        }
        /// Data → base: the base point z and log|det ∂z/∂x| given the context `ctx` (baked from `tests/models/tiny_cond.flow`).
        pub fn inverse(x: &[f64; 2], ctx: &[f64; 1]) -> ([f64; 2], f64) {
            fixed::inverse::<Self, f64, 2>(x, ctx)
        }
        /// Base → data: the data point x and log|det ∂x/∂z| given the context `ctx` (baked from `tests/models/tiny_cond.flow`).
        pub fn forward(z: &[f64; 2], ctx: &[f64; 1]) -> ([f64; 2], f64) {
            fixed::forward::<Self, f64, 2>(z, ctx)
        }
        /// A sample from standard-normal base noise `eps` given the context `ctx` (baked from `tests/models/tiny_cond.flow`).
        pub fn sample(eps: &[f64; 2], ctx: &[f64; 1]) -> [f64; 2] {
            fixed::sample::<Self, f64, 2>(eps, ctx)
        }
        /// A sample with standard-normal noise drawn from `rng` given the context `ctx` (baked from `tests/models/tiny_cond.flow`).
        pub fn sample_with<R: ::flow_core::baked::RngCore + ?Sized>(
            rng: &mut R,
            ctx: &[f64; 1],
        ) -> [f64; 2] {
            fixed::sample_with::<Self, f64, R, 2>(rng, ctx)
        }
        /// A sample from standard-normal base noise `eps` and its log p from the same pass, without inverting (the sample is `sample`'s) given the context `ctx` (baked from `tests/models/tiny_cond.flow`).
        pub fn sample_and_log_prob(eps: &[f64; 2], ctx: &[f64; 1]) -> ([f64; 2], f64) {
            fixed::sample_and_log_prob::<Self, f64, 2>(eps, ctx)
        }
        /// `sample_and_log_prob` of each row of `eps`: samples into the rows of `xs`, log p into `out` (the first min(eps.len(), xs.len(), out.len()) rows) given the context `ctx` (baked from `tests/models/tiny_cond.flow`).
        pub fn sample_and_log_prob_batch(
            eps: &[[f64; 2]],
            ctx: &[f64; 1],
            xs: &mut [[f64; 2]],
            out: &mut [f64],
        ) {
            fixed::sample_and_log_prob_batch::<Self, f64, 2>(eps, ctx, xs, out)
        }
        /// log p of each row of `xs` into `out` (the first min(xs.len(), out.len()) rows) given the context `ctx` (baked from `tests/models/tiny_cond.flow`).
        pub fn log_prob_batch(xs: &[[f64; 2]], ctx: &[f64; 1], out: &mut [f64]) {
            fixed::log_prob_batch::<Self, f64, 2>(xs, ctx, out)
        }
        /// Samples from the base noise in each row of `eps` into the rows of `xs` (the first min(eps.len(), xs.len()) rows) given the context `ctx` (baked from `tests/models/tiny_cond.flow`).
        pub fn sample_batch(eps: &[[f64; 2]], ctx: &[f64; 1], xs: &mut [[f64; 2]]) {
            fixed::sample_batch::<Self, f64, 2>(eps, ctx, xs)
        }
        /// ∇ₓ log p of each row of `xs` into the rows of `grads` and log p into `out` (the first min(xs.len(), grads.len(), out.len()) rows) given the context `ctx` (baked from `tests/models/tiny_cond.flow`).
        pub fn grad_log_prob_batch(
            xs: &[[f64; 2]],
            ctx: &[f64; 1],
            grads: &mut [[f64; 2]],
            out: &mut [f64],
        ) {
            fixed::grad_log_prob_batch::<Self, f64, 2>(xs, ctx, grads, out)
        }
    }
};
