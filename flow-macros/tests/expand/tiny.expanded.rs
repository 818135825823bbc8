// Expansion snapshot (see flow-macros/src/tests.rs); FLOW_MACROS_BLESS=1 rewrites it.
/// A tiny MAF.
pub struct Tiny;
#[allow(clippy::all, clippy::pedantic, clippy::nursery)]
#[allow(non_upper_case_globals, missing_docs, long_running_const_eval)]
const _: () = {
    use ::flow_core::baked::{self, fixed};
    use ::flow_core::block::{Aligned, BLOCK};
    /// The model file, whose bytes the weights are decoded from at compile time.
    const MODEL: &[u8] = ::core::include_bytes!(
        ::core::concat!(::core::env!("CARGO_MANIFEST_DIR"), "/tests/models/tiny.flow")
    );
    /// Scratch elements every method needs: `Flow::scratch_len` of `FLOW`, measured by the macro.
    const SCRATCH: usize = 32;
    static L0_SIZES: [usize; 3] = [2, 2, 4];
    static L0_PARAMS: Aligned<[f32; 18]> = Aligned(baked::f32_array(MODEL, 136));
    static L1_SIZES: [usize; 3] = [2, 2, 4];
    static L1_PARAMS: Aligned<[f32; 18]> = Aligned(baked::f32_array(MODEL, 208));
    static BASE_PARAMS: [f32; 4] = baked::f32_array(MODEL, 280);
    type FlowLayers = ::flow_core::layers::chain::Chain<
        ::flow_core::layers::autoregressive::AffineAutoregressive<'static, f32>,
        ::flow_core::layers::autoregressive::AffineAutoregressive<'static, f32>,
    >;
    type FlowBase = ::flow_core::base::DiagNormal<'static, f32>;
    static FLOW: ::flow_core::Flow<f32, FlowLayers, FlowBase> = ::flow_core::Flow::new(
        ::flow_core::layers::chain::Chain(
            ::flow_core::layers::autoregressive::AffineAutoregressive {
                net: ::flow_core::nn::Mlp {
                    sizes: &L0_SIZES,
                    params: &L0_PARAMS.0,
                    activation: ::flow_core::nn::Activation::Relu,
                    residual: false,
                },
                dim: 2,
                transformer: ::flow_core::layers::affine::Affine::new(
                    ::flow_core::layers::affine::AffineScale::SoftclipExp {
                        bound: f64::from_bits(0x401b_a18a_998f_ffa0),
                    },
                    ::flow_core::layers::affine::AffineLayout::ShiftScale,
                ),
                direction: ::flow_core::layers::autoregressive::Direction::Maf,
            },
            ::flow_core::layers::autoregressive::AffineAutoregressive {
                net: ::flow_core::nn::Mlp {
                    sizes: &L1_SIZES,
                    params: &L1_PARAMS.0,
                    activation: ::flow_core::nn::Activation::Relu,
                    residual: false,
                },
                dim: 2,
                transformer: ::flow_core::layers::affine::Affine::new(
                    ::flow_core::layers::affine::AffineScale::SoftclipExp {
                        bound: f64::from_bits(0x401b_a18a_998f_ffa0),
                    },
                    ::flow_core::layers::affine::AffineLayout::ShiftScale,
                ),
                direction: ::flow_core::layers::autoregressive::Direction::Maf,
            },
        ),
        ::flow_core::base::DiagNormal {
            params: &BASE_PARAMS,
        },
    );
    #[automatically_derived]
    impl ::flow_core::baked::BakedFlow<f32> for Tiny {
        const DIM: usize = 2;
        const CONTEXT_DIM: usize = 0;
        const PARAMS: usize = 40;
        const WEIGHT_BYTES: usize = 160;
        type Layers = FlowLayers;
        type Base = FlowBase;
        type Scratch = [f32; SCRATCH];
        type BlockScratch = Aligned<[f32; SCRATCH * BLOCK]>;
        const FLOW: &'static ::flow_core::Flow<f32, FlowLayers, FlowBase> = &FLOW;
    }
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
        pub const SCRATCH_BYTES: usize = 4 * SCRATCH * BLOCK;
        /// log p(x) (baked from `tests/models/tiny.flow`).
        pub fn log_prob(x: &[f32; 2]) -> f32 {
            fixed::log_prob::<Self, f32>(x, &[])
        }
        /// ∇ₓ log p(x) (baked from `tests/models/tiny.flow`).
        pub fn grad_log_prob(x: &[f32; 2]) -> [f32; 2] {
            fixed::grad_log_prob::<Self, f32, 2>(x, &[])
        }
        /// Data → base: the base point z and log|det ∂z/∂x| (baked from `tests/models/tiny.flow`).
        pub fn inverse(x: &[f32; 2]) -> ([f32; 2], f32) {
            fixed::inverse::<Self, f32, 2>(x, &[])
        }
        /// Base → data: the data point x and log|det ∂x/∂z| (baked from `tests/models/tiny.flow`).
        pub fn forward(z: &[f32; 2]) -> ([f32; 2], f32) {
            fixed::forward::<Self, f32, 2>(z, &[])
        }
        /// A sample from standard-normal base noise `eps` (baked from `tests/models/tiny.flow`).
        pub fn sample(eps: &[f32; 2]) -> [f32; 2] {
            fixed::sample::<Self, f32, 2>(eps, &[])
        }
        /// A sample with standard-normal noise drawn from `rng` (baked from `tests/models/tiny.flow`).
        pub fn sample_with<R: ::flow_core::baked::RngCore + ?Sized>(
            rng: &mut R,
        ) -> [f32; 2] {
            fixed::sample_with::<Self, f32, R, 2>(rng, &[])
        }
        /// A sample from standard-normal base noise `eps` and its log p from the same pass, without inverting (the sample is `sample`'s) (baked from `tests/models/tiny.flow`).
        pub fn sample_and_log_prob(eps: &[f32; 2]) -> ([f32; 2], f32) {
            fixed::sample_and_log_prob::<Self, f32, 2>(eps, &[])
        }
        /// `sample_and_log_prob` of each row of `eps`: samples into the rows of `xs`, log p into `out` (the first min(eps.len(), xs.len(), out.len()) rows) (baked from `tests/models/tiny.flow`).
        pub fn sample_and_log_prob_batch(
            eps: &[[f32; 2]],
            xs: &mut [[f32; 2]],
            out: &mut [f32],
        ) {
            fixed::sample_and_log_prob_batch::<Self, f32, 2>(eps, &[], xs, out)
        }
        /// log p of each row of `xs` into `out` (the first min(xs.len(), out.len()) rows) (baked from `tests/models/tiny.flow`).
        pub fn log_prob_batch(xs: &[[f32; 2]], out: &mut [f32]) {
            fixed::log_prob_batch::<Self, f32, 2>(xs, &[], out)
        }
        /// Samples from the base noise in each row of `eps` into the rows of `xs` (the first min(eps.len(), xs.len()) rows) (baked from `tests/models/tiny.flow`).
        pub fn sample_batch(eps: &[[f32; 2]], xs: &mut [[f32; 2]]) {
            fixed::sample_batch::<Self, f32, 2>(eps, &[], xs)
        }
        /// ∇ₓ log p of each row of `xs` into the rows of `grads` and log p into `out` (the first min(xs.len(), grads.len(), out.len()) rows) (baked from `tests/models/tiny.flow`).
        pub fn grad_log_prob_batch(
            xs: &[[f32; 2]],
            grads: &mut [[f32; 2]],
            out: &mut [f32],
        ) {
            fixed::grad_log_prob_batch::<Self, f32, 2>(xs, &[], grads, out)
        }
    }
};
