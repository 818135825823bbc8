//! A whole flow: layers (one [`Bijection`]) over a [`Base`] distribution.
//!
//! `log p(x | c) = log p_base(z) + ℓ`, with `(z, ℓ) = inverse(x, c)`. Parameters of a flow are the
//! layers' parameters followed by the base's.
//!
//! Baked models use `Flow<S, Chain<…>, _>`; the runtime evaluator uses `Flow<S, Seq, _>` over layers
//! decoded from bytes. Both run this code, so they agree bit for bit.

use core::marker::PhantomData;

use rand_core::RngCore;

use crate::base::Base;
use crate::layers::Bijection;
use crate::{slicing, Real};

/// Layers plus base distribution, evaluated in scalar `S`.
#[derive(Clone, Copy, Debug)]
pub struct Flow<S, L, B> {
    /// The composed layers (density direction: data → base).
    pub layers: L,
    /// The base distribution.
    pub base: B,
    _scalar: PhantomData<S>,
}

impl<S, L, B> Flow<S, L, B> {
    /// A flow from its layers and base.
    pub const fn new(layers: L, base: B) -> Self {
        Flow {
            layers,
            base,
            _scalar: PhantomData,
        }
    }
}

/// A standard-normal draw from a random source: Box–Muller on two 53-bit uniforms, computed in
/// f64 with libm so that every target draws the same numbers for the same generator state.
pub fn standard_normal<R: RngCore + ?Sized>(rng: &mut R) -> f64 {
    let u1 = ((rng.next_u64() >> 11) as f64 + 1.0) / (1u64 << 53) as f64; // (0, 1]
    let u2 = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    libm::sqrt(-2.0 * libm::log(u1)) * libm::cos(2.0 * core::f64::consts::PI * u2)
}

impl<S: Real, L: Bijection<S>, B: Base<S>> Flow<S, L, B> {
    /// Dimension D.
    pub fn dim(&self) -> usize {
        self.layers.dim()
    }

    /// Context dimension C.
    pub fn context_dim(&self) -> usize {
        self.layers.context_dim()
    }

    /// Number of parameters (layers, then base).
    pub fn n_params(&self) -> usize {
        self.layers.n_params() + self.base.n_params()
    }

    /// Scratch elements any method of this flow needs.
    pub fn scratch_len(&self) -> usize {
        let d = self.dim();
        // Evaluation: z plus the layers' or the base's scratch. Gradients: the base's scratch, the
        // context cotangent, z and g_z, and the layers' scratch.
        let eval = d + self.layers.scratch_len().max(self.base.scratch_len());
        let grad = self.base.scratch_len() + self.context_dim() + 2 * d + self.layers.scratch_len();
        eval.max(grad)
    }

    /// Data → base: writes `z`, returns log|det ∂z/∂x|.
    #[inline]
    pub fn inverse(&self, x: &[S], ctx: &[S], z: &mut [S], scratch: &mut [S]) -> S {
        let mut ldj = S::ZERO;
        self.layers.inverse_acc(x, ctx, z, &mut ldj, scratch);
        ldj
    }

    /// Base → data: writes `x`, returns log|det ∂x/∂z|.
    #[inline]
    pub fn forward(&self, z: &[S], ctx: &[S], x: &mut [S], scratch: &mut [S]) -> S {
        let mut ldj = S::ZERO;
        self.layers.forward_acc(z, ctx, x, &mut ldj, scratch);
        ldj
    }

    /// log p(x | ctx).
    #[inline]
    pub fn log_prob(&self, x: &[S], ctx: &[S], scratch: &mut [S]) -> S {
        let (z, rest) = slicing::split_mut(scratch, self.dim());
        let ldj = self.inverse(x, ctx, z, rest);
        self.base.log_prob(z, rest) + ldj
    }

    /// A sample from standard-normal base noise `eps`: `x = forward(base.noise_to_base(eps))`.
    #[inline]
    pub fn sample(&self, eps: &[S], ctx: &[S], x: &mut [S], scratch: &mut [S]) {
        let (z, rest) = slicing::split_mut(scratch, self.dim());
        self.base.noise_to_base(eps, z);
        self.forward(z, ctx, x, rest);
    }

    /// A sample using noise drawn from `rng` with [`standard_normal`].
    pub fn sample_with<R: RngCore + ?Sized>(&self, rng: &mut R, ctx: &[S], x: &mut [S], scratch: &mut [S]) {
        let d = self.dim();
        let (eps, rest) = slicing::split_mut(scratch, d);
        for e in eps.iter_mut() {
            *e = S::from_f64(standard_normal(rng));
        }
        self.sample(eps, ctx, x, rest);
    }

    /// ∇ₓ log p(x | ctx) into `g_x`; returns log p.
    pub fn grad_log_prob(&self, x: &[S], ctx: &[S], g_x: &mut [S], scratch: &mut [S]) -> S {
        self.grad(x, ctx, g_x, None, scratch)
    }

    /// Adds ∂ log p(x | ctx)/∂θ into `g_params` (layers, then base) and writes ∇ₓ log p into
    /// `g_x`; returns log p.
    pub fn grad(
        &self,
        x: &[S],
        ctx: &[S],
        g_x: &mut [S],
        g_params: Option<&mut [S]>,
        scratch: &mut [S],
    ) -> S {
        let (base_scratch, rest) = slicing::split_mut(scratch, self.base.scratch_len());
        let (g_ctx, rest) = slicing::split_mut(rest, ctx.len());
        g_ctx.fill(S::ZERO);
        let mut base_lp = S::ZERO;
        let base = &self.base;
        let (g_layers, mut g_base) = match g_params {
            Some(g) => {
                let (a, b) = slicing::split_mut(g, self.layers.n_params());
                (Some(a), Some(b))
            }
            None => (None, None),
        };
        let mut head = |z: &[S], g_z: &mut [S]| {
            base_lp = base.log_prob(z, base_scratch);
            base.log_prob_vjp(z, S::ONE, g_z, g_base.as_deref_mut(), base_scratch);
        };
        let ldj = self
            .layers
            .inverse_vjp_head(x, ctx, &mut head, S::ONE, g_x, g_ctx, g_layers, rest);
        base_lp + ldj
    }
}
